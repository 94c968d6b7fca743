"""What the operational module offers modules that work across records: record types that can
be discussed, followed and handed over, timeline sources for the unified customer history, and
the record events its services announce.

Nothing here imports another module: other modules (the collaborative one) find these through
the core's ``record_types``, ``timeline_sources`` and ``record_event`` hooks. Every timeline
source applies the same record rules as the module's own lists and APIs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, and_, exists, literal, or_, select, union_all
from sqlalchemy.orm import aliased

from core import events, records
from core.i18n import N_, format_money
from core.models import User
from core.records import RecordType
from core.timeline import TimelineEntry, TimelineQuery, TimelineSource
from plugins.operational.models import (
    Interaction,
    LostReason,
    Opportunity,
    Order,
    Stage,
    Ticket,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.runtime import Crm

OPPORTUNITY = "operational.opportunity"
TICKET = "operational.ticket"
ORDER = "operational.order"

#: Orders in these statuses show as such on the timeline, not as placed.
ORDER_LABELS = {
    "cancelled": N_("Order cancelled"),
    "returned": N_("Order returned"),
}


def record_types() -> list[RecordType]:
    """Opportunities, tickets and orders, with the columns the module's record rules use."""
    return [
        RecordType(
            OPPORTUNITY,
            N_("Opportunity"),
            Opportunity,
            "/ui/opportunity/{id}",
            title="title",
            owner_column="owner_id",
            customer_column="customer_id",
            team_column="team_id",
            resource="opportunity",
        ),
        RecordType(
            TICKET,
            N_("Ticket"),
            Ticket,
            "/ui/ticket/{id}",
            title="subject",
            owner_column="assignee_id",
            customer_column="customer_id",
            team_column="team_id",
            resource="ticket",
        ),
        RecordType(
            ORDER,
            N_("Order"),
            Order,
            "/ui/order/{id}",
            title="ref",
            owner_column="owner_id",
            customer_column="customer_id",
            resource="order",
        ),
    ]


def _kind(name: str) -> RecordType:
    return next(kind for kind in record_types() if kind.name == name)


def announce(
    session: Session,
    crm: Crm,
    record_type: str,
    record: Any,
    verb: str,
    label: str,
    *,
    actor_id: int | None = None,
) -> None:
    """Announce ``verb`` on ``record`` (of one of :func:`record_types`) after ``session`` commits.

    The title, customer and owner come from the record type's columns; the owner is told
    besides the record's followers.
    """
    kind = _kind(record_type)
    owner = getattr(record, kind.owner_column) if kind.owner_column else None
    events.announce(
        session,
        crm,
        events.RecordEvent(
            record_type=record_type,
            record_id=record.id,
            verb=verb,
            label=label,
            title=str(getattr(record, kind.title)),
            customer_id=getattr(record, kind.customer_column) if kind.customer_column else None,
            actor_id=actor_id,
            recipients=(owner,) if owner is not None else (),
        ),
    )


# --- timeline ---------------------------------------------------------------------------------


def _restrict(query: Select[Any], *conditions: ColumnElement[bool] | None) -> Select[Any]:
    """``query`` with the given conditions, leaving out those that are ``None`` (no rule)."""
    wanted = [c for c in conditions if c is not None]
    return query.where(*wanted) if wanted else query


def _interaction_entries(query: TimelineQuery) -> list[TimelineEntry]:
    from plugins.operational.views import CHANNEL_LABELS

    rule = records.visible(
        query.crm,
        query.user,
        "operational.interaction",
        owner_column=Interaction.user_id,
        customer_column=Interaction.customer_id,
    )
    stmt = (
        select(Interaction, User.name)
        .outerjoin(User, User.id == Interaction.user_id)
        .where(Interaction.customer_id.in_(query.customers))
    )
    if query.before is not None:
        stmt = stmt.where(Interaction.occurred_at < query.before)
    stmt = _restrict(stmt, rule)
    stmt = stmt.order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(query.limit)
    entries = []
    for row, actor in query.session.execute(stmt):
        label = CHANNEL_LABELS.get(row.channel, row.channel)
        entries.append(
            TimelineEntry(
                at=row.occurred_at,
                kind="interaction",
                label=label,
                title=row.subject,
                customer_id=row.customer_id,
                url=f"/ui/interaction/{row.id}",
                record_type=None,
                record_id=row.id,
                actor=actor,
                detail=(row.body or "")[:200],
            )
        )
    return entries


def _order_entries(query: TimelineQuery) -> list[TimelineEntry]:
    kind = _kind(ORDER)
    stmt = select(Order).where(Order.customer_id.in_(query.customers))
    if query.before is not None:
        stmt = stmt.where(Order.placed_at < query.before)
    stmt = _restrict(stmt, records.record_condition(query.crm, query.user, kind))
    stmt = stmt.order_by(Order.placed_at.desc(), Order.id.desc()).limit(query.limit)
    return [
        TimelineEntry(
            at=order.placed_at,
            kind="order",
            label=ORDER_LABELS.get(order.status, N_("Order placed")),
            title=order.ref,
            customer_id=order.customer_id,
            url=kind.link(order.id),
            record_type=ORDER,
            record_id=order.id,
            detail=format_money(order.total_minor, order.currency, query.user.language),
        )
        for order in query.session.scalars(stmt)
    ]


def _ticket_entries(query: TimelineQuery) -> list[TimelineEntry]:
    """Openings and resolutions (or closings without one) as separate entries, in one query."""
    kind = _kind(TICKET)
    rule = records.record_condition(query.crm, query.user, kind)
    ended = Ticket.resolved_at.is_not(None)
    branches = []
    for event, at in (
        ("opened", Ticket.created_at),
        ("resolved", Ticket.resolved_at),
        ("closed", Ticket.closed_at),
    ):
        branch = select(
            at.label("at"),
            literal(event).label("event"),
            Ticket.id,
            Ticket.subject,
            Ticket.customer_id,
        ).where(Ticket.customer_id.in_(query.customers), at.is_not(None))
        if event == "closed":
            branch = branch.where(~ended)  # a resolved ticket's entry is its resolution
        if query.before is not None:
            branch = branch.where(at < query.before)
        branches.append(_restrict(branch, rule))
    rows = union_all(*branches).subquery()
    stmt = select(rows).order_by(rows.c.at.desc(), rows.c.id.desc()).limit(query.limit)
    labels = {
        "opened": N_("Ticket opened"),
        "resolved": N_("Ticket resolved"),
        "closed": N_("Ticket closed"),
    }
    return [
        TimelineEntry(
            at=row.at,
            kind="ticket",
            label=labels[row.event],
            title=row.subject,
            customer_id=row.customer_id,
            url=kind.link(row.id),
            record_type=TICKET,
            record_id=row.id,
        )
        for row in query.session.execute(stmt)
    ]


def _stage_kind() -> Any:
    """The kind (open, won, lost) of the opportunity's stage in its team's pipeline, or in the
    default pipeline when the team has none of its own (as ``pipeline.stages`` resolves it)."""
    stage, own = aliased(Stage), aliased(Stage)
    team_has_stages = exists().where(own.team_id == Opportunity.team_id)
    return (
        select(stage.kind)
        .where(
            stage.name == Opportunity.stage,
            or_(
                stage.team_id == Opportunity.team_id,
                and_(stage.team_id.is_(None), ~team_has_stages),
            ),
        )
        .correlate(Opportunity)
        .limit(1)
        .scalar_subquery()
    )


def _deal_entries(query: TimelineQuery) -> list[TimelineEntry]:
    kind = _kind(OPPORTUNITY)
    stmt = (
        select(Opportunity, _stage_kind().label("stage_kind"), User.name, LostReason.label)
        .outerjoin(User, User.id == Opportunity.owner_id)
        .outerjoin(LostReason, LostReason.id == Opportunity.lost_reason_id)
        .where(Opportunity.customer_id.in_(query.customers), Opportunity.closed_at.is_not(None))
    )
    if query.before is not None:
        stmt = stmt.where(Opportunity.closed_at < query.before)
    stmt = _restrict(stmt, records.record_condition(query.crm, query.user, kind))
    stmt = stmt.order_by(Opportunity.closed_at.desc(), Opportunity.id.desc()).limit(query.limit)
    entries = []
    for deal, stage_kind, owner, reason in query.session.execute(stmt):
        lost = stage_kind == "lost"
        money = format_money(deal.expected_revenue_minor, deal.currency, query.user.language)
        entries.append(
            TimelineEntry(
                at=deal.closed_at,
                kind="deal",
                label=N_("Deal lost") if lost else N_("Deal won"),
                title=deal.title,
                customer_id=deal.customer_id,
                url=kind.link(deal.id),
                record_type=OPPORTUNITY,
                record_id=deal.id,
                actor=owner,
                detail=(reason or "") if lost else money,
            )
        )
    return entries


def timeline_sources() -> Iterable[TimelineSource]:
    """Interactions, orders, tickets (opened, resolved) and deals (won, lost)."""
    return [
        TimelineSource(
            "interaction",
            N_("Interactions"),
            "operational.interaction:read",
            _interaction_entries,
        ),
        TimelineSource("order", N_("Orders"), "operational.order:read", _order_entries),
        TimelineSource("ticket", N_("Tickets"), "operational.ticket:read", _ticket_entries),
        TimelineSource("deal", N_("Deals"), "operational.opportunity:read", _deal_entries),
    ]
