"""Listing customers: filters, accent-insensitive prefix search, keyset pages, capped counts.

Pages are keyset pages (``WHERE (key, id) > (last key, last id)``), so the millionth row costs
what the first does; counts stop at ``COUNT_CAP`` so a page never runs an unbounded
``count(*)``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, exists, func, select, tuple_
from sqlalchemy.orm import Session

from core.customers.models import Customer, CustomerTag
from core.normalize import search_key

COUNT_CAP = 10_000
SORTS = ("-id", "id", "name")
_TOP = "\U0010ffff"


class CursorError(ValueError):
    """A cursor that this listing did not produce."""


@dataclass
class Filters:
    """What to list. ``archived=None`` lists archived and active customers alike."""

    q: str | None = None
    tag: str | None = None
    owner_id: int | None = None
    kind: str | None = None
    country: str | None = None
    company_id: int | None = None
    archived: bool | None = False
    #: The record rule of the user listing (``core.records.customer_condition``).
    visible: Any = None


def archived_filter(value: str) -> bool | None:
    """``"false"``, ``"true"`` or ``"any"`` as the ``Filters.archived`` value."""
    return None if value == "any" else value == "true"


def filtered(filters: Filters) -> Select[tuple[Customer]]:
    """A query for the customers matching ``filters``, unordered."""
    query = select(Customer)
    conditions = []
    if filters.q:
        key = search_key(filters.q)
        if key:
            conditions.append(and_(Customer.search_key >= key, Customer.search_key < key + _TOP))
    if filters.tag:
        conditions.append(
            exists().where(
                CustomerTag.customer_id == Customer.id,
                CustomerTag.tag == filters.tag.strip().lower(),
            )
        )
    if filters.owner_id is not None:
        conditions.append(Customer.owner_id == filters.owner_id)
    if filters.kind:
        conditions.append(Customer.kind == filters.kind)
    if filters.country:
        conditions.append(Customer.country == filters.country.upper())
    if filters.company_id is not None:
        conditions.append(Customer.company_id == filters.company_id)
    if filters.archived is not None:
        conditions.append(Customer.archived.is_(filters.archived))
    if filters.visible is not None:
        conditions.append(filters.visible)
    return query.where(*conditions) if conditions else query


def _encode(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode(cursor: str, sort: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise CursorError("cursor is not valid") from None
    expected = 2 if sort == "name" else 1
    if (
        not isinstance(values, list)
        or len(values) != expected
        or not isinstance(values[-1], int)
        or (sort == "name" and not isinstance(values[0], str))
    ):
        raise CursorError("cursor is not valid for this sort")
    return values


def page(
    session: Session,
    filters: Filters,
    limit: int = 50,
    cursor: str | None = None,
    sort: str = "-id",
) -> tuple[list[Customer], str | None]:
    """One page of customers and the cursor of the next page (``None`` at the end)."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}")
    query = filtered(filters)
    after = _decode(cursor, sort) if cursor else None
    if sort == "id":
        query = query.order_by(Customer.id)
        if after:
            query = query.where(Customer.id > after[0])
    elif sort == "-id":
        query = query.order_by(Customer.id.desc())
        if after:
            query = query.where(Customer.id < after[0])
    else:
        query = query.order_by(Customer.search_key, Customer.id)
        if after:
            # A row-value comparison, so both databases seek the (search_key, id) index.
            query = query.where(tuple_(Customer.search_key, Customer.id) > tuple_(*after))
    rows = list(session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = _encode([last.search_key, last.id] if sort == "name" else [last.id])
    return rows, next_cursor


def count_capped(session: Session, filters: Filters, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """How many customers match, counting at most ``cap``; ``(cap, True)`` when more do."""
    sub = filtered(filters).with_only_columns(Customer.id).limit(cap + 1).subquery()
    counted = session.scalar(select(func.count()).select_from(sub)) or 0
    return (cap, True) if counted > cap else (counted, False)
