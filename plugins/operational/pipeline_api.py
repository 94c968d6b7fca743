"""REST endpoints for the pipeline, activities and interactions under ``/api/operational/``.

Same conventions as ``/api/customers``: keyset pages (``next_cursor``), 422 with a message per
field, 409 with the current record on a stale ``version``, permissions per model and action,
record rules inside every query (a hidden record answers 404), audit through the models.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core import records
from core.runtime import Crm
from core.web.access import access
from core.web.deps import Principal, get_crm, read_session, require_permission, write_session
from core.web.inputs import BODY, Amount, Currency, Day, Id, Timestamp, Version, Whole
from plugins.operational import activities, interactions, pipeline
from plugins.operational.models import Activity, Opportunity

router = APIRouter(tags=["operational: pipeline"])


def _invalid(field: str, message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"loc": ["body", field], "msg": message, "type": "value_error"}],
    )


def _visible(crm: Crm, principal: Principal, model: type, name: str, owner: str) -> Any:
    return records.visible(
        crm,
        principal.user,
        name,
        owner_column=getattr(model, owner),
        customer_column=model.customer_id,
    )


def _get(
    session: Session,
    crm: Crm,
    principal: Principal,
    model: type,
    name: str,
    owner: str,
    record_id: int,
) -> Any:
    query = select(model).where(model.id == record_id)
    rule = _visible(crm, principal, model, name, owner)
    if rule is not None:
        query = query.where(rule)
    found = session.scalars(query).first()
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {name.split('.')[-1]} {record_id}")
    return found


def _check_customer(session: Session, crm: Crm, principal: Principal, customer_id: int) -> None:
    if not records.can_see_customer(crm, session, principal.user, customer_id):
        raise _invalid("customer_id", f"no customer {customer_id}")


def _check_references(
    session: Session, crm: Crm, principal: Principal, **references: tuple[str, int | None]
) -> None:
    """422 naming the first field that names a record the user may not see."""
    for field, message in records.hidden_references(
        crm, session, principal.user, references
    ).items():
        raise _invalid(field, message)


def _check_giving(principal: Principal, what: str, given: Any, own: Any) -> None:
    """403 when the user gives ``what`` to someone else without ``customer:assign``."""
    if given != own and not principal.can("customer:assign"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{what} requires customer:assign")


def _page(
    session: Session, query: Any, model: type, limit: int, cursor: int | None
) -> tuple[list[Any], int | None]:
    if cursor is not None:
        query = query.where(model.id < cursor)
    rows = list(session.scalars(query.order_by(model.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].id if more and rows else None


# --- opportunities ----------------------------------------------------------------------------


class OpportunityIn(BaseModel):
    """A new opportunity; without an owner the creator owns it."""

    model_config = BODY
    customer_id: Id = Field(ge=1)
    title: str = Field(min_length=1, max_length=200)
    expected_revenue_minor: Amount = 0
    currency: Currency | None = Field(None, min_length=3, max_length=3)
    probability: Whole | None = Field(None, ge=0, le=100)
    expected_close: Day | None = None
    owner_id: Id | None = Field(None, ge=1)
    team_id: Id | None = Field(None, ge=1)
    stage: str | None = Field(None, max_length=40)


class OpportunityPatch(BaseModel):
    """Changes to an opportunity; ``version`` is the version the client read."""

    model_config = BODY
    version: Version = Field(ge=1)
    title: str | None = Field(None, min_length=1, max_length=200)
    expected_revenue_minor: Amount | None = None
    probability: Whole | None = Field(None, ge=0, le=100)
    expected_close: Day | None = None
    owner_id: Id | None = Field(None, ge=1)
    stage: str | None = Field(None, max_length=40)
    lost_reason_id: Id | None = Field(None, ge=1)


class OpportunityOut(BaseModel):
    """An opportunity, with its weighted value."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    customer_id: int
    title: str
    expected_revenue_minor: int
    weighted_minor: int
    currency: str
    probability: int
    expected_close: dt.date | None
    owner_id: int | None
    team_id: int | None
    stage: str
    lost_reason_id: int | None
    closed_at: dt.datetime | None
    created_at: dt.datetime
    version: int


class OpportunityPage(BaseModel):
    """A page of opportunities, newest first."""

    items: list[OpportunityOut]
    next_cursor: int | None


def _opportunity_out(row: Opportunity) -> OpportunityOut:
    data = {
        name: getattr(row, name) for name in OpportunityOut.model_fields if name != "weighted_minor"
    }
    return OpportunityOut(**data, weighted_minor=pipeline.weighted_minor(row))


@router.get(
    "/opportunities",
    response_model=OpportunityPage,
    openapi_extra=access("operational.opportunity:read"),
)
def list_opportunities(
    stage: str | None = Query(None, max_length=40),
    owner_id: Id | None = Query(None, ge=1),
    customer_id: Id | None = Query(None, ge=1),
    open_only: bool = False,
    limit: int = Query(50, ge=1, le=500),
    cursor: Id | None = Query(None, ge=1),
    principal: Principal = Depends(require_permission("operational.opportunity:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> OpportunityPage:
    """Opportunities the user may see, newest first, one keyset page at a time."""
    query = select(Opportunity)
    rule = _visible(crm, principal, Opportunity, "operational.opportunity", "owner_id")
    for condition in (
        rule,
        Opportunity.stage == stage if stage else None,
        Opportunity.owner_id == owner_id if owner_id else None,
        Opportunity.customer_id == customer_id if customer_id else None,
        Opportunity.closed_at.is_(None) if open_only else None,
    ):
        if condition is not None:
            query = query.where(condition)
    rows, next_cursor = _page(session, query, Opportunity, limit, cursor)
    return OpportunityPage(items=[_opportunity_out(r) for r in rows], next_cursor=next_cursor)


@router.post(
    "/opportunities",
    response_model=OpportunityOut,
    status_code=201,
    openapi_extra=access("operational.opportunity:create"),
)
def create_opportunity(
    body: OpportunityIn,
    principal: Principal = Depends(require_permission("operational.opportunity:create")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> OpportunityOut:
    """Open an opportunity in the first (or the given) open stage of its team's pipeline."""
    _check_customer(session, crm, principal, body.customer_id)
    values = body.model_dump()
    values["owner_id"] = values["owner_id"] or principal.user.id
    _check_giving(principal, "giving deals to others", values["owner_id"], principal.user.id)
    values["team_id"] = values["team_id"] or principal.user.team_id
    _check_giving(
        principal, "a deal in another team's pipeline", values["team_id"], principal.user.team_id
    )
    try:
        row = pipeline.create(session, values, crm.settings.default_currency)
    except pipeline.PipelineError as exc:
        raise _invalid(exc.field, str(exc)) from None
    return _opportunity_out(row)


@router.get(
    "/opportunities/{opportunity_id}",
    response_model=OpportunityOut,
    openapi_extra=access("operational.opportunity:read", scoped=True),
)
def read_opportunity(
    opportunity_id: Id,
    principal: Principal = Depends(require_permission("operational.opportunity:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> OpportunityOut:
    """One opportunity."""
    return _opportunity_out(
        _get(
            session,
            crm,
            principal,
            Opportunity,
            "operational.opportunity",
            "owner_id",
            opportunity_id,
        )
    )


@router.patch(
    "/opportunities/{opportunity_id}",
    response_model=OpportunityOut,
    responses={409: {"description": "stale version; the body holds the current one"}},
    openapi_extra=access("operational.opportunity:update", scoped=True),
)
def update_opportunity(
    opportunity_id: Id,
    body: OpportunityPatch,
    principal: Principal = Depends(require_permission("operational.opportunity:update")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Change an opportunity or move it to another stage (won, or lost with a reason)."""
    row = _get(
        session, crm, principal, Opportunity, "operational.opportunity", "owner_id", opportunity_id
    )
    if row.version != body.version:
        return _stale(row)
    values = body.model_dump(exclude={"version"}, exclude_unset=True)
    if (
        "owner_id" in values
        and values["owner_id"] != row.owner_id
        and not principal.can("customer:assign")
    ):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "giving deals to others requires customer:assign"
        )
    try:
        pipeline.update(session, row, values, crm=crm, actor_id=principal.user.id)
        session.flush()
    except pipeline.PipelineError as exc:
        raise _invalid(exc.field, str(exc)) from None
    except StaleDataError:
        # The failed flush ended this transaction; read the winner's version afresh.
        with crm.db.session() as fresh:
            return _stale(
                _get(
                    fresh,
                    crm,
                    principal,
                    Opportunity,
                    "operational.opportunity",
                    "owner_id",
                    opportunity_id,
                )
            )
    return _opportunity_out(row)


def _stale(row: Opportunity) -> JSONResponse:
    return JSONResponse(
        {
            "detail": f"opportunity {row.id} was changed by someone else; review and try again",
            "current": _opportunity_out(row).model_dump(mode="json"),
        },
        status_code=status.HTTP_409_CONFLICT,
    )


class StageOut(BaseModel):
    """A stage of a pipeline."""

    model_config = ConfigDict(from_attributes=True)
    name: str
    label: str
    sequence: int
    probability: int
    kind: str


@router.get(
    "/stages", response_model=list[StageOut], openapi_extra=access("operational.opportunity:read")
)
def list_stages(
    team_id: Id | None = Query(None, ge=1),
    _: Principal = Depends(require_permission("operational.opportunity:read")),
    session: Session = Depends(read_session),
) -> list[StageOut]:
    """The stages of a team's pipeline (the default pipeline when it has none)."""
    return [StageOut.model_validate(s) for s in pipeline.stages(session, team_id)]


# --- activities -------------------------------------------------------------------------------


class ActivityIn(BaseModel):
    """A call, meeting, e-mail or to-do for a user (the creator when none is given)."""

    model_config = BODY
    kind: Literal["call", "meeting", "email", "todo"]
    subject: str = Field(min_length=1, max_length=200)
    note: str | None = Field(None, max_length=10_000)
    customer_id: Id | None = Field(None, ge=1)
    opportunity_id: Id | None = Field(None, ge=1)
    user_id: Id | None = Field(None, ge=1)
    due_at: Timestamp
    remind_at: Timestamp | None = None


class ActivityOut(BaseModel):
    """A scheduled activity."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    subject: str
    note: str | None
    customer_id: int | None
    opportunity_id: int | None
    user_id: int | None
    due_at: dt.datetime
    remind_at: dt.datetime | None
    done_at: dt.datetime | None
    interaction_id: int | None
    version: int


class CompleteIn(BaseModel):
    """What came out of the activity (logged with it on the timeline)."""

    model_config = BODY
    outcome: str | None = Field(None, max_length=10_000)


@router.get(
    "/activities",
    response_model=list[ActivityOut],
    openapi_extra=access("operational.activity:read"),
)
def agenda(
    user_id: Id | None = Query(None, ge=1, description="default: the signed-in user"),
    overdue: bool = False,
    principal: Principal = Depends(require_permission("operational.activity:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> list[ActivityOut]:
    """A user's open activities by due time ("my agenda"), or only the overdue ones."""
    from core.db import utcnow

    who = user_id or principal.user.id
    rows = (
        activities.overdue(session, utcnow(), who) if overdue else activities.agenda(session, who)
    )
    rule = _visible(crm, principal, Activity, "operational.activity", "user_id")
    if rule is not None:
        allowed = set(
            session.scalars(select(Activity.id).where(rule, Activity.id.in_([r.id for r in rows])))
        )
        rows = [r for r in rows if r.id in allowed]
    return [ActivityOut.model_validate(r) for r in rows]


@router.post(
    "/activities",
    response_model=ActivityOut,
    status_code=201,
    openapi_extra=access("operational.activity:create"),
)
def schedule_activity(
    body: ActivityIn,
    principal: Principal = Depends(require_permission("operational.activity:create")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> ActivityOut:
    """Schedule an activity."""
    if body.customer_id is not None:
        _check_customer(session, crm, principal, body.customer_id)
    _check_references(
        session, crm, principal, opportunity_id=("operational.opportunity", body.opportunity_id)
    )
    values = body.model_dump()
    values["user_id"] = values["user_id"] or principal.user.id
    if not records.may_give_to(session, principal.user, values["user_id"]):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "giving activities to someone outside your team requires customer:assign",
        )
    try:
        return ActivityOut.model_validate(activities.schedule(session, values))
    except activities.ActivityError as exc:
        raise _invalid(exc.field, str(exc)) from None


@router.post(
    "/activities/{activity_id}/complete",
    response_model=ActivityOut,
    responses={409: {"description": "the activity is already done"}},
    openapi_extra=access("operational.activity:update", scoped=True),
)
def complete_activity(
    activity_id: Id,
    body: CompleteIn,
    principal: Principal = Depends(require_permission("operational.activity:update")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> ActivityOut:
    """Mark an activity done; it is logged as an interaction on the customer's timeline."""
    row = _get(session, crm, principal, Activity, "operational.activity", "user_id", activity_id)
    try:
        activities.complete(session, row, body.outcome)
    except activities.ActivityError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return ActivityOut.model_validate(row)


# --- interactions -----------------------------------------------------------------------------


class InteractionIn(BaseModel):
    """Something that happened with a customer."""

    model_config = BODY
    customer_id: Id = Field(ge=1)
    kind: Literal["call", "email", "meeting", "chat", "visit", "note"]
    channel: Literal["phone", "email", "zalo", "facebook", "website", "in_person"]
    direction: Literal["inbound", "outbound", "internal"] = "outbound"
    subject: str = Field(min_length=1, max_length=200)
    body: str | None = Field(None, max_length=50_000)
    occurred_at: Timestamp | None = None
    opportunity_id: Id | None = Field(None, ge=1)
    ticket_id: Id | None = Field(None, ge=1)


class InteractionOut(BaseModel):
    """A logged interaction."""

    model_config = ConfigDict(from_attributes=True)
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


@router.post(
    "/interactions",
    response_model=InteractionOut,
    status_code=201,
    openapi_extra=access("operational.interaction:create"),
)
def log_interaction(
    body: InteractionIn,
    principal: Principal = Depends(require_permission("operational.interaction:create")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> InteractionOut:
    """Log an interaction on the customer's timeline."""
    _check_customer(session, crm, principal, body.customer_id)
    _check_references(
        session,
        crm,
        principal,
        opportunity_id=("operational.opportunity", body.opportunity_id),
        ticket_id=("operational.ticket", body.ticket_id),
    )
    values = body.model_dump()
    row = interactions.log(
        session,
        values.pop("customer_id"),
        values.pop("kind"),
        values.pop("channel"),
        values.pop("subject"),
        user_id=principal.user.id,
        source="api",
        **values,
    )
    return InteractionOut.model_validate(row)


@router.get(
    "/customers/{customer_id}/timeline",
    response_model=list[InteractionOut],
    openapi_extra=access("operational.interaction:read", scoped=True),
)
def customer_timeline(
    customer_id: Id,
    channel: Literal["phone", "email", "zalo", "facebook", "website", "in_person"] | None = None,
    limit: int = Query(50, ge=1, le=500),
    principal: Principal = Depends(require_permission("operational.interaction:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> list[InteractionOut]:
    """The customer's interactions, newest first, optionally on one channel."""
    if not records.can_see_customer(crm, session, principal.user, customer_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer {customer_id}")
    rows = interactions.timeline(session, customer_id, channel, limit)
    return [InteractionOut.model_validate(r) for r in rows]
