"""The activity feed: what happened with the customers I care about, across every module.

Which customers: ``mine`` (the default) is those I follow, those my teams are the account team
of, and those I own; ``following`` and ``team`` are the first two alone. Always intersected
with the customers the user may see. The entries come from ``core.timeline.merge``, so every
enabled module's source (notes, hand-offs, interactions, orders, tickets, deals, alerts) shows,
each applying its own record rules. Pages go back in time with ``before`` (the last entry's
time): the next page holds the entries strictly older than it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from core import timeline
from core.customers.models import Customer
from core.errors import Invalid, NotFoundError
from core.records import can_see_customer, customer_condition
from plugins.collaborative.models import AccountTeam, Follower
from plugins.collaborative.teams import teams_of

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.auth import SignedIn
    from core.runtime import Crm

SCOPES = ("mine", "following", "team")
MAX_LIMIT = 100


@dataclass(frozen=True)
class FeedPage:
    """Entries newest first; ``next_before`` is the cursor of the next page (``None``: the end)."""

    items: list[timeline.TimelineEntry]
    next_before: dt.datetime | None


def kinds(crm: Crm, user: SignedIn) -> list[tuple[str, str]]:
    """The kinds of entry the user may filter on: ``(kind, label msgid)`` of readable sources."""
    return [(source.kind, source.label) for source in timeline.sources(crm, user)]


def customers(crm: Crm, user: SignedIn, scope: str = "mine") -> Any:
    """A selectable of the ids of the customers in ``scope`` that ``user`` may see."""
    if scope not in SCOPES:
        raise Invalid({"scope": f"choose one of {', '.join(SCOPES)}"})
    followed = Customer.id.in_(
        select(Follower.record_id).where(
            Follower.record_type == "customer", Follower.user_id == user.id
        )
    )
    team = Customer.id.in_(
        select(AccountTeam.customer_id).where(AccountTeam.team_id.in_(teams_of(user.id)))
    )
    chosen = {
        "following": followed,
        "team": team,
        "mine": or_(followed, team, Customer.owner_id == user.id),
    }[scope]
    query = select(Customer.id).where(chosen)
    visible = customer_condition(crm, user)
    return query if visible is None else query.where(visible)


def one_customer(crm: Crm, session: Session, user: SignedIn, customer_id: int) -> Any:
    """A selectable of ``customer_id`` alone; ``NotFoundError`` when the user may not see it."""
    if not can_see_customer(crm, session, user, customer_id):
        raise NotFoundError(f"customer {customer_id} not found")
    return select(Customer.id).where(Customer.id == customer_id)


def _check_kinds(crm: Crm, user: SignedIn, wanted: Iterable[str] | None) -> list[str] | None:
    chosen = [k for k in (wanted or ()) if k]
    if not chosen:
        return None
    known = {kind for kind, _ in kinds(crm, user)}
    unknown = sorted(set(chosen) - known)
    if unknown:
        raise Invalid(
            {"kinds": f"unknown kind(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"}
        )
    return chosen


def feed(
    crm: Crm,
    session: Session,
    user: SignedIn,
    *,
    scope: str = "mine",
    kinds: Iterable[str] | None = None,
    before: dt.datetime | None = None,
    limit: int = 30,
    customer_id: int | None = None,
) -> FeedPage:
    """One page of the feed, newest first.

    ``customer_id`` narrows it to that one customer (whatever the scope; ``NotFoundError`` when
    the user may not see it); ``kinds`` to those sources; ``before`` to older entries.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid({"limit": f"between 1 and {MAX_LIMIT}"})
    if before is not None and (before.tzinfo is None or before.utcoffset() is None):
        raise Invalid({"before": "give a time zone (Z or +07:00)"})
    wanted = _check_kinds(crm, user, kinds)
    if customer_id is not None:
        ids = one_customer(crm, session, user, customer_id)
    else:
        ids = customers(crm, user, scope)
    entries = timeline.merge(crm, session, user, ids, before=before, limit=limit + 1, kinds=wanted)
    more = len(entries) > limit
    entries = entries[:limit]
    return FeedPage(entries, entries[-1].at if more and entries else None)


def as_dict(entry: timeline.TimelineEntry) -> dict[str, Any]:
    """An entry as JSON-ready values (``label`` stays the English msgid)."""
    return {
        "at": entry.at.isoformat(),
        "kind": entry.kind,
        "label": entry.label,
        "title": entry.title,
        "customer_id": entry.customer_id,
        "url": entry.url,
        "record_type": entry.record_type,
        "record_id": entry.record_id,
        "actor": entry.actor,
        "detail": entry.detail,
    }
