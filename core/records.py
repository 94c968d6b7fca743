"""Record rules: which rows of a model a signed-in user may see.

Each role has a scope; a user gets the widest scope of their roles:

- ``all``: every record;
- ``team``: records owned by a member of the user's team (or by the user);
- ``own``: records the user owns;
- ``shared``: only records a module's rule shares with the user (a partner's contact sees the
  customers shared with them, and not the shared pool of unowned records).

Records without an owner are a shared pool that every scope sees, as in Odoo's "own documents"
rule: a new lead nobody has taken yet is for anyone to take. Records that have no owner column
of their own follow the customer they belong to, and so do records of a customer that nobody
owns (an inbound reply the mail gateway logged, a ticket waiting in the queue): they are about
that customer, so they are no more visible than the customer is. Plugins widen what a user
sees (a customer's account team, say) through the ``record_rules`` hook; the conditions are
OR-ed.

The condition goes *inside* the query of every list, search, count, kanban and export, so a page
never shows a row the API would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, false, or_, select

if TYPE_CHECKING:
    from core.auth import SignedIn
    from core.runtime import Crm


def owner_condition(
    user: SignedIn, owner_column: Any, *, pool: bool = True
) -> ColumnElement[bool] | None:
    """Rows whose ``owner_column`` the user's scope covers; ``None`` when it covers all.

    ``pool``: rows without an owner are included (the shared pool).
    """
    from core.models import User

    if user.scope == "all":
        return None
    if user.scope == "shared":
        return false()
    if user.scope == "team" and user.team_id is not None:
        mine = or_(
            owner_column == user.id,
            owner_column.in_(select(User.id).where(User.team_id == user.team_id)),
        )
    else:
        mine = owner_column == user.id
    return or_(owner_column.is_(None), mine) if pool else mine


def _plugin_rules(crm: Crm | None, user: SignedIn, model: str) -> list[ColumnElement[bool]]:
    if crm is None:
        return []
    return [cond for _, cond in crm.contributions("record_rules", crm=crm, user=user, model=model)]


def customer_condition(crm: Crm | None, user: SignedIn) -> ColumnElement[bool] | None:
    """The condition on ``core_customer`` rows the user may see; ``None`` for all of them."""
    from core.customers.models import Customer

    own = owner_condition(user, Customer.owner_id)
    if own is None:
        return None
    return or_(own, *_plugin_rules(crm, user, "customer"))


def visible(
    crm: Crm | None,
    user: SignedIn,
    model: str,
    *,
    owner_column: Any = None,
    customer_column: Any = None,
) -> ColumnElement[bool] | None:
    """The condition restricting ``model``'s rows to those ``user`` may see (``None``: all).

    A model with an owner column follows its owner; one with only a customer column follows
    that customer's visibility; one with both is visible through either, a row without an owner
    only through its customer; one with neither is visible to whoever holds its read
    permission.
    """
    if model == "customer":
        return customer_condition(crm, user)
    if user.scope == "all":
        return None
    conditions: list[ColumnElement[bool]] = []
    if owner_column is not None:
        conditions.append(owner_condition(user, owner_column, pool=customer_column is None))
    if customer_column is not None:
        from core.customers.models import Customer

        customers = customer_condition(crm, user)
        if customers is not None:
            conditions.append(customer_column.in_(select(Customer.id).where(customers)))
    if not conditions:
        return None
    return or_(*conditions, *_plugin_rules(crm, user, model))


def can_see_customer(crm: Crm | None, connection: Any, user: SignedIn, customer_id: int) -> bool:
    """Whether customer ``customer_id`` exists and ``user`` may see it (one indexed query)."""
    from core.customers.models import Customer

    query = select(Customer.id).where(Customer.id == customer_id)
    condition = customer_condition(crm, user)
    if condition is not None:
        query = query.where(condition)
    return connection.execute(query).first() is not None


# --- Record types -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordType:
    """A kind of record other modules may refer to by ``(name, id)``: discuss it, follow it,
    hand it to another team, show it in a feed.

    Modules declare theirs with the ``record_types`` hook. ``name`` is the key record rules use
    (``customer``, ``operational.ticket``); ``url`` the record's page, with ``{id}``;
    ``title`` the attribute shown as its title. ``owner_column``, ``customer_column`` and
    ``team_column`` name the model's columns (``customer_column`` is ``"id"`` for customers);
    a type with a ``team_column`` can be handed over to another team. ``resource`` is the UI
    resource whose detail page shows the record (panels such as notes are added there).
    """

    name: str
    label: str
    model: type
    url: str
    title: str = "name"
    owner_column: str | None = None
    customer_column: str | None = None
    team_column: str | None = None
    resource: str | None = None

    @property
    def permission(self) -> str:
        """The permission needed to read records of this type (``<name>:read``)."""
        return f"{self.name}:read"

    def column(self, name: str | None) -> Any:
        """The model attribute called ``name`` (``None`` when ``name`` is)."""
        return None if name is None else getattr(self.model, name)

    def link(self, record_id: int) -> str:
        """The URL of one record's page."""
        return self.url.format(id=record_id)


def record_types(crm: Crm) -> dict[str, RecordType]:
    """Record types declared by the core and the enabled modules, by name (collected once)."""
    return crm.memo(
        "record_types",
        lambda: {item.name: item for _, item in crm.contributions("record_types", crm=crm)},
    )


def record_condition(crm: Crm, user: SignedIn, kind: RecordType) -> ColumnElement[bool] | None:
    """Rows of ``kind`` the user may see (``None``: all of them), by the model's record rules."""
    return visible(
        crm,
        user,
        kind.name,
        owner_column=kind.column(kind.owner_column),
        customer_column=None if kind.name == "customer" else kind.column(kind.customer_column),
    )


def can_see(crm: Crm, db: Any, user: SignedIn, kind: RecordType, record_id: int) -> bool:
    """Whether ``user`` holds the read permission of ``kind`` and its rules show ``record_id``."""
    if kind.permission not in user.permissions:
        return False
    query = select(kind.model.id).where(kind.model.id == record_id)
    condition = record_condition(crm, user, kind)
    if condition is not None:
        query = query.where(condition)
    return db.execute(query).first() is not None


def hidden_references(
    crm: Crm, db: Any, user: SignedIn, references: dict[str, tuple[str, int | None]]
) -> dict[str, str]:
    """The fields of ``references`` (field -> record type name and id) whose record does not
    exist or ``user`` may not see (:func:`can_see`), each with the message to answer with.

    A write names other records (an activity's deal, a form's customer): it may only attach
    something to a record its author may see. ``None`` ids are left out.
    """
    kinds = record_types(crm)
    hidden = {}
    for field, (name, record_id) in references.items():
        if record_id is None:
            continue
        kind = kinds.get(name)
        if kind is None or not can_see(crm, db, user, kind, record_id):
            hidden[field] = f"no {kind.label.lower() if kind else name} {record_id}"
    return hidden


def may_give_to(db: Any, user: SignedIn, owner_id: int) -> bool:
    """Whether ``user`` may make ``owner_id`` the owner or assignee of a record: themselves,
    or someone whose records their scope covers (their team for the ``team`` scope, anyone
    for ``all``). ``customer:assign`` lets them give records to anyone.

    Giving a record to someone outside that reach is a hand-over, not an edit.
    """
    from core.models import User

    if owner_id == user.id or "customer:assign" in user.permissions:
        return True
    query = select(User.id).where(User.id == owner_id)
    condition = owner_condition(user, User.id, pool=False)
    if condition is not None:
        query = query.where(condition)
    return db.execute(query).first() is not None
