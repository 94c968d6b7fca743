"""Creating, changing, archiving and deleting customers, one at a time (the API's path).

Bulk paths (import) write through SQL directly but use the same field and identity rules.
Every change is audited through the ORM; events fire after the transaction commits.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select
from sqlalchemy import delete as sa_delete
from sqlalchemy.orm import Session

from core import audit, events
from core.customers import fields, webhooks
from core.customers.models import (
    COMPANY,
    EDITABLE_FIELDS,
    Customer,
    CustomerIdentity,
    CustomerTag,
)
from core.db import PreparedRead, connection_of, utcnow
from core.normalize import normalise_identity, search_key

if TYPE_CHECKING:
    from core.runtime import Crm


class IdentityConflict(Exception):
    """An identity (or external ref) already belongs to another customer."""

    def __init__(self, channel: str, value: str, customer_id: int) -> None:
        super().__init__(f"{channel} {value} already belongs to customer {customer_id}")
        self.channel, self.value, self.customer_id = channel, value, customer_id


class StaleVersion(Exception):
    """The client changed a customer from a version that is no longer current."""

    def __init__(self, customer: Customer) -> None:
        super().__init__(f"customer {customer.id} is at version {customer.version}")
        self.customer = customer


def as_dict(customer: Customer) -> dict[str, Any]:
    """The customer as plain data, with identities and tags (what the API returns)."""
    return {
        "id": customer.id,
        "kind": customer.kind,
        "display_name": customer.display_name,
        "given_name": customer.given_name,
        "family_name": customer.family_name,
        "company_id": customer.company_id,
        "address": customer.address,
        "country": customer.country,
        "language": customer.language,
        "owner_id": customer.owner_id,
        "source_channel": customer.source_channel,
        "external_ref": customer.external_ref,
        "archived": customer.archived,
        "tags": customer.tags,
        "identities": [
            {"id": i.id, "channel": i.channel, "value": i.value} for i in customer.identities
        ],
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
        "version": customer.version,
    }


_OUT_COLUMNS = ("id", *EDITABLE_FIELDS, "archived", "created_at", "updated_at", "version")


@functools.cache
def _read_statements() -> tuple[Any, Any]:
    from sqlalchemy import bindparam, literal_column, null, union_all

    table, identity, tag = (Customer.__table__, CustomerIdentity.__table__, CustomerTag.__table__)
    row = select(*(table.c[name] for name in _OUT_COLUMNS)).where(table.c.id == bindparam("id"))
    details = union_all(
        select(
            literal_column("'i'").label("what"),
            identity.c.id,
            identity.c.channel.label("text"),
            identity.c.value,
        ).where(identity.c.customer_id == bindparam("id")),
        select(literal_column("'t'"), null(), tag.c.tag, null()).where(
            tag.c.customer_id == bindparam("id")
        ),
    )
    return PreparedRead(row), PreparedRead(details)


def read(db: Session | Connection, customer_id: int) -> dict[str, Any] | None:
    """The customer as :func:`as_dict` gives it, read with two indexed queries, no ORM."""
    row_query, details_query = _read_statements()
    conn = connection_of(db)
    found = row_query.rows(conn, id=customer_id)
    if not found:
        return None
    data = dict(zip(_OUT_COLUMNS, found[0], strict=True))
    identities, tags = [], []
    for what, identity_id, text_value, value in details_query.rows(conn, id=customer_id):
        if what == "i":
            identities.append({"id": identity_id, "channel": text_value, "value": value})
        else:
            tags.append(text_value)
    data["identities"] = sorted(identities, key=lambda i: i["id"])
    data["tags"] = sorted(tags)
    return data


def clean(data: dict[str, Any], current: Customer | None = None) -> dict[str, Any]:
    """Checked and cleaned editable fields of ``data`` (FieldError names a bad one)."""
    out: dict[str, Any] = {}
    for name in (
        "display_name",
        "given_name",
        "family_name",
        "address",
        "source_channel",
        "external_ref",
    ):
        if name in data:
            out[name] = fields.text(name, data[name])
    if "kind" in data:
        out["kind"] = fields.kind(data["kind"])
    if "country" in data:
        out["country"] = fields.country(data["country"])
    if "language" in data:
        out["language"] = fields.language(data["language"])
    for name in ("company_id", "owner_id"):
        if name in data:
            out[name] = data[name]

    def pick(name: str) -> Any:
        return out[name] if name in out else getattr(current, name, None)

    if current is None or {"display_name", "given_name", "family_name"} & set(out):
        out["display_name"] = fields.display_name(
            pick("given_name"),
            pick("family_name"),
            out.get("display_name"),
            pick("country"),
            pick("language"),
        )
    return out


def normalised_identities(values: Iterable[tuple[str, str]], region: str) -> list[tuple[str, str]]:
    """``(channel, normalised value)`` pairs without repeats; IdentityError names a bad one."""
    result: list[tuple[str, str]] = []
    for channel, value in values:
        pair = (channel, normalise_identity(channel, value, region))
        if pair not in result:
            result.append(pair)
    return result


def _check_references(session: Session, data: dict[str, Any], customer_id: int | None) -> None:
    from core.models import User

    company_id = data.get("company_id")
    if company_id is not None:
        company = session.get(Customer, company_id)
        if company is None or company.kind != COMPANY:
            raise fields.FieldError("company_id", f"no company customer with id {company_id}")
        if company_id == customer_id:
            raise fields.FieldError("company_id", "a customer cannot be its own company")
    owner_id = data.get("owner_id")
    if owner_id is not None:
        owner = session.get(User, owner_id)
        if owner is None or not owner.is_active:
            raise fields.FieldError("owner_id", f"no active user with id {owner_id}")
    ref = data.get("external_ref")
    if ref is not None:
        holder = session.scalar(select(Customer.id).where(Customer.external_ref == ref))
        if holder is not None and holder != customer_id:
            raise IdentityConflict("external_ref", ref, holder)


def _check_identities(
    session: Session, pairs: list[tuple[str, str]], customer_id: int | None
) -> None:
    for channel, value in pairs:
        holder = session.scalar(
            select(CustomerIdentity.customer_id).where(
                CustomerIdentity.channel == channel, CustomerIdentity.value == value
            )
        )
        if holder is not None and holder != customer_id:
            raise IdentityConflict(channel, value, holder)


def create(
    session: Session,
    crm: Crm,
    data: dict[str, Any],
    identities: Iterable[tuple[str, str]] = (),
    tags: Iterable[str] | str = (),
) -> Customer:
    """Create a customer with its identities and tags."""
    values = clean(data)
    pairs = normalised_identities(identities, crm.settings.default_region)
    _check_references(session, values, None)
    _check_identities(session, pairs, None)
    customer = Customer(**values, search_key=search_key(values["display_name"]), archived=False)
    customer.identities = [CustomerIdentity(channel=c, value=v) for c, v in pairs]
    customer.tag_rows = [
        CustomerTag(tag=t) for t in fields.tags(list(tags) if not isinstance(tags, str) else tags)
    ]
    session.add(customer)
    session.flush()
    data = as_dict(customer)
    events.emit(session, crm, "customer_created", customer=data)
    webhooks.publish_created(session, crm, data)
    return customer


def update(
    session: Session,
    crm: Crm,
    customer: Customer,
    data: dict[str, Any],
    expected_version: int,
    tags: Iterable[str] | None = None,
    *,
    publish: bool = True,
) -> dict[str, tuple[Any, Any]]:
    """Apply ``data`` to ``customer`` if it is still at ``expected_version``.

    Returns what changed as ``{field: (before, after)}``; raises StaleVersion when another
    change came first (also when it commits between our read and our write). ``publish=False``
    leaves out the ``customer.updated`` webhook event (a merge publishes its own).
    """
    if customer.version != expected_version:
        raise StaleVersion(customer)
    values = clean(data, customer)
    _check_references(session, values, customer.id)
    changes: dict[str, tuple[Any, Any]] = {}
    for name, value in values.items():
        if getattr(customer, name) != value:
            changes[name] = (getattr(customer, name), value)
            setattr(customer, name, value)
    if tags is not None:
        new_tags = fields.tags(list(tags))
        if new_tags != customer.tags:
            changes["tags"] = (customer.tags, new_tags)
            customer.tag_rows = [CustomerTag(tag=t) for t in new_tags]
            audit.record(
                session,
                "update",
                "customer",
                customer.id,
                before={"tags": changes["tags"][0]},
                after={"tags": new_tags},
            )
    if "display_name" in changes:
        customer.search_key = search_key(customer.display_name)
    if not changes:
        return changes
    customer.updated_at = utcnow()  # a real column change, so the version rises for tags too
    session.flush()
    data, actor_id = as_dict(customer), audit.current_actor(session).user_id
    events.emit(session, crm, "customer_updated", customer=data, changes=changes, actor_id=actor_id)
    if publish:
        webhooks.publish_updated(session, crm, data, changes, actor_id)
    return changes


def add_identity(
    session: Session, crm: Crm, customer: Customer, channel: str, value: str
) -> CustomerIdentity:
    """Give ``customer`` one more identity."""
    ((channel, normalised),) = normalised_identities(
        [(channel, value)], crm.settings.default_region
    )
    _check_identities(session, [(channel, normalised)], customer.id)
    existing = next(
        (i for i in customer.identities if (i.channel, i.value) == (channel, normalised)), None
    )
    if existing is not None:
        return existing
    before = _identities(customer)
    identity = CustomerIdentity(channel=channel, value=normalised)
    customer.identities.append(identity)
    session.flush()
    _publish_identities(session, crm, customer, before)
    audit.record(
        session,
        "update",
        "customer",
        customer.id,
        after={"identity_added": {"channel": channel, "value": normalised}},
    )
    return identity


def remove_identity(session: Session, crm: Crm, customer: Customer, identity_id: int) -> None:
    """Take an identity away from ``customer``; ``LookupError`` if it has none with that id.

    The change is published as the ``customer.updated`` webhook event.
    """
    identity = next((i for i in customer.identities if i.id == identity_id), None)
    if identity is None:
        raise LookupError(f"customer {customer.id} has no identity {identity_id}")
    before = _identities(customer)
    customer.identities.remove(identity)
    session.flush()
    _publish_identities(session, crm, customer, before)
    audit.record(
        session,
        "update",
        "customer",
        customer.id,
        before={"identity_removed": {"channel": identity.channel, "value": identity.value}},
    )


def _identities(customer: Customer) -> list[dict[str, str]]:
    return [{"channel": i.channel, "value": i.value} for i in customer.identities]


def _publish_identities(
    session: Session, crm: Crm, customer: Customer, before: list[dict[str, str]]
) -> None:
    """Publish an identity added or removed as ``customer.updated`` (field ``identities``)."""
    changes = {"identities": (before, _identities(customer))}
    actor_id = audit.current_actor(session).user_id
    webhooks.publish_updated(session, crm, as_dict(customer), changes, actor_id)


def set_archived(session: Session, crm: Crm, customer: Customer, archived: bool) -> bool:
    """Archive or restore ``customer``; return whether anything changed."""
    if customer.archived == archived:
        return False
    customer.archived = archived
    session.flush()
    data, actor_id = as_dict(customer), audit.current_actor(session).user_id
    changes = {"archived": (not archived, archived)}
    events.emit(session, crm, "customer_updated", customer=data, changes=changes, actor_id=actor_id)
    webhooks.publish_updated(session, crm, data, changes, actor_id)
    return True


def delete(session: Session, crm: Crm, customer: Customer, *, publish: bool = True) -> None:
    """Delete ``customer`` with its identities and tags; the audit log keeps its full state.

    ``publish=False`` leaves out the ``customer.deleted`` webhook event (a merge publishes
    ``customer.merged`` instead: the customer lives on in the survivor).
    """
    last = as_dict(customer)
    audit.record(session, "delete", "customer", customer.id, before=last)
    # A SQL delete (not the ORM's) so the full state above is the only audit row;
    # identities and tags go with ON DELETE CASCADE.
    session.execute(sa_delete(Customer).where(Customer.id == customer.id))
    session.expunge(customer)
    events.emit(session, crm, "customer_deleted", customer=last)
    if publish:
        webhooks.publish_deleted(session, crm, last)
