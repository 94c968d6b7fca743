"""The module's REST API, mounted by the core under ``/api/<module name>/``.

``GET /customers/{customer_id}/notes`` lists a customer's notes, newest first, and ``POST`` to
the same path adds one. ``GET /customers/{customer_id}/points`` gives the points balance and the
latest earnings. A customer the user may not see answers 404, like a missing one.
"""

import datetime as dt

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from core.errors import Invalid
from core.records import can_see_customer
from core.runtime import Crm
from core.web import problems
from core.web.access import access
from core.web.deps import Principal, get_crm, read_session, require_permission, write_session
from crm_loyalty import NAME, notes, points
from crm_loyalty.permissions import CREATE, POINTS_READ, READ

router = APIRouter(tags=[NAME])


class NoteIn(BaseModel):
    """A new note."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=notes.TITLE_MAX)
    body: str | None = Field(None, max_length=20_000)


class NoteOut(BaseModel):
    """A stored note."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    customer_id: int
    title: str
    body: str | None
    owner_id: int | None
    created_at: dt.datetime
    version: int


def _visible(crm: Crm, session: Session, principal: Principal, customer_id: int) -> None:
    if not can_see_customer(crm, session, principal.user, customer_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer {customer_id}")


@router.get(
    "/customers/{customer_id}/notes",
    response_model=list[NoteOut],
    openapi_extra=access(READ, scoped=True),
)
async def list_notes(
    customer_id: int,
    limit: int = Query(50, ge=1, le=500),
    principal: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> list[NoteOut]:
    """A customer's notes, newest first."""
    _visible(crm, session, principal, customer_id)
    return [NoteOut.model_validate(n) for n in notes.latest(session, customer_id, limit)]


@router.post(
    "/customers/{customer_id}/notes",
    response_model=NoteOut,
    status_code=201,
    openapi_extra=access(CREATE, scoped=True),
)
def create_note(
    customer_id: int,
    body: NoteIn,
    principal: Principal = Depends(require_permission(CREATE)),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> NoteOut:
    """Add a note to a customer; the signed-in user owns it."""
    _visible(crm, session, principal, customer_id)
    try:
        note = notes.add(session, customer_id, body.title, body.body, owner_id=principal.user.id)
    except Invalid as exc:
        raise problems.invalid(exc.errors) from None
    return NoteOut.model_validate(note)


class EarningOut(BaseModel):
    """Points earned for one order."""

    model_config = ConfigDict(from_attributes=True)
    order_id: int
    order_ref: str
    points: int
    created_at: dt.datetime


class PointsOut(BaseModel):
    """A customer's points."""

    customer_id: int
    balance: int
    latest: list[EarningOut]


@router.get(
    "/customers/{customer_id}/points",
    response_model=PointsOut,
    openapi_extra=access(POINTS_READ, scoped=True),
)
def customer_points(
    customer_id: int,
    principal: Principal = Depends(require_permission(POINTS_READ)),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> PointsOut:
    """A customer's points balance and latest earnings."""
    _visible(crm, session, principal, customer_id)
    return PointsOut(
        customer_id=customer_id,
        balance=points.balance(session, customer_id),
        latest=[EarningOut.model_validate(e) for e in points.history(session, customer_id)],
    )
