"""REST endpoints for tickets, SLA policies and satisfaction under ``/api/operational/``.

Tickets follow the record rules of their customer and their assignee: a ticket the user may not
see answers 404 everywhere, as if it did not exist. Read routes are ``async def`` and query
synchronously (see ``core.web.deps``); routes that write are plain ``def``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, func, not_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core import audit, records
from core.db import utcnow
from core.runtime import Crm
from core.web.access import access
from core.web.deps import Principal, get_crm, read_session, require_permission, write_session
from core.web.inputs import BODY, NOT_BLANK, Id, Timestamp, Version, Whole
from plugins.operational import interactions, surveys, tickets
from plugins.operational.models import TICKET_PRIORITIES, SlaPolicy, Survey, Ticket

router = APIRouter(tags=["operational: tickets"])

Priority = Literal["low", "normal", "high", "urgent"]
Status = Literal["new", "open", "pending", "resolved", "closed"]
Channel = Literal["phone", "email", "zalo", "facebook", "website", "in_person"]
Kind = Literal["call", "email", "meeting", "chat", "visit", "note"]
COUNT_CAP = 10_000
MAX_SLA_MINUTES = 366 * 24 * 60
STALE = {409: {"description": "stale version; the body holds the current ticket"}}


class TicketIn(BaseModel):
    """A new ticket. Without ``priority`` it is ``normal``; without assignee it is in the queue."""

    model_config = BODY
    customer_id: Id = Field(ge=1)
    subject: str = Field(min_length=1, max_length=200, pattern=NOT_BLANK)
    description: str | None = Field(None, max_length=20_000)
    priority: Priority = "normal"
    assignee_id: Id | None = Field(None, ge=1)
    team_id: Id | None = Field(None, ge=1)


class TicketPatch(BaseModel):
    """Changes to a ticket; ``version`` is the version the client read.

    ``status`` follows the allowed transitions; resolving is ``POST .../resolve``. A field left
    out keeps its value; ``subject`` and ``priority`` cannot be null.
    """

    model_config = BODY
    version: Version = Field(ge=1)
    subject: str = Field(None, min_length=1, max_length=200, pattern=NOT_BLANK)
    description: str | None = Field(None, max_length=20_000)
    priority: Priority = None
    status: Status | None = None
    assignee_id: Id | None = Field(None, ge=1)
    team_id: Id | None = Field(None, ge=1)


class SatisfactionOut(BaseModel):
    """The customer's answer to the ticket's latest answered survey."""

    rating: int
    comment: str | None
    answered_at: dt.datetime


class TicketOut(BaseModel):
    """A ticket with its SLA state now and its satisfaction result."""

    id: int
    customer_id: int
    subject: str
    description: str | None
    priority: str
    status: str
    assignee_id: int | None
    team_id: int | None
    first_response_due: dt.datetime | None
    resolution_due: dt.datetime | None
    first_responded_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int
    breached: bool
    breaches: list[str]
    satisfaction: SatisfactionOut | None


class TicketPage(BaseModel):
    """One page of tickets, newest first. ``total`` stops at 10,000 (then ``total_capped``)."""

    items: list[TicketOut]
    next_cursor: str | None
    total: int
    total_capped: bool


class RespondIn(BaseModel):
    """A response sent to the customer (logged as an outbound interaction on the ticket)."""

    model_config = BODY
    body: str = Field(min_length=1, max_length=20_000, pattern=NOT_BLANK)
    subject: str | None = Field(None, min_length=1, max_length=200)
    channel: Channel = "email"
    kind: Kind = "email"
    version: Version | None = Field(None, ge=1)


class InteractionOut(BaseModel):
    """The interaction the response was logged as."""

    id: int
    customer_id: int
    kind: str
    channel: str
    direction: str
    subject: str
    body: str | None
    occurred_at: dt.datetime
    user_id: int | None
    opportunity_id: int | None
    ticket_id: int | None
    source: str


class RespondOut(BaseModel):
    """The ticket after the response, and the logged interaction."""

    ticket: TicketOut
    interaction: InteractionOut


class ResolveIn(BaseModel):
    """Optional: the ``version`` the client read (409 when stale), how long the survey stays
    open."""

    model_config = BODY
    version: Version | None = Field(None, ge=1)
    survey_days: Whole = Field(surveys.DEFAULT_DAYS, ge=1, le=365)


class ResolvedOut(BaseModel):
    """The resolved ticket and its survey link: shown this once, never stored in clear."""

    ticket: TicketOut
    survey_url: str
    survey_expires_at: dt.datetime


class SlaPolicyIn(BaseModel):
    """Targets in minutes; the resolution target may not be shorter than the response one."""

    model_config = BODY
    first_response_minutes: Whole = Field(ge=1, le=MAX_SLA_MINUTES)
    resolution_minutes: Whole = Field(ge=1, le=MAX_SLA_MINUTES)


class SlaPolicyOut(BaseModel):
    """The SLA of one priority, in minutes."""

    priority: str
    first_response_minutes: int
    resolution_minutes: int


class CustomerSatisfactionOut(BaseModel):
    """A customer's answered surveys and average rating (``null`` before any answer)."""

    customer_id: int
    answered: int
    average: float | None


class MonthlySatisfactionOut(BaseModel):
    """Answers received in a month (``YYYY-MM`` in ``CRM_TIMEZONE``)."""

    month: str
    answered: int
    average: float
    ratings: dict[int, int]


def _invalid(field: str, message: str, where: str = "body") -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"loc": [where, field], "msg": message, "type": "value_error"}],
    )


def _visible(crm: Crm, principal: Principal) -> ColumnElement[bool] | None:
    return records.visible(
        crm,
        principal.user,
        "operational.ticket",
        owner_column=Ticket.assignee_id,
        customer_column=Ticket.customer_id,
    )


def _get(session: Session, crm: Crm, principal: Principal, ticket_id: int) -> Ticket:
    """The ticket, or 404 when it does not exist or the user's record rule hides it."""
    query = select(Ticket).where(Ticket.id == ticket_id)
    rule = _visible(crm, principal)
    if rule is not None:
        query = query.where(rule)
    ticket = session.scalar(query)
    if ticket is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ticket {ticket_id}")
    return ticket


def _outs(session: Session, rows: list[Ticket], now: dt.datetime) -> list[TicketOut]:
    results = surveys.ticket_results(session, [t.id for t in rows])
    return [_out(t, now, results.get(t.id)) for t in rows]


def _out(ticket: Ticket, now: dt.datetime, survey: Survey | None) -> TicketOut:
    satisfaction = None
    if survey is not None and survey.rating is not None and survey.answered_at is not None:
        satisfaction = SatisfactionOut(
            rating=survey.rating, comment=survey.comment, answered_at=survey.answered_at
        )
    return TicketOut(**tickets.as_dict(ticket, now), satisfaction=satisfaction)


def _one(session: Session, ticket: Ticket) -> TicketOut:
    return _outs(session, [ticket], utcnow())[0]


def _stale(session: Session, ticket: Ticket) -> JSONResponse:
    return JSONResponse(
        {
            "detail": f"ticket {ticket.id} was changed by someone else; "
            "review the current values and try again",
            "current": _one(session, ticket).model_dump(mode="json"),
        },
        status_code=status.HTTP_409_CONFLICT,
    )


def _reloaded_stale(crm: Crm, principal: Principal, ticket_id: int) -> Any:
    """After a concurrent commit beat ours: answer 409 with the current ticket.

    The failed flush ended the request's transaction, so the current ticket is read afresh.
    """
    with crm.db.session() as fresh:
        return _stale(fresh, _get(fresh, crm, principal, ticket_id))


def _encode(ticket_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([ticket_id]).encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError):
        values = None
    if not isinstance(values, list) or len(values) != 1 or type(values[0]) is not int:
        raise _invalid("cursor", "cursor is not valid", "query")
    return values[0]


def _filters(
    crm: Crm,
    principal: Principal,
    now: dt.datetime,
    status_: str | None,
    priority: str | None,
    assignee_id: int | None,
    customer_id: int | None,
    breached: bool | None,
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if status_ is not None:
        conditions.append(Ticket.status == status_)
    if priority is not None:
        conditions.append(Ticket.priority == priority)
    if assignee_id is not None:
        conditions.append(Ticket.assignee_id == assignee_id)
    if customer_id is not None:
        conditions.append(Ticket.customer_id == customer_id)
    if breached is not None:
        rule = tickets.breach_condition(now)
        conditions.append(rule if breached else not_(rule))
    visible = _visible(crm, principal)
    if visible is not None:
        conditions.append(visible)
    return conditions


@router.get("/tickets", response_model=TicketPage, openapi_extra=access("operational.ticket:read"))
async def list_tickets(
    status_: Status | None = Query(None, alias="status"),
    priority: Priority | None = None,
    assignee_id: Id | None = Query(None, ge=1),
    customer_id: Id | None = Query(None, ge=1),
    breached: bool | None = Query(None, description="missed or missing an SLA target now"),
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=200),
    principal: Principal = Depends(require_permission("operational.ticket:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> TicketPage:
    """Tickets matching the filters, newest first, one keyset page at a time."""
    now = utcnow()
    conditions = _filters(
        crm, principal, now, status_, priority, assignee_id, customer_id, breached
    )
    query = select(Ticket).where(*conditions).order_by(Ticket.id.desc())
    if cursor:
        query = query.where(Ticket.id < _decode(cursor))
    rows = list(session.scalars(query.limit(limit + 1)))
    next_cursor = _encode(rows[limit - 1].id) if len(rows) > limit else None
    rows = rows[:limit]
    counted = select(Ticket.id).where(*conditions).limit(COUNT_CAP + 1).subquery()
    total = session.scalar(select(func.count()).select_from(counted)) or 0
    return TicketPage(
        items=_outs(session, rows, now),
        next_cursor=next_cursor,
        total=min(total, COUNT_CAP),
        total_capped=total > COUNT_CAP,
    )


@router.post(
    "/tickets",
    response_model=TicketOut,
    status_code=201,
    openapi_extra=access("operational.ticket:create"),
)
def create_ticket(
    body: TicketIn,
    principal: Principal = Depends(require_permission("operational.ticket:create")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> TicketOut:
    """Open a ticket; its SLA due times come from the policy of its priority."""
    if not records.can_see_customer(crm, session, principal.user, body.customer_id):
        raise _invalid("customer_id", f"no customer {body.customer_id}")
    try:
        ticket = tickets.create(session, **body.model_dump(), crm=crm, actor_id=principal.user.id)
    except tickets.TicketError as exc:
        raise _invalid(exc.field, str(exc)) from None
    return _one(session, ticket)


@router.get(
    "/tickets/{ticket_id}",
    response_model=TicketOut,
    openapi_extra=access("operational.ticket:read", scoped=True),
)
async def read_ticket(
    ticket_id: Id,
    principal: Principal = Depends(require_permission("operational.ticket:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> TicketOut:
    """One ticket, with ``breached`` and its satisfaction result."""
    return _one(session, _get(session, crm, principal, ticket_id))


@router.patch(
    "/tickets/{ticket_id}",
    response_model=TicketOut,
    responses=STALE,
    openapi_extra=access("operational.ticket:update", scoped=True),
)
def update_ticket(
    ticket_id: Id,
    body: TicketPatch,
    principal: Principal = Depends(require_permission("operational.ticket:update")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Change a ticket; send the ``version`` you read. A stale version gets 409.

    A new priority recomputes the SLA due times from the creation time.
    """
    ticket = _get(session, crm, principal, ticket_id)
    if body.status == "resolved" and ticket.status != "resolved":
        raise _invalid(
            "status", f"resolve with POST /tickets/{ticket_id}/resolve (sends the survey)"
        )
    data = body.model_dump(exclude={"version", "status"}, exclude_unset=True)
    try:
        tickets.update(session, ticket, data, body.version)
        if body.status is not None and body.status != ticket.status:
            tickets.change_status(ticket, body.status)
        session.flush()
    except tickets.StaleTicket as exc:
        return _stale(session, exc.ticket)
    except tickets.TicketError as exc:
        raise _invalid(exc.field, str(exc)) from None
    except StaleDataError:
        return _reloaded_stale(crm, principal, ticket_id)
    return _one(session, ticket)


@router.post(
    "/tickets/{ticket_id}/respond",
    response_model=RespondOut,
    status_code=201,
    responses=STALE,
    openapi_extra=access("operational.ticket:update", scoped=True),
)
def respond_to_ticket(
    ticket_id: Id,
    body: RespondIn,
    principal: Principal = Depends(require_permission("operational.ticket:update")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Log a response to the customer; the first one stops the first response SLA clock."""
    ticket = _get(session, crm, principal, ticket_id)
    try:
        tickets.check_version(ticket, body.version)
        interaction = tickets.respond(
            session,
            ticket,
            body.body,
            user_id=principal.user.id,
            subject=body.subject,
            channel=body.channel,
            kind=body.kind,
        )
    except tickets.StaleTicket as exc:
        return _stale(session, exc.ticket)
    except tickets.TicketError as exc:
        if exc.field == "status":
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        raise _invalid(exc.field, str(exc)) from None
    except StaleDataError:
        return _reloaded_stale(crm, principal, ticket_id)
    return RespondOut(
        ticket=_one(session, ticket),
        interaction=InteractionOut(**interactions.as_dict(interaction)),
    )


@router.post(
    "/tickets/{ticket_id}/resolve",
    response_model=ResolvedOut,
    responses=STALE,
    openapi_extra=access("operational.ticket:update", scoped=True),
)
def resolve_ticket(
    ticket_id: Id,
    response: Response,
    body: ResolveIn | None = Body(None),
    principal: Principal = Depends(require_permission("operational.ticket:update")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Resolve a ticket and create its satisfaction survey.

    The answer holds the survey's link once: only a hash of its token is stored, so hand it to
    the customer now. 409 when the ticket's status cannot become resolved.
    """
    ticket = _get(session, crm, principal, ticket_id)
    try:
        body = body or ResolveIn()
        tickets.check_version(ticket, body.version)
        new = tickets.resolve(
            session, ticket, survey_days=body.survey_days, crm=crm, actor_id=principal.user.id
        )
    except tickets.StaleTicket as exc:
        return _stale(session, exc.ticket)
    except tickets.TicketError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except StaleDataError:
        return _reloaded_stale(crm, principal, ticket_id)
    response.headers["Cache-Control"] = "no-store"
    return ResolvedOut(
        ticket=_one(session, ticket),
        survey_url=new.url(crm.settings.public_url),
        survey_expires_at=new.survey.expires_at,
    )


def _policy_out(policy: SlaPolicy) -> SlaPolicyOut:
    return SlaPolicyOut(
        priority=policy.priority,
        first_response_minutes=policy.first_response_minutes,
        resolution_minutes=policy.resolution_minutes,
    )


@router.get(
    "/sla-policies",
    response_model=list[SlaPolicyOut],
    openapi_extra=access("operational.ticket:read"),
)
async def list_sla_policies(
    _: Principal = Depends(require_permission("operational.ticket:read")),
    session: Session = Depends(read_session),
) -> list[SlaPolicyOut]:
    """The SLA of each priority, most urgent first."""
    rank = {p: i for i, p in enumerate(reversed(TICKET_PRIORITIES))}
    policies = sorted(session.scalars(select(SlaPolicy)), key=lambda p: rank.get(p.priority, 99))
    return [_policy_out(p) for p in policies]


@router.put(
    "/sla-policies/{priority}",
    response_model=SlaPolicyOut,
    openapi_extra=access("operational.sla:manage"),
)
def set_sla_policy(
    priority: Priority,
    body: SlaPolicyIn,
    _: Principal = Depends(require_permission("operational.sla:manage")),
    session: Session = Depends(write_session),
) -> SlaPolicyOut:
    """Set the SLA of a priority; tickets created from now on use it (existing ones keep
    theirs until their priority changes)."""
    if body.resolution_minutes < body.first_response_minutes:
        raise _invalid("resolution_minutes", "must not be shorter than first_response_minutes")
    policy = session.scalar(select(SlaPolicy).where(SlaPolicy.priority == priority))
    before = None if policy is None else _policy_out(policy).model_dump()
    if policy is None:
        policy = SlaPolicy(priority=priority)
        session.add(policy)
    policy.first_response_minutes = body.first_response_minutes
    policy.resolution_minutes = body.resolution_minutes
    session.flush()
    after = _policy_out(policy)
    # SlaPolicy is not an Audited model: record the change explicitly.
    audit.record(
        session,
        "create" if before is None else "update",
        "operational.sla_policy",
        policy.id,
        before=before,
        after=after.model_dump(),
    )
    return after


@router.get(
    "/customers/{customer_id}/satisfaction",
    response_model=CustomerSatisfactionOut,
    openapi_extra=access("operational.ticket:read", scoped=True),
)
async def customer_satisfaction(
    customer_id: Id,
    principal: Principal = Depends(require_permission("operational.ticket:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> CustomerSatisfactionOut:
    """The customer's average rating over every answered survey (tickets and orders)."""
    from core.customers.models import Customer

    if session.get(Customer, customer_id) is None or not records.can_see_customer(
        crm, session, principal.user, customer_id
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer {customer_id}")
    result = surveys.customer_satisfaction(session, customer_id)
    return CustomerSatisfactionOut(
        customer_id=result.customer_id, answered=result.answered, average=result.average
    )


@router.get(
    "/satisfaction/monthly",
    response_model=list[MonthlySatisfactionOut],
    openapi_extra=access("operational.report:read"),
)
async def monthly_satisfaction(
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    _: Principal = Depends(require_permission("operational.report:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> list[MonthlySatisfactionOut]:
    """Survey answers per month (in ``CRM_TIMEZONE``), for reports; ``[since, until)``."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise _invalid(name, "give a time zone (Z or +07:00)", "query")
    rows = surveys.satisfaction_by_month(session, since, until, crm.settings.timezone)
    return [
        MonthlySatisfactionOut(
            month=r.month, answered=r.answered, average=r.average, ratings=r.ratings
        )
        for r in rows
    ]
