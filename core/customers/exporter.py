"""Streaming export of customers to CSV or JSON, in keyset batches.

CSV cells that a spreadsheet would run as a formula (starting with ``= + - @``, tab or carriage
return) are prefixed with ``'``; the importer removes that prefix again, so an export imports
back unchanged.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import select

from core.customers import importer, listing
from core.customers.importer import IDENTITY_COLUMNS
from core.customers.models import Customer, CustomerIdentity, CustomerTag

if TYPE_CHECKING:
    from core.runtime import Crm

BATCH = 1000
COLUMNS = (*importer.COLUMNS, *importer.READ_ONLY)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """``cell`` made safe to open in a spreadsheet (no formula runs)."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def records(crm: Crm, filters: listing.Filters) -> Iterator[dict[str, Any]]:
    """Every customer matching ``filters`` as a flat record, read in keyset batches by id."""
    from core.models import User

    with crm.db.session() as session:
        owners = dict(session.execute(select(User.id, User.email)).all())
        last = 0
        while True:
            batch = list(
                session.execute(
                    listing.filtered(filters)
                    .where(Customer.id > last)
                    .order_by(Customer.id)
                    .limit(BATCH)
                ).scalars()
            )
            if not batch:
                return
            ids = [c.id for c in batch]
            last = ids[-1]
            identities: dict[int, dict[str, list[str]]] = {}
            for cid, channel, value in session.execute(
                select(
                    CustomerIdentity.customer_id, CustomerIdentity.channel, CustomerIdentity.value
                )
                .where(CustomerIdentity.customer_id.in_(ids))
                .order_by(CustomerIdentity.id)
            ):
                identities.setdefault(cid, {}).setdefault(channel, []).append(value)
            tags: dict[int, list[str]] = {}
            for cid, tag in session.execute(
                select(CustomerTag.customer_id, CustomerTag.tag)
                .where(CustomerTag.customer_id.in_(ids))
                .order_by(CustomerTag.tag)
            ):
                tags.setdefault(cid, []).append(tag)
            company_ids = {c.company_id for c in batch if c.company_id}
            companies = (
                dict(
                    session.execute(
                        select(Customer.id, Customer.display_name).where(
                            Customer.id.in_(company_ids)
                        )
                    ).all()
                )
                if company_ids
                else {}
            )
            for c in batch:
                mine = identities.get(c.id, {})
                yield {
                    "id": c.id,
                    "external_ref": c.external_ref,
                    "kind": c.kind,
                    "display_name": c.display_name,
                    "given_name": c.given_name,
                    "family_name": c.family_name,
                    "company": companies.get(c.company_id),
                    **{ch: ";".join(mine.get(ch, [])) or None for ch in IDENTITY_COLUMNS},
                    "address": c.address,
                    "country": c.country,
                    "language": c.language,
                    "tags": ";".join(tags.get(c.id, [])) or None,
                    "source_channel": c.source_channel,
                    "owner": owners.get(c.owner_id),
                    "archived": c.archived,
                    "created_at": c.created_at.isoformat(),
                    "updated_at": c.updated_at.isoformat(),
                }
            session.expunge_all()


def write_csv(out: IO[str], rows: Iterator[dict[str, Any]]) -> int:
    """Write ``rows`` as CSV with a header; returns how many rows were written."""
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(
            [
                ""
                if row[c] is None
                else neutralise(str(row[c]).lower() if c == "archived" else str(row[c]))
                for c in COLUMNS
            ]
        )
        count += 1
    return count


def write_json(out: IO[str], rows: Iterator[dict[str, Any]]) -> int:
    """Write ``rows`` as one JSON array, one object per line; returns how many."""
    out.write("[")
    count = 0
    for row in rows:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(row, ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
