"""The signed-in user's inbox and notification preferences under ``/api/collaborative/``.

A user only ever reaches their own notifications, and only those about records they may still
see: anything else answers 404, exactly like a missing one. Read routes are ``async def`` and
query synchronously (see ``core.web.deps``); routes that write are plain ``def``.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel
from sqlalchemy.orm import Session

from core.errors import Invalid, NotFoundError
from core.runtime import Crm
from core.web import problems
from core.web.access import access
from core.web.deps import Principal, get_crm, read_session, require_permission, write_session
from core.web.inputs import BODY, Id
from plugins.collaborative import inbox
from plugins.collaborative.models import EMAIL_CHOICES

router = APIRouter(tags=["collaborative: notifications"])
READ = "collaborative.notification:read"


class NotificationOut(BaseModel):
    """One notification: what happened (``label``, an English msgid), on what, by whom."""

    id: int
    kind: str
    label: str
    title: str
    body: str
    url: str | None
    record_type: str | None
    record_id: int | None
    customer_id: int | None
    actor_id: int | None
    actor_name: str | None
    created_at: dt.datetime
    read_at: dt.datetime | None
    unread: bool


class NotificationPage(BaseModel):
    """Notifications, newest first; pass ``next_before`` as ``before`` for the next page."""

    items: list[NotificationOut]
    next_before: int | None


class CountOut(BaseModel):
    """Unread notifications (what the navigation badge shows)."""

    count: int


class MarkedOut(BaseModel):
    """How many notifications were marked read."""

    marked: int


class PreferencesOut(BaseModel):
    """How the user is told: in the inbox, and by e-mail ``off``, ``immediate`` or ``digest``."""

    in_app: bool
    email: str


class PreferencesIn(BaseModel):
    """New preferences; a field left out keeps its value."""

    model_config = BODY
    in_app: bool | None = None
    email: Literal[*EMAIL_CHOICES] | None = None


def _out(item: inbox.Item) -> NotificationOut:
    return NotificationOut(**item.as_dict())


@router.get("/notifications", response_model=NotificationPage, openapi_extra=access(READ))
async def list_notifications(
    unread: bool = Query(False, description="only unread notifications"),
    before: Id | None = Query(None, ge=1, description="only ids below this (the next page)"),
    limit: int = Query(50, ge=1, le=inbox.MAX_LIMIT),
    principal: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> NotificationPage:
    """The user's notifications, newest first."""
    items = inbox.list_items(
        crm, session, principal.user, unread_only=unread, before_id=before, limit=limit
    )
    more = len(items) == limit
    return NotificationPage(
        items=[_out(i) for i in items], next_before=items[-1].id if items and more else None
    )


@router.get("/notifications/count", response_model=CountOut, openapi_extra=access(READ))
async def count_unread(
    principal: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> CountOut:
    """How many of the user's notifications are unread (the navigation badge)."""
    return CountOut(count=inbox.unread_count(crm, session, principal.user))


@router.post("/notifications/read-all", response_model=MarkedOut, openapi_extra=access(READ))
def read_all(
    principal: Principal = Depends(require_permission(READ)),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> MarkedOut:
    """Mark every unread notification of the user read."""
    return MarkedOut(marked=inbox.mark_all_read(crm, session, principal.user))


@router.post(
    "/notifications/{notification_id}/read",
    response_model=NotificationOut,
    responses={404: {"description": "no such notification of yours"}},
    openapi_extra=access(READ, scoped=True),
)
def read_one(
    notification_id: Id,
    principal: Principal = Depends(require_permission(READ)),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> NotificationOut:
    """Mark one of the user's notifications read (doing it again changes nothing)."""
    try:
        inbox.get(crm, session, principal.user, notification_id)
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    inbox.mark_read(crm, session, principal.user, [notification_id])
    return _out(inbox.get(crm, session, principal.user, notification_id))


@router.get("/preferences", response_model=PreferencesOut, openapi_extra=access(READ))
async def get_preferences(
    principal: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
) -> PreferencesOut:
    """How the user wants to be told."""
    return PreferencesOut(**inbox.get_preferences(session, principal.user.id))


@router.put("/preferences", response_model=PreferencesOut, openapi_extra=access(READ))
def put_preferences(
    body: PreferencesIn,
    principal: Principal = Depends(require_permission(READ)),
    session: Session = Depends(write_session),
) -> PreferencesOut:
    """Change how the user is told; ``email`` is ``off``, ``immediate`` or ``digest``."""
    try:
        chosen = inbox.set_preferences(
            session, principal.user.id, in_app=body.in_app, email=body.email
        )
    except Invalid as exc:
        raise problems.invalid(exc.errors) from None
    return PreferencesOut(**chosen)
