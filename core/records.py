"""Record rules: which rows of a model a signed-in user may see.

Each role has a scope; a user gets the widest scope of their roles:

- ``all``: every record;
- ``team``: records owned by a member of the user's team (or by the user);
- ``own``: records the user owns.

Records without an owner are a shared pool that every scope sees, as in Odoo's "own documents"
rule: a new lead nobody has taken yet is for anyone to take. Records that have no owner column
of their own follow the customer they belong to. Plugins widen what a user sees (a customer's
account team, say) through the ``record_rules`` hook; the conditions are OR-ed.

The condition goes *inside* the query of every list, search, count, kanban and export, so a page
never shows a row the API would refuse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, or_, select

if TYPE_CHECKING:
    from core.auth import SignedIn
    from core.runtime import Crm


def owner_condition(user: SignedIn, owner_column: Any) -> ColumnElement[bool] | None:
    """Rows whose ``owner_column`` the user's scope covers; ``None`` when it covers all."""
    from core.models import User

    if user.scope == "all":
        return None
    if user.scope == "team" and user.team_id is not None:
        mine = or_(
            owner_column == user.id,
            owner_column.in_(select(User.id).where(User.team_id == user.team_id)),
        )
    else:
        mine = owner_column == user.id
    return or_(owner_column.is_(None), mine)


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
    that customer's visibility; one with neither is visible to whoever holds its read
    permission.
    """
    if model == "customer":
        return customer_condition(crm, user)
    if user.scope == "all":
        return None
    conditions: list[ColumnElement[bool]] = []
    if owner_column is not None:
        conditions.append(owner_condition(user, owner_column))
    if customer_column is not None:
        from core.customers.models import Customer

        customers = customer_condition(crm, user)
        if customers is not None:
            conditions.append(customer_column.in_(select(Customer.id).where(customers)))
    if not conditions:
        return None
    return or_(*conditions, *_plugin_rules(crm, user, model))


def can_see_customer(crm: Crm | None, connection: Any, user: SignedIn, customer_id: int) -> bool:
    """Whether ``user`` may see customer ``customer_id`` (one indexed query when restricted)."""
    from core.customers.models import Customer

    condition = customer_condition(crm, user)
    if condition is None:
        return True
    query = select(Customer.id).where(Customer.id == customer_id, condition)
    return connection.execute(query).first() is not None
