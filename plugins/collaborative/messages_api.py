"""REST endpoints for notes, comments, mentions and followers under ``/api/collaborative/``.

A message, or a record, the user may not see answers 404 exactly like a missing one. Read routes
are ``async def`` and query synchronously (see ``core.web.deps``); routes that write are plain
``def``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core.errors import Invalid, NotFoundError, StaleVersion
from core.models import User
from core.runtime import Crm
from core.web.access import access
from core.web.deps import Principal, get_crm, read_session, require_permission, write_session
from core.web.inputs import BODY, MAX_ID, NOT_BLANK, Id, Version
from core.web.problems import invalid, stale
from plugins.collaborative import followers, messages, records
from plugins.collaborative.models import Follower, Message

router = APIRouter(prefix="", tags=["collaborative"])

READ = "collaborative.message:read"
CREATE = "collaborative.message:create"
STALE = {409: {"description": "stale version; the body holds the current message"}}


class MessageIn(BaseModel):
    """A note (internal: only mentioned people are told) or a comment (followers are told too).

    Mentions go in the body as ``@[Label](user:ID)`` / ``@[Label](team:ID)``; ``mentions`` adds
    more as ``"user:5"`` or ``"team:2"``. ``parent_id`` makes it a reply to a top-level message.
    """

    model_config = BODY
    record_type: str = Field(min_length=1, max_length=60)
    record_id: Id = Field(ge=1)
    body: str = Field(max_length=100_000, pattern=NOT_BLANK)
    kind: Literal["note", "comment"] = "comment"
    parent_id: Id | None = Field(None, ge=1)
    mentions: list[str] = Field(default_factory=list, max_length=messages.MAX_MENTIONS)


class MessagePatch(BaseModel):
    """A new body, and the ``version`` the client read (409 when it is no longer current)."""

    model_config = BODY
    body: str = Field(max_length=100_000, pattern=NOT_BLANK)
    version: Version = Field(ge=1)


class MessageOut(BaseModel):
    """A message; ``mentions`` lists ``user:ID`` / ``team:ID``; ``replies`` only in threads."""

    id: int
    record_type: str
    record_id: int
    customer_id: int | None
    parent_id: int | None
    author_id: int | None
    author_name: str | None
    kind: str
    body: str
    text: str
    mentions: list[str]
    created_at: dt.datetime
    edited_at: dt.datetime | None
    version: int
    replies: list[MessageOut] = Field(default_factory=list)


class PersonOut(BaseModel):
    """A user, by id and name."""

    id: int
    name: str


class PostedOut(MessageOut):
    """The message written; ``notified``: users told now; ``not_notified``: mentioned users
    who may not see the record, so were told nothing."""

    notified: list[int]
    not_notified: list[PersonOut]


class ThreadOut(BaseModel):
    """Top-level messages newest first with their replies; ``next_before`` pages on."""

    items: list[MessageOut]
    next_before: int | None


class MentionableOut(BaseModel):
    """A user or team to mention; ``token`` is what goes into the body."""

    type: Literal["user", "team"]
    id: int
    label: str
    token: str


class FollowerOut(BaseModel):
    """A follower and why they follow (``manual``, ``author``, ``mentioned``, ``handoff``)."""

    id: int
    name: str
    reason: str


class FollowersOut(BaseModel):
    """Who follows a record, and whether the signed-in user does."""

    items: list[FollowerOut]
    following: bool


def _not_found(exc: NotFoundError) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))


def _outs(session: Session, rows: list[Message], names: dict[str, str]) -> list[MessageOut]:
    mentions = messages.mentions_of(session, [m.id for m in rows])
    return [
        MessageOut(
            id=m.id,
            record_type=m.record_type,
            record_id=m.record_id,
            customer_id=m.customer_id,
            parent_id=m.parent_id,
            author_id=m.author_id,
            author_name=names.get(f"user:{m.author_id}") if m.author_id else None,
            kind=m.kind,
            body=m.body,
            text=messages.plain_text(m.body),
            mentions=mentions[m.id],
            created_at=m.created_at,
            edited_at=m.edited_at,
            version=m.version,
        )
        for m in rows
    ]


def _one(session: Session, message: Message) -> MessageOut:
    return _outs(session, [message], messages.names_for(session, [message]))[0]


def _posted(session: Session, posted: messages.Posted) -> PostedOut:
    names = dict(
        session.execute(select(User.id, User.name).where(User.id.in_(posted.not_notified))).all()
    )
    return PostedOut(
        **_one(session, posted.message).model_dump(),
        notified=sorted(posted.notified),
        not_notified=[PersonOut(id=uid, name=names.get(uid, "")) for uid in posted.not_notified],
    )


def _stale_answer(crm: Crm, principal: Principal, message_id: int) -> JSONResponse:
    """409 with the message as committed now (read apart from the failed transaction)."""
    with crm.db.session() as fresh:
        try:
            current = messages.get(crm, fresh, principal.user, message_id)
        except NotFoundError as exc:
            raise _not_found(exc) from None
        return stale("message", message_id, _one(fresh, current))


@router.get("/messages", response_model=ThreadOut, openapi_extra=access(READ, scoped=True))
async def list_messages(
    record_type: str = Query(min_length=1, max_length=60),
    record_id: Id = Query(ge=1, le=MAX_ID),
    before: Id | None = Query(None, ge=1, description="the next_before of the previous page"),
    limit: int = Query(50, ge=1, le=200),
    principal: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> ThreadOut:
    """The conversation on a record: top-level messages newest first, replies oldest first."""
    try:
        found = messages.thread(
            crm, session, principal.user, record_type, record_id, before_id=before, limit=limit
        )
    except Invalid as exc:
        raise invalid(exc.errors, "query") from None
    except NotFoundError as exc:
        raise _not_found(exc) from None
    tops = _outs(session, [i.message for i in found.items], found.names)
    every_reply = [r for i in found.items for r in i.replies]
    replies = iter(_outs(session, every_reply, found.names))
    for out, item in zip(tops, found.items, strict=True):
        out.replies = [next(replies) for _ in item.replies]
    return ThreadOut(items=tops, next_before=found.next_before)


@router.post(
    "/messages",
    response_model=PostedOut,
    status_code=201,
    openapi_extra=access(CREATE, scoped=True),
)
def create_message(
    body: MessageIn,
    principal: Principal = Depends(require_permission(CREATE)),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> PostedOut:
    """Write a note or comment; mentioned people and (comments) followers are told once.

    ``not_notified`` names mentioned users who may not see the record.
    """
    try:
        posted = messages.post(
            crm,
            session,
            principal.user,
            body.record_type,
            body.record_id,
            body.body,
            kind=body.kind,
            parent_id=body.parent_id,
            mentions=body.mentions,
        )
    except Invalid as exc:
        raise invalid(exc.errors) from None
    except NotFoundError as exc:
        raise _not_found(exc) from None
    return _posted(session, posted)


@router.get(
    "/messages/{message_id}", response_model=MessageOut, openapi_extra=access(READ, scoped=True)
)
async def read_message(
    message_id: Id,
    principal: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> MessageOut:
    """One message, if the user may see its record."""
    try:
        return _one(session, messages.get(crm, session, principal.user, message_id))
    except NotFoundError as exc:
        raise _not_found(exc) from None


@router.patch(
    "/messages/{message_id}",
    response_model=PostedOut,
    responses=STALE,
    openapi_extra=access(CREATE, scoped=True),
)
def update_message(
    message_id: Id,
    body: MessagePatch,
    principal: Principal = Depends(require_permission(CREATE)),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Change a message's body (its author, or a moderator); send the ``version`` you read.

    People newly mentioned are told.
    """
    try:
        posted = messages.edit(crm, session, principal.user, message_id, body.body, body.version)
    except Invalid as exc:
        raise invalid(exc.errors) from None
    except NotFoundError as exc:
        raise _not_found(exc) from None
    except messages.NotAllowed as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except StaleVersion as exc:
        return stale("message", message_id, _one(session, exc.record))
    except StaleDataError:
        return _stale_answer(crm, principal, message_id)
    return _posted(session, posted)


@router.delete("/messages/{message_id}", status_code=204, openapi_extra=access(CREATE, scoped=True))
def delete_message(
    message_id: Id,
    principal: Principal = Depends(require_permission(CREATE)),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Response:
    """Delete a message and its replies (its author, or a moderator)."""
    try:
        messages.delete(crm, session, principal.user, message_id)
    except NotFoundError as exc:
        raise _not_found(exc) from None
    except messages.NotAllowed as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    return Response(status_code=204)


@router.get("/mentionables", response_model=list[MentionableOut], openapi_extra=access(CREATE))
async def list_mentionables(
    q: str = Query("", max_length=100),
    limit: int = Query(10, ge=1, le=50),
    principal: Principal = Depends(require_permission(CREATE)),
    session: Session = Depends(read_session),
) -> list[MentionableOut]:
    """Users and teams whose name matches ``q`` (case and diacritics ignored), for mentions.

    A partner contact (scope ``shared``) finds only the people working on the customers shared
    with them, and no teams: the staff directory is not theirs to browse.
    """
    among = None
    if principal.user.scope == "shared":
        among = messages.partner_contacts_reach(session, principal.user.id)
    return [MentionableOut(**item) for item in messages.mentionables(session, q, limit, among)]


def _followers(
    session: Session, principal: Principal, record_type: str, record_id: int
) -> FollowersOut:
    rows = session.execute(
        select(Follower.user_id, User.name, User.email, Follower.reason)
        .join(User, User.id == Follower.user_id)
        .where(Follower.record_type == record_type, Follower.record_id == record_id)
        .order_by(User.name, User.id)
    ).all()
    return FollowersOut(
        items=[FollowerOut(id=r[0], name=r[1] or r[2], reason=r[3]) for r in rows],
        following=any(r[0] == principal.user.id for r in rows),
    )


def _require_record(
    crm: Crm, session: Session, principal: Principal, record_type: str, record_id: int
) -> None:
    try:
        records.require_visible(crm, session, principal.user, record_type, record_id)
    except Invalid as exc:
        raise invalid(exc.errors, "query") from None
    except NotFoundError as exc:
        raise _not_found(exc) from None


@router.get("/followers", response_model=FollowersOut, openapi_extra=access(READ, scoped=True))
async def list_followers(
    record_type: str = Query(min_length=1, max_length=60),
    record_id: Id = Query(ge=1, le=MAX_ID),
    principal: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> FollowersOut:
    """Who follows a record the user may see."""
    _require_record(crm, session, principal, record_type, record_id)
    return _followers(session, principal, record_type, record_id)


@router.put("/followers", response_model=FollowersOut, openapi_extra=access(READ, scoped=True))
def follow_record(
    record_type: str = Query(min_length=1, max_length=60),
    record_id: Id = Query(ge=1, le=MAX_ID),
    principal: Principal = Depends(require_permission(READ)),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> FollowersOut:
    """Follow a record: its comments and changes reach me. Following twice changes nothing."""
    _require_record(crm, session, principal, record_type, record_id)
    followers.follow(session, record_type, record_id, principal.user.id, "manual")
    session.flush()
    return _followers(session, principal, record_type, record_id)


@router.delete("/followers", response_model=FollowersOut, openapi_extra=access(READ, scoped=True))
def unfollow_record(
    record_type: str = Query(min_length=1, max_length=60),
    record_id: Id = Query(ge=1, le=MAX_ID),
    principal: Principal = Depends(require_permission(READ)),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> FollowersOut:
    """Stop following a record."""
    _require_record(crm, session, principal, record_type, record_id)
    followers.unfollow(session, record_type, record_id, principal.user.id)
    return _followers(session, principal, record_type, record_id)
