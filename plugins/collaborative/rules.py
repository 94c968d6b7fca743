"""Record rules of the collaborative module (the core's ``record_rules`` hook).

They only widen what a user with a restricted scope sees (the core ORs them with its owner
rule), and stay inside the SQL of every list, search, count and export:

- customers whose account team is one of the user's teams, and customers with a pending
  hand-off to one of them (not for the ``shared`` scope: partner contacts see only what is
  shared with them);
- customers shared with the user (:class:`Share`), for every restricted scope;
- records of a type with a ``team_column`` (tickets, opportunities) whose team is one of the
  user's, or with a pending hand-off to one of the user's teams;
- hand-offs: those addressed to the user's teams or sent by the user, and those about a record
  the user may see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, select, true

from core import records
from plugins.collaborative.models import AccountTeam, Handoff, Share
from plugins.collaborative.teams import teams_of

if TYPE_CHECKING:
    from core.auth import SignedIn
    from core.runtime import Crm

#: The model name of hand-offs in record rules (their screens' permission prefix).
HANDOFFS = "collaborative.handoff"


def pending_to_my_teams(user_id: int, record_type: str) -> Any:
    """A select of ids of ``record_type`` records with a pending hand-off to the user's teams."""
    return select(Handoff.record_id).where(
        Handoff.record_type == record_type,
        Handoff.status == "pending",
        Handoff.to_team_id.in_(teams_of(user_id)),
    )


def _customer(user: SignedIn) -> list[ColumnElement[bool]]:
    from core.customers.models import Customer

    shared = Customer.id.in_(select(Share.customer_id).where(Share.user_id == user.id))
    if user.scope == "shared":
        return [shared]
    account = Customer.id.in_(
        select(AccountTeam.customer_id).where(AccountTeam.team_id.in_(teams_of(user.id)))
    )
    return [account, Customer.id.in_(pending_to_my_teams(user.id, "customer")), shared]


def _handoffs(crm: Crm, user: SignedIn) -> list[ColumnElement[bool]]:
    from plugins.collaborative.handoffs import visible_condition

    condition = visible_condition(crm, user)
    return [true() if condition is None else condition]


def conditions(crm: Crm, user: SignedIn, model: str) -> list[ColumnElement[bool]]:
    """Extra conditions under which ``user`` sees rows of ``model`` (OR-ed by the core)."""
    if model == "customer":
        return _customer(user)
    if model == HANDOFFS:
        return _handoffs(crm, user)
    if user.scope == "shared":
        return []
    kind = records.record_types(crm).get(model)
    if kind is None or kind.team_column is None:
        return []
    return [
        kind.column(kind.team_column).in_(teams_of(user.id)),
        kind.model.id.in_(pending_to_my_teams(user.id, kind.name)),
    ]
