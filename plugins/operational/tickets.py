"""Service tickets: SLA due times, status transitions, responses, resolution and breaches.

SLA clocks run in plain wall-clock time from the ticket's creation:

- The ``SlaPolicy`` of the ticket's priority gives the first response and resolution due times
  when the ticket is created. Changing the priority recomputes both from the creation time with
  the new priority's policy; changing a policy affects tickets created afterwards only.
- A pending ticket (waiting on the customer) keeps its clock running: nothing pauses it. This
  keeps the rule simple to explain and to compute in one query; business hours and pauses are
  not modelled.
- The first response clock stops at the first outbound response (:func:`respond`), or when the
  ticket is resolved or closed if nobody responded before. The resolution clock stops when the
  ticket is resolved, or closed without being resolved. Reopening a resolved ticket runs its
  clocks again against the original due times (the first response one too when nobody has
  responded yet: the customer is still waiting for one).

A ticket is *breached* when a clock stopped after its due time, or is still running past it
(:func:`breaches`, and :func:`breach_condition` for the same rule inside a query).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, func, literal, or_, select
from sqlalchemy.orm import Session

from core.customers.models import Customer
from core.db import UTCDateTime, utcnow
from core.i18n import N_
from core.models import Team, User
from plugins.operational import collaboration, interactions, surveys, webhooks
from plugins.operational.models import (
    TICKET_PRIORITIES,
    TICKET_STATUSES,
    Interaction,
    SlaPolicy,
    Ticket,
)

if TYPE_CHECKING:
    from core.runtime import Crm

#: status -> the statuses it may move to. ``closed`` is final; ``resolved`` may be reopened.
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"open", "pending", "resolved", "closed"}),
    "open": frozenset({"pending", "resolved", "closed"}),
    "pending": frozenset({"open", "resolved", "closed"}),
    "resolved": frozenset({"open", "closed"}),
    "closed": frozenset(),
}
#: Fields :func:`update` changes (the status has its own rules: :func:`change_status`).
EDITABLE = ("subject", "description", "priority", "assignee_id", "team_id")
FIRST_RESPONSE = "first_response"
RESOLUTION = "resolution"
MAX_SUBJECT = 200


class TicketError(ValueError):
    """A value or change the ticket refuses; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class StaleTicket(Exception):
    """The ticket was changed by someone else since the version the caller read."""

    def __init__(self, ticket: Ticket) -> None:
        super().__init__(f"ticket {ticket.id} is at version {ticket.version}")
        self.ticket = ticket


def due_times(
    session: Session, priority: str, start: dt.datetime
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """First response and resolution due times of a ticket of ``priority`` opened at ``start``.

    ``(None, None)`` when no policy exists for the priority (no SLA, never breached).
    """
    policy = session.scalar(select(SlaPolicy).where(SlaPolicy.priority == priority))
    if policy is None:
        return None, None
    return (
        start + dt.timedelta(minutes=policy.first_response_minutes),
        start + dt.timedelta(minutes=policy.resolution_minutes),
    )


def _subject(value: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise TicketError("subject", "subject must not be empty")
    if len(text) > MAX_SUBJECT:
        raise TicketError("subject", f"subject may have at most {MAX_SUBJECT} characters")
    return text


def _priority(value: object) -> str:
    if value not in TICKET_PRIORITIES:
        raise TicketError("priority", f"priority must be one of {', '.join(TICKET_PRIORITIES)}")
    return str(value)


def _check_references(session: Session, values: dict[str, Any]) -> None:
    assignee_id = values.get("assignee_id")
    if assignee_id is not None:
        user = session.get(User, assignee_id)
        if user is None or not user.is_active:
            raise TicketError("assignee_id", f"no active user {assignee_id}")
    team_id = values.get("team_id")
    if team_id is not None and session.get(Team, team_id) is None:
        raise TicketError("team_id", f"no team {team_id}")


def _clean(session: Session, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (a subset of ``EDITABLE``) checked and normalised."""
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise TicketError(sorted(unknown)[0], "this field cannot be changed here")
    cleaned = dict(values)
    if "subject" in cleaned:
        cleaned["subject"] = _subject(cleaned["subject"])
    if "priority" in cleaned:
        cleaned["priority"] = _priority(cleaned["priority"])
    if "description" in cleaned:
        cleaned["description"] = (cleaned["description"] or "").strip() or None
    _check_references(session, cleaned)
    return cleaned


def create(
    session: Session,
    customer_id: int,
    subject: str,
    *,
    description: str | None = None,
    priority: str = "normal",
    assignee_id: int | None = None,
    team_id: int | None = None,
    now: dt.datetime | None = None,
    crm: Crm | None = None,
    actor_id: int | None = None,
) -> Ticket:
    """Open a ticket for a customer; its SLA due times come from its priority's policy.

    Given ``crm``, the new ticket is announced (``record_event``) once the transaction commits
    and published as the ``ticket.opened`` webhook event.
    """
    now = now or utcnow()
    if session.get(Customer, customer_id) is None:
        raise TicketError("customer_id", f"no customer {customer_id}")
    values = _clean(
        session,
        {
            "subject": subject,
            "description": description,
            "priority": priority,
            "assignee_id": assignee_id,
            "team_id": team_id,
        },
    )
    first_due, resolution_due = due_times(session, values["priority"], now)
    ticket = Ticket(
        customer_id=customer_id,
        status="new",
        first_response_due=first_due,
        resolution_due=resolution_due,
        created_at=now,
        updated_at=now,
        **values,
    )
    session.add(ticket)
    session.flush()
    if crm is not None:
        collaboration.announce(
            session,
            crm,
            collaboration.TICKET,
            ticket,
            "created",
            N_("New ticket"),
            actor_id=actor_id,
        )
        webhooks.publish_ticket(session, crm, webhooks.TICKET_OPENED, ticket, actor_id)
    return ticket


def check_version(ticket: Ticket, expected_version: int | None) -> None:
    """``StaleTicket`` when ``expected_version`` is given and is not the ticket's version."""
    if expected_version is not None and ticket.version != expected_version:
        raise StaleTicket(ticket)


def update(
    session: Session,
    ticket: Ticket,
    values: dict[str, Any],
    expected_version: int,
) -> dict[str, tuple[Any, Any]]:
    """Change fields of ``EDITABLE``; return what changed as ``{field: (before, after)}``.

    A new priority recomputes the SLA due times from the ticket's creation time.
    """
    check_version(ticket, expected_version)
    cleaned = _clean(session, values)
    if cleaned.get("priority", ticket.priority) != ticket.priority:
        # Queried before any change, so that the whole update is one flush (one version).
        cleaned["first_response_due"], cleaned["resolution_due"] = due_times(
            session, cleaned["priority"], ticket.created_at
        )
    changes: dict[str, tuple[Any, Any]] = {}
    for name, value in cleaned.items():
        if getattr(ticket, name) != value:
            changes[name] = (getattr(ticket, name), value)
            setattr(ticket, name, value)
    return changes


def _move(ticket: Ticket, status: str, now: dt.datetime) -> None:
    """Apply an allowed transition and its timestamps."""
    if status not in TICKET_STATUSES:
        raise TicketError("status", f"status must be one of {', '.join(TICKET_STATUSES)}")
    if status not in TRANSITIONS[ticket.status]:
        allowed = ", ".join(sorted(TRANSITIONS[ticket.status])) or "none (closed is final)"
        raise TicketError(
            "status", f"a {ticket.status} ticket cannot become {status}; allowed: {allowed}"
        )
    if status == "resolved":
        ticket.resolved_at = now
    elif status == "closed":
        ticket.closed_at = now
    elif ticket.status == "resolved":
        ticket.resolved_at = None  # reopened: the resolution clock runs again
    ticket.status = status


def change_status(ticket: Ticket, status: str, now: dt.datetime | None = None) -> None:
    """Move the ticket to ``status`` if :data:`TRANSITIONS` allows it (``TicketError`` else).

    Resolving goes through :func:`resolve`, which also sends the satisfaction survey.
    """
    if status == "resolved":
        raise TicketError("status", "resolve tickets with resolve, which sends the survey")
    _move(ticket, status, now or utcnow())


def mark_responded(ticket: Ticket, at: dt.datetime) -> None:
    """Record a response sent at ``at``: stamps the first one, and opens a new ticket.

    :func:`respond` calls it; code that logs outbound interactions on a ticket in another way
    (a mail gateway) calls it too.
    """
    if ticket.first_responded_at is None:
        ticket.first_responded_at = at
    if ticket.status == "new":
        ticket.status = "open"


def respond(
    session: Session,
    ticket: Ticket,
    body: str,
    *,
    user_id: int | None,
    subject: str | None = None,
    channel: str = "email",
    kind: str = "email",
    now: dt.datetime | None = None,
) -> Interaction:
    """Log an outbound response to the customer on the ticket's timeline.

    The first response stamps ``first_responded_at`` (stopping that SLA clock) and moves a new
    ticket to ``open``. ``TicketError`` for a closed ticket or an empty body; ``ValueError`` from
    :func:`interactions.log` names a bad channel or kind.
    """
    if ticket.status == "closed":
        raise TicketError("status", "the ticket is closed; open a new one")
    if not body.strip():
        raise TicketError("body", "the response must not be empty")
    now = now or utcnow()
    interaction = interactions.log(
        session,
        ticket.customer_id,
        kind,
        channel,
        subject or f"Re: {ticket.subject}",
        direction="outbound",
        body=body.strip(),
        user_id=user_id,
        occurred_at=now,
        source="ticket",
        ticket_id=ticket.id,
    )
    mark_responded(ticket, now)
    session.flush()
    return interaction


def resolve(
    session: Session,
    ticket: Ticket,
    *,
    now: dt.datetime | None = None,
    survey_days: int = surveys.DEFAULT_DAYS,
    crm: Crm | None = None,
    actor_id: int | None = None,
) -> surveys.NewSurvey:
    """Resolve the ticket and create its satisfaction survey; return it with its plain token.

    The token is in the returned value only (its hash is stored): hand the link to the customer
    now. ``TicketError`` when the ticket's status cannot become ``resolved``. Given ``crm``, the
    resolution is announced (``record_event``) once the transaction commits and published as
    the ``ticket.resolved`` webhook event.
    """
    now = now or utcnow()
    _move(ticket, "resolved", now)
    session.flush()
    if crm is not None:
        collaboration.announce(
            session,
            crm,
            collaboration.TICKET,
            ticket,
            "resolved",
            N_("Ticket resolved"),
            actor_id=actor_id,
        )
        webhooks.publish_ticket(session, crm, webhooks.TICKET_RESOLVED, ticket, actor_id)
    return surveys.for_ticket(session, ticket.id, ticket.customer_id, days=survey_days, now=now)


def _late(due: dt.datetime | None, stopped: dt.datetime | None, now: dt.datetime) -> bool:
    return due is not None and (stopped or now) > due


def breaches(ticket: Ticket, now: dt.datetime | None = None) -> list[str]:
    """Which SLA targets the ticket missed or is missing at ``now``.

    ``first_response`` and/or ``resolution``; empty when it is within its SLA.
    """
    now = now or utcnow()
    found = []
    responded = ticket.first_responded_at or ticket.resolved_at or ticket.closed_at
    if _late(ticket.first_response_due, responded, now):
        found.append(FIRST_RESPONSE)
    if _late(ticket.resolution_due, ticket.resolved_at or ticket.closed_at, now):
        found.append(RESOLUTION)
    return found


def _late_condition(due: Any, stops: list[Any], now: dt.datetime) -> ColumnElement[bool]:
    stopped = func.coalesce(*stops, literal(now, UTCDateTime()))
    return and_(due.is_not(None), stopped > due)


def breach_condition(now: dt.datetime | None = None) -> ColumnElement[bool]:
    """The rule of :func:`breaches` as a condition on ``operational_ticket`` rows."""
    now = now or utcnow()
    return or_(
        _late_condition(
            Ticket.first_response_due,
            [Ticket.first_responded_at, Ticket.resolved_at, Ticket.closed_at],
            now,
        ),
        _late_condition(Ticket.resolution_due, [Ticket.resolved_at, Ticket.closed_at], now),
    )


def breached(
    session: Session,
    now: dt.datetime | None = None,
    *,
    visible: ColumnElement[bool] | None = None,
    open_only: bool = False,
) -> list[Ticket]:
    """Tickets whose first response or resolution is overdue at ``now``, or was late.

    ``visible`` is a record rule to apply; ``open_only`` leaves out resolved and closed ones.
    """
    query = select(Ticket).where(breach_condition(now)).order_by(Ticket.id)
    if visible is not None:
        query = query.where(visible)
    if open_only:
        query = query.where(Ticket.status.not_in(("resolved", "closed")))
    return list(session.scalars(query))


def as_dict(ticket: Ticket, now: dt.datetime | None = None) -> dict[str, Any]:
    """The ticket as plain data, with its breaches at ``now`` (what the API and CLI show)."""
    found = breaches(ticket, now)
    return {
        **{
            name: getattr(ticket, name)
            for name in (
                "id",
                "customer_id",
                "subject",
                "description",
                "priority",
                "status",
                "assignee_id",
                "team_id",
                "first_response_due",
                "resolution_due",
                "first_responded_at",
                "resolved_at",
                "closed_at",
                "created_at",
                "updated_at",
                "version",
            )
        },
        "breached": bool(found),
        "breaches": found,
    }


__all__ = [
    "EDITABLE",
    "TRANSITIONS",
    "StaleTicket",
    "TicketError",
    "as_dict",
    "breach_condition",
    "breached",
    "breaches",
    "change_status",
    "check_version",
    "create",
    "due_times",
    "mark_responded",
    "resolve",
    "respond",
    "update",
]
