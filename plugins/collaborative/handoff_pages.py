"""Hand-off pages under ``/collaborative/``: the list of hand-offs to my teams and sent by me,
the forms that accept, return or cancel one, and the "Hand to another team" form of the record
panels.

Forms work with and without htmx: with it (``HX-Request``) a form answers with the fragment it
replaces (the hand-off's row, or the record's panel), so the page never reloads; without it, a
redirect with a flash message.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core import audit
from core import records as core_records
from core.db import utcnow
from core.errors import Conflict, Invalid, NotFoundError, StaleVersion
from core.i18n import N_
from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import (
    UIContext,
    csrf_check,
    csrf_token,
    flash_redirect,
    is_htmx,
    page,
    read_flash,
    ui_principal,
)
from plugins.collaborative import departments, handoffs, teams
from plugins.collaborative import records as recs
from plugins.collaborative.config import settings
from plugins.collaborative.handoff_views import STATUS_LABELS, TEMPLATES
from plugins.collaborative.models import Handoff

router = APIRouter(dependencies=[Depends(csrf_check)], include_in_schema=False)

READ = "collaborative.handoff:read"
CREATE = "collaborative.handoff:create"
UPDATE = "collaborative.handoff:update"
PAGE = "/collaborative/handoffs"
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


def _zone(ctx: UIContext) -> ZoneInfo:
    return ZoneInfo(ctx.crm.settings.timezone)


def _error_text(ctx: UIContext, exc: Exception) -> str:
    """What went wrong, for a person: the field errors of ``Invalid``, else the message."""
    if isinstance(exc, Invalid):
        return "; ".join(f"{field}: {text}" for field, text in exc.errors.items())
    if isinstance(exc, StaleVersion | StaleDataError):
        message = N_("Someone else changed this hand-off meanwhile; review it and try again.")
        return ctx.gettext(message)
    return str(exc)


def _rows_context(
    ctx: UIContext, session: Session, rows: list[Handoff], errors: dict[int, str] | None = None
) -> dict[str, Any]:
    """What the hand-off rows template needs besides the rows."""
    user = ctx.principal.user
    return {
        "info": handoffs.describe(ctx.crm, session, rows),
        "mine": set(teams.team_ids(session, user.id)),
        "manager": handoffs.MANAGE in user.permissions,
        "now": utcnow(),
        "status_labels": STATUS_LABELS,
        "errors": errors or {},
    }


@router.get("/handoffs", response_class=HTMLResponse, openapi_extra=access(READ))
def handoffs_page(
    request: Request,
    overdue: str = "",
    principal: Principal = Depends(ui_principal),
) -> HTMLResponse:
    """Hand-offs to my teams and sent by me (``?status=``, ``?overdue=yes|no``); overdue ones
    flagged."""
    principal.require(READ)
    chosen_status = request.query_params.get("status", "")
    chosen_status = chosen_status if chosen_status in STATUS_LABELS else None
    late = {"yes": True, "no": False}.get(overdue)
    crm = request.app.state.crm
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        boxes = {
            box: handoffs.listing(
                crm, session, principal.user, box=box, status=chosen_status, overdue=late
            )
            for box in ("incoming", "sent")
        }
        rows = boxes["incoming"] + boxes["sent"]
        return page(
            ctx,
            TEMPLATES + "handoffs.html",
            boxes=boxes,
            chosen_status=chosen_status or "",
            chosen_overdue=overdue if late is not None else "",
            **read_flash(request),
            **_rows_context(ctx, session, rows),
        )


def _row(ctx: UIContext, handoff_id: int, error: str = "") -> HTMLResponse:
    with ctx.crm.db.session() as session:
        ctx.session = session
        row = handoffs.get(ctx.crm, session, ctx.principal.user, handoff_id)
        errors = {row.id: error} if error else {}
        return page(
            ctx,
            TEMPLATES + "handoff_row.html",
            h=row,
            **_rows_context(ctx, session, [row], errors),
        )


def _decide(request: Request, principal: Principal, handoff_id: int, change: Any) -> Any:
    """Run ``change(session)`` in a write transaction; answer with the row (htmx) or a
    redirect with a message."""
    crm = request.app.state.crm
    ctx = UIContext(request, principal)
    error = ""
    try:
        with crm.db.write() as session:
            session.info[audit.REQUEST_KEY] = request
            change(session)
    except NotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no hand-off {handoff_id}") from None
    except handoffs.Forbidden as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except (Invalid, Conflict, StaleVersion, StaleDataError) as exc:
        error = _error_text(ctx, exc)
    if is_htmx(request):
        return _row(ctx, handoff_id, error)
    if error:
        return flash_redirect(request, PAGE, error=error)
    return flash_redirect(request, PAGE, message=N_("Hand-off updated."))


def _version(value: str) -> int:
    return int(value) if value.strip().isdigit() else 0


@router.post(
    "/handoffs/{handoff_id}/accept",
    response_class=HTMLResponse,
    openapi_extra=access(UPDATE, scoped=True),
)
def accept(
    request: Request,
    handoff_id: int,
    version: str = Form(""),
    principal: Principal = Depends(ui_principal),
) -> Any:
    """Accept a hand-off for my team."""
    principal.require(UPDATE)
    return _decide(
        request,
        principal,
        handoff_id,
        lambda s: handoffs.accept(
            request.app.state.crm, s, principal.user, handoff_id, _version(version)
        ),
    )


@router.post(
    "/handoffs/{handoff_id}/return",
    response_class=HTMLResponse,
    openapi_extra=access(UPDATE, scoped=True),
)
def return_(
    request: Request,
    handoff_id: int,
    version: str = Form(""),
    reason: str = Form(""),
    principal: Principal = Depends(ui_principal),
) -> Any:
    """Return a hand-off with a reason."""
    principal.require(UPDATE)
    return _decide(
        request,
        principal,
        handoff_id,
        lambda s: handoffs.return_(
            request.app.state.crm, s, principal.user, handoff_id, _version(version), reason
        ),
    )


@router.post(
    "/handoffs/{handoff_id}/cancel",
    response_class=HTMLResponse,
    openapi_extra=access(CREATE, scoped=True),
)
def cancel(
    request: Request,
    handoff_id: int,
    version: str = Form(""),
    principal: Principal = Depends(ui_principal),
) -> Any:
    """Withdraw a hand-off I sent."""
    principal.require(CREATE)
    return _decide(
        request,
        principal,
        handoff_id,
        lambda s: handoffs.cancel(
            request.app.state.crm, s, principal.user, handoff_id, _version(version)
        ),
    )


# --- the panel on record pages ------------------------------------------------------------------


def _local(ctx: UIContext, value: dt.datetime) -> str:
    return value.astimezone(_zone(ctx)).strftime(LOCAL_FORMAT)


def slot_body(
    ctx: UIContext,
    record_type: str,
    record_id: int,
    error: str = "",
    form: dict[str, str] | None = None,
) -> str:
    """The "Hand-offs" panel of a record: its hand-offs and the form to hand it over."""
    session = ctx.session
    kind = recs.kind_of(ctx.crm, record_type)
    rows = handoffs.listing(
        ctx.crm, session, ctx.principal.user, box="all", record=(record_type, record_id)
    )
    current = handoffs.current_team(session, kind, record_id)
    labels = departments.team_labels(session)
    hours = settings(ctx.crm)["handoff_deadline_hours"]
    default_deadline = _local(ctx, utcnow() + dt.timedelta(hours=hours))
    return ctx.render(
        TEMPLATES + "handoff_slot.html",
        rows=rows,
        record_type=record_type,
        record_id=record_id,
        anchor=f"handoffs-{record_type.replace('.', '-')}-{record_id}",
        current_team=labels.get(current) if current is not None else None,
        targets=[
            (tid, label)
            for tid, label in sorted(labels.items(), key=lambda t: t[1])
            if tid != current
        ],
        pending=any(r.status == "pending" for r in rows),
        can_create=ctx.can(CREATE),
        error=error,
        form=form or {"deadline": default_deadline},
        csrf=csrf_token(ctx.request),
        **_rows_context(ctx, session, rows),
    )


def _deadline(ctx: UIContext, value: str) -> dt.datetime | None:
    """A ``datetime-local`` value, read in the CRM's timezone; ``None`` when empty."""
    text = value.strip()
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Invalid({"deadline": f"{text!r} is not a date and time"}) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=_zone(ctx))


@router.post(
    "/handoffs/new", response_class=HTMLResponse, openapi_extra=access(CREATE, scoped=True)
)
def new_handoff(
    request: Request,
    record_type: str = Form(...),
    record_id: int = Form(...),
    to_team_id: str = Form(""),
    message: str = Form(""),
    deadline: str = Form(""),
    principal: Principal = Depends(ui_principal),
) -> Any:
    """Hand a record to another team (the form of the record's "Hand-offs" panel)."""
    principal.require(CREATE)
    crm = request.app.state.crm
    if record_type not in core_records.record_types(crm):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {record_type} {record_id}")
    ctx = UIContext(request, principal)
    form = {"to_team_id": to_team_id, "message": message, "deadline": deadline}
    error = ""
    link = PAGE
    try:
        with crm.db.write() as session:
            session.info[audit.REQUEST_KEY] = request
            kind = recs.require_visible(crm, session, principal.user, record_type, record_id)
            link = kind.link(record_id)
            team = int(to_team_id) if to_team_id.strip().isdigit() else -1
            handoffs.create(
                crm,
                session,
                principal.user,
                record_type,
                record_id,
                team,
                message,
                _deadline(ctx, deadline),
            )
    except NotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {record_type} {record_id}") from None
    except (Invalid, Conflict) as exc:
        error = _error_text(ctx, exc)
    if is_htmx(request):
        with crm.db.session() as session:
            ctx.session = session
            body = slot_body(ctx, record_type, record_id, error, form if error else None)
            return HTMLResponse(body)
    if error:
        return flash_redirect(request, link, error=error)
    return flash_redirect(request, link, message=N_("Handed over."))
