"""REST endpoints for mailings under ``/api/operational/``: templates, mailings, audiences,
scheduling, recipients, and inbound replies from the mail gateway.

Read routes are ``async def`` and query synchronously (see ``core.web.deps``); routes that write
are plain ``def`` and run in the thread pool. Lists are keyset pages (``next_cursor``); invalid
input is 422 with one entry per field; a stale ``version`` is 409 with the current record.
Sending itself never happens here: ``crm mailings send-due`` (or a worker) does it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, UploadFile, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import records
from core.customers.models import Customer
from core.runtime import Crm
from core.web.access import access
from core.web.deps import Principal, get_crm, read_session, require_permission, write_session
from core.web.inputs import BODY, MAX_ID, NOT_BLANK, AwareTimestamp, Id, Version
from core.web.problems import conflict, guarded, invalid, stale
from plugins.operational import mailings
from plugins.operational.models import Mailing, MailingRecipient, MailTemplate

router = APIRouter(tags=["operational"])

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MailingStatus = Literal["draft", "scheduled", "sending", "sent"]
RecipientStatus = Literal["queued", "sent", "failed", "replied", "unsubscribed"]


# --- schemas ------------------------------------------------------------------------------------


class TemplateIn(BaseModel):
    """A new template: Jinja2 (sandboxed) with the customer's fields; see ``fields``."""

    model_config = BODY
    name: str = Field(min_length=1, max_length=100)
    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=100_000)


class TemplatePatch(BaseModel):
    """Changes to a template; ``version`` is the version the client read."""

    model_config = BODY
    version: Version = Field(ge=1)
    name: str | None = Field(None, min_length=1, max_length=100)
    subject: str | None = Field(None, min_length=1, max_length=200)
    body: str | None = Field(None, min_length=1, max_length=100_000)


class TemplateOut(BaseModel):
    """A stored template."""

    id: int
    name: str
    subject: str
    body: str
    created_at: dt.datetime
    version: int


class TemplatePage(BaseModel):
    """One page of templates, newest first; ``fields`` are what templates may use."""

    items: list[TemplateOut]
    next_cursor: str | None
    fields: list[str]


class PreviewIn(BaseModel):
    """The customer to render a template for."""

    model_config = BODY
    customer_id: Id = Field(ge=1)


class PreviewOut(BaseModel):
    """What the customer would receive."""

    subject: str
    body: str


class MailingIn(BaseModel):
    """A new draft mailing.

    ``audience`` is a filter (``tag``, ``country``, ``kind``, ``owner_id``), ``{"segment":
    name}`` or a list ``{"emails": [...], "customer_ids": [...]}`` (or upload a CSV file).
    """

    model_config = BODY
    name: str = Field(min_length=1, max_length=200)
    template_id: Id = Field(ge=1)
    audience: dict[str, Any] | None = None
    scheduled_at: AwareTimestamp | None = None


class MailingPatch(BaseModel):
    """Changes to a draft; ``version`` is the version the client read. A field left out keeps
    its value; ``name`` and ``template_id`` cannot be null."""

    model_config = BODY
    version: Version = Field(ge=1)
    name: str = Field(None, min_length=1, max_length=200, pattern=NOT_BLANK)
    template_id: Id = Field(None, ge=1)
    audience: dict[str, Any] | None = None
    scheduled_at: AwareTimestamp | None = None


class ScheduleIn(BaseModel):
    """Schedule a draft at ``scheduled_at`` (default: the mailing's time, else now)."""

    model_config = BODY
    version: Version = Field(ge=1)
    scheduled_at: AwareTimestamp | None = None


class VersionIn(BaseModel):
    """The version the client read."""

    model_config = BODY
    version: Version = Field(ge=1)


class MailingOut(BaseModel):
    """A mailing with its recipients counted per status."""

    id: int
    name: str
    template_id: int
    audience: dict[str, Any] | None
    scheduled_at: dt.datetime | None
    status: str
    created_by: int | None
    created_at: dt.datetime
    version: int
    counts: dict[str, int]


class ScheduledOut(MailingOut):
    """A mailing just scheduled: how many were queued and skipped (and why)."""

    queued: int
    skipped: dict[str, int]


class MailingPage(BaseModel):
    """One page of mailings, newest first."""

    items: list[MailingOut]
    next_cursor: str | None


class RecipientOut(BaseModel):
    """One recipient of a mailing."""

    id: int
    customer_id: int
    email: str
    status: str
    message_id: str
    attempts: int
    last_error: str | None
    sent_at: dt.datetime | None
    replied_at: dt.datetime | None


class RecipientPage(BaseModel):
    """One page of recipients, by id."""

    items: list[RecipientOut]
    next_cursor: str | None


References = (
    Annotated[str, Field(max_length=20_000)]
    | Annotated[list[Annotated[str, Field(max_length=1000)]], Field(max_length=100)]
)


class ReplyIn(BaseModel):
    """An inbound mail as the gateway parsed it (``from`` is the From header)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    sender: str = Field(alias="from", min_length=3, max_length=500)
    subject: str = Field("", max_length=1000)
    text: str = Field("", max_length=1_000_000)
    in_reply_to: str | None = Field(None, max_length=2000)
    references: References | None = None


class ReplyOut(BaseModel):
    """Whether the reply matched, how (``message_id`` or ``email``), and what was logged."""

    matched: bool
    matched_by: str | None = None
    customer_id: int | None = None
    recipient_id: int | None = None
    interaction_id: int | None = None


# --- helpers ------------------------------------------------------------------------------------


def _encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([last_id]).encode()).decode().rstrip("=")


def _after(cursor: str | None) -> int | None:
    """The last id of the previous page; 422 for a cursor we did not make."""
    if not cursor:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError):
        value = None
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], int):
        raise invalid({"cursor": "cursor is not valid"}, "query")
    return value[0]


def _page(session: Session, query: Any, column: Any, limit: int, cursor: str | None) -> Any:
    """Rows of a keyset page (``descending`` by ``column``) and the next cursor."""
    after = _after(cursor)
    if after is not None:
        query = query.where(column < after)
    rows = list(session.scalars(query.order_by(column.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (_encode(rows[-1].id) if more and rows else None)


def _template(session: Session, template_id: int) -> MailTemplate:
    template = session.get(MailTemplate, template_id)
    if template is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no template {template_id}")
    return template


def _visible_mailings(crm: Crm, principal: Principal) -> ColumnElement[bool] | None:
    return records.visible(
        crm, principal.user, "operational.mailing", owner_column=Mailing.created_by
    )


def _mailing(session: Session, crm: Crm, principal: Principal, mailing_id: int) -> Mailing:
    """The mailing, or 404 when it does not exist or the user's record rule hides it."""
    query = select(Mailing).where(Mailing.id == mailing_id)
    condition = _visible_mailings(crm, principal)
    if condition is not None:
        query = query.where(condition)
    mailing = session.scalar(query)
    if mailing is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no mailing {mailing_id}")
    return mailing


def _template_out(template: MailTemplate) -> TemplateOut:
    return TemplateOut(**mailings.template_as_dict(template))


def _mailing_out(session: Session, mailing: Mailing) -> MailingOut:
    counts = mailings.status_counts(session, [mailing.id])[mailing.id]
    return MailingOut(**mailings.mailing_as_dict(mailing, counts))


def _current_mailing(crm: Crm, principal: Principal, mailing_id: int) -> MailingOut:
    """The mailing as committed now, read apart from the request's failed transaction."""
    with crm.db.session() as session:
        return _mailing_out(session, _mailing(session, crm, principal, mailing_id))


def _stale_mailing(crm: Crm, principal: Principal, mailing_id: int) -> JSONResponse:
    return stale("mailing", mailing_id, _current_mailing(crm, principal, mailing_id))


# --- templates ----------------------------------------------------------------------------------


@router.get(
    "/mail-templates", response_model=TemplatePage, openapi_extra=access("operational.mailing:read")
)
async def list_templates(
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=200),
    _: Principal = Depends(require_permission("operational.mailing:read")),
    session: Session = Depends(read_session),
) -> TemplatePage:
    """Mail templates, newest first, one keyset page at a time."""
    rows, next_cursor = _page(session, select(MailTemplate), MailTemplate.id, limit, cursor)
    return TemplatePage(
        items=[_template_out(t) for t in rows],
        next_cursor=next_cursor,
        fields=list(mailings.TEMPLATE_FIELDS),
    )


@router.post(
    "/mail-templates",
    response_model=TemplateOut,
    status_code=201,
    responses={409: {"description": "the name is taken"}},
    openapi_extra=access("operational.mailing:create"),
)
def create_template(
    body: TemplateIn,
    _: Principal = Depends(require_permission("operational.mailing:create")),
    session: Session = Depends(write_session),
) -> TemplateOut:
    """Create a template; a syntax error or an unknown field is 422 naming the line."""
    try:
        template = mailings.create_template(session, body.name, body.subject, body.body)
    except mailings.Invalid as exc:
        raise invalid(exc.errors) from None
    except (mailings.Conflict, IntegrityError) as exc:
        raise conflict(str(exc) if isinstance(exc, mailings.Conflict) else "name taken") from None
    return _template_out(template)


@router.get(
    "/mail-templates/{template_id}",
    response_model=TemplateOut,
    openapi_extra=access("operational.mailing:read"),
)
async def read_template(
    template_id: Id,
    _: Principal = Depends(require_permission("operational.mailing:read")),
    session: Session = Depends(read_session),
) -> TemplateOut:
    """One template."""
    return _template_out(_template(session, template_id))


@router.patch(
    "/mail-templates/{template_id}",
    response_model=TemplateOut,
    responses={409: {"description": "stale version (the body holds the current one) or name"}},
    openapi_extra=access("operational.mailing:update"),
)
def update_template(
    template_id: Id,
    body: TemplatePatch,
    _: Principal = Depends(require_permission("operational.mailing:update")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Change a template; send the ``version`` you read. A stale version gets 409."""
    template = _template(session, template_id)
    values = body.model_dump(exclude={"version"}, exclude_unset=True, exclude_none=True)

    def change() -> TemplateOut:
        mailings.update_template(session, template, values, body.version)
        return _template_out(template)

    def current() -> JSONResponse:
        with crm.db.session() as fresh:
            return stale("template", template_id, _template_out(_template(fresh, template_id)))

    return guarded(change, current)


@router.post(
    "/mail-templates/{template_id}/preview",
    response_model=PreviewOut,
    openapi_extra=access("operational.mailing:read"),
)
async def preview_template(
    template_id: Id,
    body: PreviewIn,
    principal: Principal = Depends(require_permission("operational.mailing:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> PreviewOut:
    """What a customer would receive from this template (nothing is sent or stored).

    A customer the user may not see is 422 on ``customer_id``, as if it did not exist.
    """
    template = _template(session, template_id)
    customer = session.get(Customer, body.customer_id)
    if customer is None or not records.can_see_customer(
        crm, session, principal.user, body.customer_id
    ):
        raise invalid({"customer_id": f"no customer {body.customer_id}"})
    try:
        return PreviewOut(**mailings.preview(session, crm, template, customer))
    except mailings.Invalid as exc:
        raise invalid(exc.errors) from None


# --- mailings -----------------------------------------------------------------------------------


@router.get(
    "/mailings", response_model=MailingPage, openapi_extra=access("operational.mailing:read")
)
async def list_mailings(
    status_: MailingStatus | None = Query(None, alias="status"),
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=200),
    principal: Principal = Depends(require_permission("operational.mailing:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> MailingPage:
    """Mailings the user may see, newest first, with recipient counts per status."""
    query = select(Mailing)
    if status_:
        query = query.where(Mailing.status == status_)
    condition = _visible_mailings(crm, principal)
    if condition is not None:
        query = query.where(condition)
    rows, next_cursor = _page(session, query, Mailing.id, limit, cursor)
    counts = mailings.status_counts(session, [m.id for m in rows])
    return MailingPage(
        items=[MailingOut(**mailings.mailing_as_dict(m, counts[m.id])) for m in rows],
        next_cursor=next_cursor,
    )


@router.post(
    "/mailings",
    response_model=MailingOut,
    status_code=201,
    openapi_extra=access("operational.mailing:create"),
)
def create_mailing(
    body: MailingIn,
    principal: Principal = Depends(require_permission("operational.mailing:create")),
    session: Session = Depends(write_session),
) -> MailingOut:
    """Create a draft mailing (the creator owns it)."""
    try:
        mailing = mailings.create_mailing(
            session, body.model_dump(exclude_unset=True), principal.user.id
        )
    except mailings.Invalid as exc:
        raise invalid(exc.errors) from None
    return _mailing_out(session, mailing)


@router.get(
    "/mailings/{mailing_id}",
    response_model=MailingOut,
    openapi_extra=access("operational.mailing:read", scoped=True),
)
async def read_mailing(
    mailing_id: Id,
    principal: Principal = Depends(require_permission("operational.mailing:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> MailingOut:
    """One mailing with its recipients counted per status."""
    return _mailing_out(session, _mailing(session, crm, principal, mailing_id))


@router.patch(
    "/mailings/{mailing_id}",
    response_model=MailingOut,
    responses={409: {"description": "stale version (the body holds the current one) or no draft"}},
    openapi_extra=access("operational.mailing:update", scoped=True),
)
def update_mailing(
    mailing_id: Id,
    body: MailingPatch,
    principal: Principal = Depends(require_permission("operational.mailing:update")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Change a draft; send the ``version`` you read. Scheduled mailings are 409."""
    mailing = _mailing(session, crm, principal, mailing_id)
    values = body.model_dump(exclude={"version"}, exclude_unset=True)
    return _change_draft(session, crm, principal, mailing, values, body.version)


def _change_draft(
    session: Session,
    crm: Crm,
    principal: Principal,
    mailing: Any,
    values: dict[str, Any],
    version: int,
) -> Any:
    """Apply ``values`` to a draft read at ``version``: 422, 409, or the changed mailing."""
    mailing_id = mailing.id  # read now: after a failed flush the object cannot be read

    def change() -> MailingOut:
        mailings.update_mailing(session, mailing, values, version)
        return _mailing_out(session, mailing)

    return guarded(change, lambda: _stale_mailing(crm, principal, mailing_id))


@router.post(
    "/mailings/{mailing_id}/audience-csv",
    response_model=MailingOut,
    responses={409: {"description": "stale version or no draft"}},
    openapi_extra=access("operational.mailing:update", scoped=True),
)
def upload_audience(
    mailing_id: Id,
    file: UploadFile = File(description="UTF-8 CSV: e-mail addresses and/or customer ids"),
    version: Version = Form(ge=1, le=MAX_ID),
    principal: Principal = Depends(require_permission("operational.mailing:update")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Set a draft's audience from a CSV file (one address or id per line, or columns
    ``email`` / ``customer_id``); a bad line is 422 naming it."""
    mailing = _mailing(session, crm, principal, mailing_id)
    data = file.file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise invalid({"file": f"larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB"})
    try:
        audience = mailings.parse_audience_csv(data)
    except mailings.Invalid as exc:
        raise invalid(exc.errors) from None
    return _change_draft(session, crm, principal, mailing, {"audience": audience}, version)


@router.post(
    "/mailings/{mailing_id}/schedule",
    response_model=ScheduledOut,
    responses={409: {"description": "stale version or not a draft"}},
    openapi_extra=access("operational.mailing:send", scoped=True),
)
def schedule_mailing(
    mailing_id: Id,
    body: ScheduleIn,
    principal: Principal = Depends(require_permission("operational.mailing:send")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Resolve the audience (customers the user may see) into queued recipients and schedule
    the mailing; ``crm mailings send-due`` sends it when its time has come."""
    mailing = _mailing(session, crm, principal, mailing_id)

    def change() -> ScheduledOut:
        counts = mailings.schedule(
            session, crm, mailing, body.version, body.scheduled_at, principal.user
        )
        queued = counts.pop("queued")
        return ScheduledOut(
            **_mailing_out(session, mailing).model_dump(), queued=queued, skipped=counts
        )

    return guarded(change, lambda: _stale_mailing(crm, principal, mailing_id))


@router.post(
    "/mailings/{mailing_id}/unschedule",
    response_model=MailingOut,
    responses={409: {"description": "stale version, or sending has started"}},
    openapi_extra=access("operational.mailing:send", scoped=True),
)
def unschedule_mailing(
    mailing_id: Id,
    body: VersionIn,
    principal: Principal = Depends(require_permission("operational.mailing:send")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Back to draft before sending started; the queued recipients are dropped."""
    mailing = _mailing(session, crm, principal, mailing_id)

    def change() -> MailingOut:
        mailings.unschedule(session, mailing, body.version)
        return _mailing_out(session, mailing)

    return guarded(change, lambda: _stale_mailing(crm, principal, mailing_id))


@router.get(
    "/mailings/{mailing_id}/recipients",
    response_model=RecipientPage,
    openapi_extra=access("operational.mailing:read", scoped=True),
)
async def list_recipients(
    mailing_id: Id,
    status_: RecipientStatus | None = Query(None, alias="status"),
    limit: int = Query(100, ge=1, le=1000),
    cursor: str | None = Query(None, max_length=200),
    principal: Principal = Depends(require_permission("operational.mailing:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> RecipientPage:
    """The mailing's recipients (newest first), optionally of one status."""
    _mailing(session, crm, principal, mailing_id)
    query = select(MailingRecipient).where(MailingRecipient.mailing_id == mailing_id)
    if status_:
        query = query.where(MailingRecipient.status == status_)
    rows, next_cursor = _page(session, query, MailingRecipient.id, limit, cursor)
    return RecipientPage(
        items=[RecipientOut.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=next_cursor,
    )


# --- replies ------------------------------------------------------------------------------------


@router.post(
    "/replies",
    response_model=ReplyOut,
    status_code=201,
    responses={202: {"model": ReplyOut, "description": "no customer matched; nothing logged"}},
    openapi_extra=access("operational.reply:create"),
)
def post_reply(
    body: ReplyIn,
    principal: Principal = Depends(require_permission("operational.reply:create")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """An inbound mail from the mail gateway (its API token holds ``operational.reply:create``).

    Matched by the Message-IDs of ``in_reply_to`` / ``references`` to the mailing recipient,
    else by the sender's address to a customer's e-mail identity: logged on the timeline (201).
    An unknown sender is **202** with ``matched: false`` and nothing is stored: the gateway did
    its job (a 404 would look like a wrong URL and invite retries), and the CRM keeps no mail of
    people it does not know. Customers outside the token user's record rule count as unknown.
    """
    result = mailings.record_reply(
        session,
        crm,
        body.sender,
        body.subject,
        body.text,
        body.in_reply_to,
        body.references,
        principal.user,
    )
    out = ReplyOut(**asdict(result))
    if not result.matched:
        return JSONResponse(out.model_dump(), status_code=status.HTTP_202_ACCEPTED)
    return out
