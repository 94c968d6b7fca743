"""``GET /api/collaborative/feed``: the activity feed as JSON, one page at a time."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel
from sqlalchemy.orm import Session

from core.errors import Invalid, NotFoundError
from core.runtime import Crm
from core.web.access import access
from core.web.deps import Principal, get_crm, read_session, require_permission
from core.web.inputs import Id, Timestamp
from core.web.problems import invalid
from plugins.collaborative import feed as service

router = APIRouter(prefix="/feed", tags=["collaborative: feed"])


class EntryOut(BaseModel):
    """One thing that happened; ``label`` is an English msgid ("Order placed")."""

    at: dt.datetime
    kind: str
    label: str
    title: str
    customer_id: int | None
    url: str | None
    record_type: str | None
    record_id: int | None
    actor: str | None
    detail: str


class FeedOut(BaseModel):
    """Entries newest first; pass ``next_before`` as ``before`` for the next page."""

    items: list[EntryOut]
    next_before: dt.datetime | None


class KindOut(BaseModel):
    """A kind of entry the user may filter on."""

    kind: str
    label: str


def _kinds(values: list[str] | None) -> list[str]:
    """``?kinds=a&kinds=b`` and ``?kinds=a,b`` alike."""
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


@router.get(
    "",
    response_model=FeedOut,
    responses={404: {"description": "no customer customer_id the user may see"}},
    openapi_extra=access("collaborative.feed:read"),
)
async def read_feed(
    scope: Literal["mine", "following", "team"] = "mine",
    kinds: list[str] | None = Query(None, description="kinds of entry (repeat or comma-separate)"),
    before: Timestamp | None = Query(None, description="entries older than this time"),
    limit: int = Query(30, ge=1, le=service.MAX_LIMIT),
    customer_id: Id | None = Query(None, ge=1, description="this customer only"),
    principal: Principal = Depends(require_permission("collaborative.feed:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> FeedOut:
    """What happened with the customers I follow, my teams' and mine, across every module.

    ``scope``: ``mine`` (all three), ``following``, ``team``. Only customers and records the
    user may see; a ``customer_id`` the user may not see answers 404.
    """
    try:
        page = service.feed(
            crm,
            session,
            principal.user,
            scope=scope,
            kinds=_kinds(kinds),
            before=before,
            limit=limit,
            customer_id=customer_id,
        )
    except Invalid as exc:
        raise invalid(exc.errors, "query") from None
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return FeedOut(
        items=[EntryOut(**service.as_dict(e)) for e in page.items], next_before=page.next_before
    )


@router.get("/kinds", response_model=list[KindOut], openapi_extra=access("collaborative.feed:read"))
async def feed_kinds(
    principal: Principal = Depends(require_permission("collaborative.feed:read")),
    crm: Crm = Depends(get_crm),
) -> list[KindOut]:
    """The kinds of entry the user may read (the feed's filter)."""
    return [KindOut(kind=k, label=label) for k, label in service.kinds(crm, principal.user)]
