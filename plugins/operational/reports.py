"""Operational reports: activity per user, pipeline by stage and owner, ticket SLA, satisfaction.

Each report is a list of rows (plain dicts) with its columns, computed in SQL over the rows the
user may see (their record rule), for the page, its chart, and the CSV download alike.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from core import records
from core.i18n import N_
from core.models import User
from plugins.operational.models import Interaction, Opportunity, Survey, Ticket


@dataclass
class Report:
    """A computed report: its columns (name, label), rows, and how it was computed."""

    name: str
    title: str
    columns: list[tuple[str, str]]
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""
    chart: tuple[str, str] | None = None  # (label column, value column)


def _rule(crm: Any, user: Any, name: str, model: type, owner: str) -> Any:
    return records.visible(
        crm, user, name, owner_column=getattr(model, owner), customer_column=model.customer_id
    )


def _where(query: Any, *conditions: Any) -> Any:
    for condition in conditions:
        if condition is not None:
            query = query.where(condition)
    return query


def activity(
    session: Session, crm: Any, user: Any, since: dt.datetime, until: dt.datetime
) -> Report:
    """Interactions logged per user and kind in the period, and tickets each resolved."""
    counts = {}
    kinds = ("call", "meeting", "email", "chat", "visit", "note")
    query = _where(
        select(Interaction.user_id, Interaction.kind, func.count())
        .where(Interaction.occurred_at >= since, Interaction.occurred_at < until)
        .group_by(Interaction.user_id, Interaction.kind),
        _rule(crm, user, "operational.interaction", Interaction, "user_id"),
    )
    for user_id, kind, count in session.execute(query):
        counts.setdefault(user_id, dict.fromkeys(kinds, 0))[kind] = count
    resolved = _where(
        select(Ticket.assignee_id, func.count())
        .where(Ticket.resolved_at >= since, Ticket.resolved_at < until)
        .group_by(Ticket.assignee_id),
        _rule(crm, user, "operational.ticket", Ticket, "assignee_id"),
    )
    tickets = dict(session.execute(resolved).all())
    names = dict(session.execute(select(User.id, User.name)).all())
    rows = [
        {
            "user": names.get(uid, "—"),
            **counts.get(uid, dict.fromkeys(kinds, 0)),
            "tickets": tickets.get(uid, 0),
        }
        for uid in sorted(set(counts) | set(tickets), key=lambda i: names.get(i, ""))
    ]
    for row in rows:
        row["total"] = sum(row[k] for k in kinds)
    return Report(
        "activity",
        N_("Activity per user"),
        [
            ("user", N_("User")),
            ("call", N_("Calls")),
            ("meeting", N_("Meetings")),
            ("email", N_("E-mails")),
            ("chat", N_("Chats")),
            ("visit", N_("Visits")),
            ("note", N_("Notes")),
            ("tickets", N_("Tickets resolved")),
            ("total", N_("Interactions")),
        ],
        rows,
        N_("Interactions each user logged in the period, by kind, and the tickets they resolved."),
        ("user", "total"),
    )


def pipeline(session: Session, crm: Any, user: Any) -> Report:
    """Open opportunities by stage and owner: count, expected and weighted value."""
    weighted = func.sum(Opportunity.expected_revenue_minor * Opportunity.probability / 100)
    query = _where(
        select(
            Opportunity.stage,
            Opportunity.owner_id,
            func.count(),
            func.sum(Opportunity.expected_revenue_minor),
            weighted,
        )
        .where(Opportunity.closed_at.is_(None))
        .group_by(Opportunity.stage, Opportunity.owner_id)
        .order_by(Opportunity.stage, Opportunity.owner_id),
        _rule(crm, user, "operational.opportunity", Opportunity, "owner_id"),
    )
    names = dict(session.execute(select(User.id, User.name)).all())
    rows = [
        {
            "stage": stage,
            "owner": names.get(owner, "—"),
            "count": count,
            "expected_minor": int(expected or 0),
            "weighted_minor": int(value or 0),
        }
        for stage, owner, count, expected, value in session.execute(query)
    ]
    return Report(
        "pipeline",
        N_("Pipeline by stage and owner"),
        [
            ("stage", N_("Stage")),
            ("owner", N_("Owner")),
            ("count", N_("Opportunities")),
            ("expected_minor", N_("Expected revenue")),
            ("weighted_minor", N_("Weighted value")),
        ],
        rows,
        N_("Open opportunities; weighted value is expected revenue times the probability."),
        ("stage", "weighted_minor"),
    )


def sla(session: Session, crm: Any, user: Any, since: dt.datetime, until: dt.datetime) -> Report:
    """Tickets opened in the period per priority, with first-response and resolution breaches."""
    now = dt.datetime.now(dt.UTC)
    late_response = case(
        (and_(Ticket.first_responded_at.is_(None), Ticket.first_response_due < now), 1),
        (Ticket.first_responded_at > Ticket.first_response_due, 1),
        else_=0,
    )
    late_resolution = case(
        (and_(Ticket.resolved_at.is_(None), Ticket.resolution_due < now), 1),
        (Ticket.resolved_at > Ticket.resolution_due, 1),
        else_=0,
    )
    query = _where(
        select(
            Ticket.priority,
            func.count(),
            func.sum(late_response),
            func.sum(late_resolution),
            func.sum(case((Ticket.resolved_at.is_not(None), 1), else_=0)),
        )
        .where(Ticket.created_at >= since, Ticket.created_at < until)
        .group_by(Ticket.priority),
        _rule(crm, user, "operational.ticket", Ticket, "assignee_id"),
    )
    order = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
    rows = sorted(
        (
            {
                "priority": p,
                "tickets": n,
                "late_response": int(r or 0),
                "late_resolution": int(s or 0),
                "resolved": int(d or 0),
            }
            for p, n, r, s, d in session.execute(query)
        ),
        key=lambda row: order.get(row["priority"], 9),
    )
    return Report(
        "sla",
        N_("Ticket SLA"),
        [
            ("priority", N_("Priority")),
            ("tickets", N_("Tickets")),
            ("resolved", N_("Resolved")),
            ("late_response", N_("First response late")),
            ("late_resolution", N_("Resolution late")),
        ],
        rows,
        N_(
            "Tickets opened in the period; late means past the SLA policy's due time, "
            "or still open after it."
        ),
        ("priority", "late_resolution"),
    )


def satisfaction(
    session: Session, crm: Any, user: Any, since: dt.datetime, until: dt.datetime
) -> Report:
    """Answered surveys per month: how many and the average rating."""
    rule = records.customer_condition(crm, user)
    query = select(Survey.answered_at, Survey.rating).where(
        Survey.answered_at >= since, Survey.answered_at < until, Survey.rating.is_not(None)
    )
    if rule is not None:
        from core.customers.models import Customer

        query = query.where(Survey.customer_id.in_(select(Customer.id).where(rule)))
    months: dict[str, list[int]] = {}
    for answered_at, rating in session.execute(query):
        months.setdefault(answered_at.strftime("%Y-%m"), []).append(rating)
    rows = [
        {"month": m, "answers": len(r), "average": round(sum(r) / len(r), 2)}
        for m, r in sorted(months.items())
    ]
    return Report(
        "satisfaction",
        N_("Satisfaction over time"),
        [
            ("month", N_("Month")),
            ("answers", N_("Answers")),
            ("average", N_("Average rating (1-5)")),
        ],
        rows,
        N_("Answered satisfaction surveys per month (UTC) and their average rating."),
        ("month", "average"),
    )


REPORTS = ("activity", "pipeline", "sla", "satisfaction")


def build(
    name: str, session: Session, crm: Any, user: Any, since: dt.datetime, until: dt.datetime
) -> Report:
    """The report called ``name`` (one of ``REPORTS``)."""
    if name == "pipeline":
        return pipeline(session, crm, user)
    if name == "activity":
        return activity(session, crm, user, since, until)
    if name == "sla":
        return sla(session, crm, user, since, until)
    if name == "satisfaction":
        return satisfaction(session, crm, user, since, until)
    raise KeyError(name)
