"""REST endpoints for hand-offs between teams, under ``/api/collaborative/handoffs``.

A hand-off the user may not see (not addressed to their teams, about a record they may not see)
answers 404 like a missing one; deciding on one outside the receiving team is 403; a hand-off
no longer pending, or changed since the client read it, is 409 (with ``current``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core.db import utcnow
from core.errors import Conflict, Invalid, NotFoundError, StaleVersion
from core.runtime import Crm
from core.web import problems
from core.web.access import access
from core.web.deps import Principal, get_crm, read_session, require_permission, write_session
from core.web.inputs import BODY, NOT_BLANK, Id, Timestamp, Version
from plugins.collaborative import handoffs
from plugins.collaborative.models import Handoff

router = APIRouter(prefix="/handoffs", tags=["collaborative: hand-offs"])

Status = Literal["pending", "accepted", "returned", "cancelled"]
Box = Literal["incoming", "sent", "all"]
STALE = {409: {"description": "no longer pending, or stale version (body holds `current`)"}}
T = TypeVar("T")


class HandoffIn(BaseModel):
    """Hand a record to another team. Without ``deadline`` the team has the configured number
    of hours (``handoff_deadline_hours``) to accept."""

    model_config = BODY
    record_type: str = Field(min_length=1, max_length=60)
    record_id: Id = Field(ge=1)
    to_team_id: Id = Field(ge=1)
    message: str = Field(min_length=1, max_length=10_000)
    deadline: Timestamp | None = None


class DecisionIn(BaseModel):
    """The ``version`` of the hand-off the client read."""

    model_config = BODY
    version: Version = Field(ge=1)


class ReturnIn(DecisionIn):
    """Why the receiving team returns the hand-off."""

    reason: str = Field(min_length=1, max_length=handoffs.MAX_REASON_LENGTH, pattern=NOT_BLANK)


class HandoffOut(BaseModel):
    """A hand-off; ``overdue`` is whether it still waits past its deadline now."""

    id: int
    record_type: str
    record_id: int
    record_title: str | None
    record_url: str | None
    customer_id: int | None
    from_team_id: int | None
    from_team: str | None
    to_team_id: int
    to_team: str | None
    created_by: int | None
    message: str
    deadline: dt.datetime
    status: str
    decided_by: int | None
    decided_at: dt.datetime | None
    reason: str
    escalated_at: dt.datetime | None
    created_at: dt.datetime
    version: int
    overdue: bool


class HandoffPage(BaseModel):
    """Hand-offs, newest first; ``next_cursor`` pages on (the id to continue before)."""

    items: list[HandoffOut]
    next_cursor: int | None


def outs(crm: Crm, session: Session, rows: list[Handoff]) -> list[HandoffOut]:
    """Rows as the API returns them."""
    info = handoffs.describe(crm, session, rows)
    now = utcnow()
    return [
        HandoffOut(
            id=h.id,
            record_type=h.record_type,
            record_id=h.record_id,
            record_title=info["titles"].get((h.record_type, h.record_id)),
            record_url=info["links"].get((h.record_type, h.record_id)),
            customer_id=h.customer_id,
            from_team_id=h.from_team_id,
            from_team=info["teams"].get(h.from_team_id),
            to_team_id=h.to_team_id,
            to_team=info["teams"].get(h.to_team_id),
            created_by=h.created_by,
            message=h.message,
            deadline=h.deadline,
            status=h.status,
            decided_by=h.decided_by,
            decided_at=h.decided_at,
            reason=h.reason,
            escalated_at=h.escalated_at,
            created_at=h.created_at,
            version=h.version,
            overdue=handoffs.is_overdue(h, now),
        )
        for h in rows
    ]


def _current(crm: Crm, principal: Principal, handoff_id: int) -> Any:
    """409 with the hand-off as committed now (read apart from the failed transaction)."""
    with crm.db.session() as fresh:
        row = handoffs.get(crm, fresh, principal.user, handoff_id)
        return problems.stale("hand-off", handoff_id, outs(crm, fresh, [row])[0])


def _run(crm: Crm, principal: Principal, handoff_id: int | None, change: Callable[[], T]) -> Any:
    """Run ``change``, mapping the service's errors to HTTP answers."""
    try:
        return change()
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except handoffs.Forbidden as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except Invalid as exc:
        raise problems.invalid(exc.errors) from None
    except Conflict as exc:
        raise problems.conflict(str(exc)) from None
    except (StaleVersion, StaleDataError):
        if handoff_id is None:
            raise problems.conflict("changed meanwhile; try again") from None
        return _current(crm, principal, handoff_id)


@router.get("", response_model=HandoffPage, openapi_extra=access("collaborative.handoff:read"))
async def list_handoffs(
    box: Box = "incoming",
    status_: Status | None = Query(None, alias="status"),
    overdue: bool | None = None,
    record_type: str | None = Query(None, max_length=60),
    record_id: Id | None = Query(None, ge=1),
    limit: int = Query(50, ge=1, le=handoffs.LIST_LIMIT),
    cursor: Id | None = Query(None, ge=1, description="next_cursor of the previous page"),
    principal: Principal = Depends(require_permission("collaborative.handoff:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> HandoffPage:
    """Hand-offs to my teams (``incoming``), sent by me (``sent``) or ``all`` I may see."""
    if (record_type is None) != (record_id is None):
        raise problems.invalid({"record_id": "give record_type and record_id together"}, "query")
    record = (record_type, record_id) if record_type is not None else None
    rows = handoffs.listing(
        crm,
        session,
        principal.user,
        box=box,
        status=status_,
        overdue=overdue,
        record=record,  # type: ignore[arg-type]
        before_id=cursor,
        limit=limit + 1,
    )
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return HandoffPage(items=outs(crm, session, rows[:limit]), next_cursor=next_cursor)


@router.post(
    "",
    response_model=HandoffOut,
    status_code=201,
    openapi_extra=access("collaborative.handoff:create", scoped=True),
)
def create_handoff(
    body: HandoffIn,
    principal: Principal = Depends(require_permission("collaborative.handoff:create")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Hand a record I may see to another team; its members are notified."""

    def change() -> HandoffOut:
        row = handoffs.create(
            crm,
            session,
            principal.user,
            body.record_type,
            body.record_id,
            body.to_team_id,
            body.message,
            body.deadline,
        )
        return outs(crm, session, [row])[0]

    return _run(crm, principal, None, change)


@router.get(
    "/{handoff_id}",
    response_model=HandoffOut,
    openapi_extra=access("collaborative.handoff:read", scoped=True),
)
async def read_handoff(
    handoff_id: Id,
    principal: Principal = Depends(require_permission("collaborative.handoff:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """One hand-off."""
    return _run(
        crm,
        principal,
        None,
        lambda: outs(crm, session, [handoffs.get(crm, session, principal.user, handoff_id)])[0],
    )


@router.post(
    "/{handoff_id}/accept",
    response_model=HandoffOut,
    responses=STALE,
    openapi_extra=access("collaborative.handoff:update", scoped=True),
)
def accept_handoff(
    handoff_id: Id,
    body: DecisionIn,
    principal: Principal = Depends(require_permission("collaborative.handoff:update")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Accept for my team: it becomes responsible for the record; the creator is told."""

    def change() -> HandoffOut:
        row = handoffs.accept(crm, session, principal.user, handoff_id, body.version)
        return outs(crm, session, [row])[0]

    return _run(crm, principal, handoff_id, change)


@router.post(
    "/{handoff_id}/return",
    response_model=HandoffOut,
    responses=STALE,
    openapi_extra=access("collaborative.handoff:update", scoped=True),
)
def return_handoff(
    handoff_id: Id,
    body: ReturnIn,
    principal: Principal = Depends(require_permission("collaborative.handoff:update")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Return it with a reason; the creator is told."""

    def change() -> HandoffOut:
        row = handoffs.return_(crm, session, principal.user, handoff_id, body.version, body.reason)
        return outs(crm, session, [row])[0]

    return _run(crm, principal, handoff_id, change)


@router.post(
    "/{handoff_id}/cancel",
    response_model=HandoffOut,
    responses=STALE,
    openapi_extra=access("collaborative.handoff:create", scoped=True),
)
def cancel_handoff(
    handoff_id: Id,
    body: DecisionIn,
    principal: Principal = Depends(require_permission("collaborative.handoff:create")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Withdraw a hand-off I created while it waits."""

    def change() -> HandoffOut:
        row = handoffs.cancel(crm, session, principal.user, handoff_id, body.version)
        return outs(crm, session, [row])[0]

    return _run(crm, principal, handoff_id, change)
