"""Recognising customers: lookup by any identity, duplicate candidates, and merging two.

A merge is one transaction: the survivor receives every identity and tag of the other
customer, every row of any table that points to it (plugins' tables included, found from the
database's foreign keys), and the values of fields it lacks. Fields where both differ keep the
survivor's value unless the caller chooses the other's; every conflict is returned and kept in
the audit log, with the full state of both customers. Webhooks get one ``customer.merged``
event (not the merged customer's deletion nor the survivor's update).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from core import audit
from core.customers import service, webhooks
from core.customers.models import EDITABLE_FIELDS, Customer, CustomerIdentity, CustomerTag
from core.normalize import normalise_identity

if TYPE_CHECKING:
    from core.runtime import Crm

MERGE_FIELDS = EDITABLE_FIELDS
SIMILAR_NAME = 0.85
CANDIDATE_LIMIT = 200


def lookup(session: Session, channel: str, value: str, region: str) -> Customer | None:
    """The customer holding identity ``(channel, value)``; ``value`` is normalised first.

    ``external_ref`` looks up the customer's external reference.
    """
    if channel == "external_ref":
        return session.scalar(select(Customer).where(Customer.external_ref == value.strip()))
    normalised = normalise_identity(channel, value, region)
    return session.scalar(
        select(Customer)
        .join(CustomerIdentity)
        .where(CustomerIdentity.channel == channel, CustomerIdentity.value == normalised)
    )


@dataclass
class Candidate:
    """A customer that may be the same as another, and why."""

    customer: Customer
    reasons: list[str] = field(default_factory=list)
    score: float = 0.0


def _email_user(customer: Customer) -> set[str]:
    return {i.value.split("@", 1)[0] for i in customer.identities if i.channel == "email"}


def duplicates(session: Session, customer: Customer) -> list[Candidate]:
    """Customers that may be ``customer`` again, best first, each with its reasons."""
    found: dict[int, Candidate] = {}

    def add(other: Customer, reason: str, score: float) -> None:
        if other.id == customer.id:
            return
        candidate = found.setdefault(other.id, Candidate(other))
        if reason not in candidate.reasons:
            candidate.reasons.append(reason)
            candidate.score += score

    values = {i.value: i.channel for i in customer.identities}
    if values:
        rows = session.execute(
            select(CustomerIdentity, Customer)
            .join(Customer)
            .where(
                CustomerIdentity.value.in_(list(values)),
                CustomerIdentity.customer_id != customer.id,
            )
        ).all()
        for identity, other in rows:
            add(
                other,
                f"same identity: their {identity.channel} {identity.value} is this"
                f" customer's {values[identity.value]}",
                1.0,
            )

    key = customer.search_key
    prefix = key[:4]
    near = session.scalars(
        select(Customer)
        .where(
            Customer.search_key >= prefix,
            Customer.search_key < prefix + "\uffff",
            Customer.id != customer.id,
        )
        .limit(CANDIDATE_LIMIT)
    ).all()
    mine_users = _email_user(customer)
    for other in near:
        same_name = other.search_key == key
        similar = (
            same_name
            or difflib.SequenceMatcher(None, key, other.search_key).ratio() >= SIMILAR_NAME
        )
        if not similar:
            continue
        shared = []
        if customer.company_id and other.company_id == customer.company_id:
            shared.append("same company")
        if mine_users & _email_user(other):
            shared.append("same e-mail user name")
        if customer.address and other.address and customer.address == other.address:
            shared.append("same address")
        if same_name and shared:
            add(other, f"same name and {' and '.join(shared)}", 0.9)
        elif same_name:
            add(other, "same name", 0.4 if other.country == customer.country else 0.2)
        elif shared:
            add(other, f"near-identical name and {' and '.join(shared)}", 0.7)
    return sorted(found.values(), key=lambda c: (-c.score, c.customer.id))


@dataclass
class MergeResult:
    """What a merge did."""

    survivor: Customer
    merged_id: int
    conflicts: dict[str, dict[str, Any]]
    moved: dict[str, int]


def _referencing_columns(session: Session) -> list[tuple[str, str]]:
    """Every (table, column) in the database with a foreign key to ``core_customer.id``."""
    inspector = inspect(session.connection())
    skip = {"core_customer_identity", "core_customer_tag"}
    found = []
    for table in inspector.get_table_names():
        if table in skip:
            continue
        for fk in inspector.get_foreign_keys(table):
            if fk["referred_table"] == "core_customer" and fk["referred_columns"] == ["id"]:
                found.extend((table, col) for col in fk["constrained_columns"])
    return found


def merge(
    session: Session,
    crm: Crm,
    survivor: Customer,
    other: Customer,
    choose: dict[str, str] | None = None,
    expected_versions: tuple[int, int] | None = None,
) -> MergeResult:
    """Merge ``other`` into ``survivor`` inside the caller's transaction.

    ``choose`` maps a field to ``"other"`` to take the other customer's value where both
    differ. ``expected_versions`` (survivor, other) guards against merging stale views.
    """
    if survivor.id == other.id:
        raise ValueError("a customer cannot be merged with itself")
    if expected_versions is not None:
        if survivor.version != expected_versions[0]:
            raise service.StaleVersion(survivor)
        if other.version != expected_versions[1]:
            raise service.StaleVersion(other)
    choose = choose or {}
    unknown = set(choose) - set(MERGE_FIELDS)
    if unknown or any(v not in ("survivor", "other") for v in choose.values()):
        raise ValueError(f"choose maps fields {MERGE_FIELDS} to 'survivor' or 'other'")
    before = {"survivor": service.as_dict(survivor), "merged": service.as_dict(other)}

    conflicts: dict[str, dict[str, Any]] = {}
    changes: dict[str, Any] = {}
    for name in MERGE_FIELDS:
        mine, theirs = getattr(survivor, name), getattr(other, name)
        if theirs is None or theirs == mine or (name == "company_id" and theirs == survivor.id):
            continue
        if mine is None:
            changes[name] = theirs
        else:
            taken = choose.get(name, "survivor")
            conflicts[name] = {"survivor": mine, "merged": theirs, "kept": taken}
            if taken == "other":
                changes[name] = theirs
    if "external_ref" in changes:
        other.external_ref = None  # free the unique value before the survivor takes it
        session.flush()

    crm.registry.call_each(
        "customer_merged", crm.active(), crm=crm, session=session, survivor=survivor, merged=other
    )
    moved: dict[str, int] = {}
    for table, column in _referencing_columns(session):
        if table == "core_customer" and column == "company_id":
            session.execute(
                text(
                    "UPDATE core_customer SET company_id = NULL WHERE id = :s AND company_id = :o"
                ),
                {"s": survivor.id, "o": other.id},
            )
        result = session.execute(
            text(f'UPDATE "{table}" SET "{column}" = :s WHERE "{column}" = :o'),
            {"s": survivor.id, "o": other.id},
        )
        if result.rowcount:
            moved[f"{table}.{column}"] = result.rowcount
    identity_moves = session.execute(
        CustomerIdentity.__table__.update()
        .where(CustomerIdentity.customer_id == other.id)
        .values(customer_id=survivor.id)
    ).rowcount
    if identity_moves:
        moved["core_customer_identity.customer_id"] = identity_moves
    have = set(survivor.tags)
    for tag in other.tags:
        if tag not in have:
            session.add(CustomerTag(customer_id=survivor.id, tag=tag))
    session.flush()
    session.expire(survivor, ["identities", "tag_rows", "company_id"])

    merged_id = other.id
    service.delete(session, crm, other, publish=False)
    if changes:
        service.update(session, crm, survivor, changes, survivor.version, publish=False)
    else:
        survivor.updated_at = service.utcnow()
        session.flush()
    audit.record(
        session,
        "merge",
        "customer",
        survivor.id,
        before=before,
        after={"survivor": service.as_dict(survivor), "conflicts": conflicts, "moved": moved},
        detail=f"customer {merged_id} merged into {survivor.id}",
    )
    webhooks.publish_merged(session, crm, service.as_dict(survivor), merged_id, conflicts)
    return MergeResult(survivor, merged_id, conflicts, moved)
