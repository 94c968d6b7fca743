"""The conversation panel's own routes, under ``/collaborative/chatter/<record type>/<id>``.

htmx requests get the refreshed panel (the forms swap it whole); plain form posts are
redirected to the record's page, or shown the panel on a page of its own when something was
wrong. Every route checks again that the user may see the record: a hidden record answers 404
like a missing one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core import audit
from core import records as core_records
from core.errors import Invalid, NotFoundError, StaleVersion
from core.i18n import N_
from core.models import User
from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import UIContext, csrf_check, is_htmx, page, ui_principal
from plugins.collaborative import followers, messages, records
from plugins.collaborative.chatter_views import CREATE, READ, render_panel

router = APIRouter(dependencies=[Depends(csrf_check)], include_in_schema=False)

#: How the panel names a field it could not accept.
FIELD_LABELS = {
    "body": N_("Message"),
    "kind": N_("Kind"),
    "parent_id": N_("Reply to"),
    "mentions": N_("Mentions"),
    "record_type": N_("Record type"),
}
#: The declarations' template for the read permission of the record type in the path.
TYPE_READ = "{record_type}"
STALE_TEXT = N_("Someone changed this message meanwhile; here it is as it is now.")


def _not_found(record_type: str, record_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no {record_type} {record_id}")


def _allow(request: Request, principal: Principal, permission: str, record_type: str) -> None:
    """403 unless the user holds ``permission`` and may read records of ``record_type`` at
    all; a type no module declares answers 404, as a missing record does."""
    principal.require(permission)
    kinds = core_records.record_types(request.app.state.crm)
    if record_type not in kinds:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no record type {record_type}")
    principal.require(kinds[record_type].permission)


def _problem(ctx: UIContext, exc: Invalid) -> str:
    parts = []
    for name, text in exc.errors.items():
        label = FIELD_LABELS.get(name, name)
        parts.append(f"{ctx.gettext(label)}: {text}")
    return "; ".join(parts)


def _answer(
    request: Request,
    principal: Principal,
    record_type: str,
    record_id: int,
    *,
    before: int | None = None,
    error: str | None = None,
    not_notified: Sequence[int] = (),
    draft: str = "",
    anchor: str = "",
) -> Any:
    """The refreshed panel (htmx), a redirect to the record (form posts that worked), or the
    panel on its own page; 404 when the user may not see the record."""
    crm = request.app.state.crm
    fragment = is_htmx(request)
    if request.method == "POST" and not fragment and error is None:
        kind = records.kind_of(crm, record_type)
        return RedirectResponse(kind.link(record_id) + anchor, status_code=303)
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        names = _names(session, not_notified)
        try:
            panel = render_panel(
                ctx,
                record_type,
                record_id,
                before=before,
                error=error,
                not_notified=names,
                draft=draft,
            )
        except (NotFoundError, Invalid):
            raise _not_found(record_type, record_id) from None
        if fragment:
            return page(ctx, "collaborative/chatter_panel.html", panel=panel)
        kind = records.kind_of(crm, record_type)
        title = records.title_of(session, kind, record_id) or ""
        return page(
            ctx,
            "collaborative/chatter_page.html",
            status_code=422 if error else 200,
            panel=panel,
            record_title=title,
            record_url=kind.link(record_id),
            kind=kind,
        )


def _names(session: Session, user_ids: Sequence[int]) -> list[str]:
    if not user_ids:
        return []
    found = dict(session.execute(select(User.id, User.name).where(User.id.in_(user_ids))).all())
    return [found.get(uid) or f"#{uid}" for uid in user_ids]


def _change(
    request: Request,
    principal: Principal,
    record_type: str,
    record_id: int,
    change: Callable[[Session], Any],
    draft: str = "",
) -> Any:
    """Run ``change`` in a write transaction, then answer with the panel."""
    crm = request.app.state.crm
    ctx = UIContext(request, principal)
    try:
        with crm.db.write() as session:
            session.info[audit.REQUEST_KEY] = request
            result = change(session)
    except Invalid as exc:
        return _answer(
            request, principal, record_type, record_id, error=_problem(ctx, exc), draft=draft
        )
    except (StaleVersion, StaleDataError):
        error = ctx.gettext(STALE_TEXT)
        return _answer(request, principal, record_type, record_id, error=error)
    except NotFoundError:
        raise _not_found(record_type, record_id) from None
    except messages.NotAllowed as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    blind = result.not_notified if isinstance(result, messages.Posted) else ()
    anchor = f"#message-{result.message.id}" if isinstance(result, messages.Posted) else ""
    return _answer(request, principal, record_type, record_id, not_notified=blind, anchor=anchor)


def _own_message(
    request: Request,
    session: Session,
    principal: Principal,
    record_type: str,
    record_id: int,
    message_id: int,
) -> None:
    """404 unless the message is visible and belongs to the record of the URL."""
    found = messages.get(request.app.state.crm, session, principal.user, message_id)
    if (found.record_type, found.record_id) != (record_type, record_id):
        raise NotFoundError(f"message {message_id} not found")


@router.get(
    "/chatter/{record_type}/{record_id:int}",
    response_class=HTMLResponse,
    openapi_extra=access(READ, all_of=(TYPE_READ,), scoped=True),
)
def chatter_panel(
    request: Request,
    record_type: str,
    record_id: int,
    before: int | None = Query(None, ge=1),
    principal: Principal = Depends(ui_principal),
) -> Any:
    """The conversation panel of a record (older messages with ``before``)."""
    _allow(request, principal, READ, record_type)
    return _answer(request, principal, record_type, record_id, before=before)


@router.post(
    "/chatter/{record_type}/{record_id:int}/messages",
    response_class=HTMLResponse,
    openapi_extra=access(CREATE, all_of=(TYPE_READ,), scoped=True),
)
def chatter_post(
    request: Request,
    record_type: str,
    record_id: int,
    body: str = Form(""),
    kind: str = Form("comment"),
    parent_id: int | None = Form(None),
    principal: Principal = Depends(ui_principal),
) -> Any:
    """Write a note, a comment or a reply."""
    _allow(request, principal, CREATE, record_type)
    crm = request.app.state.crm

    def change(session: Session) -> messages.Posted:
        return messages.post(
            crm,
            session,
            principal.user,
            record_type,
            record_id,
            body,
            kind=kind,
            parent_id=parent_id,
        )

    return _change(request, principal, record_type, record_id, change, draft=body)


@router.post(
    "/chatter/{record_type}/{record_id:int}/messages/{message_id:int}/edit",
    response_class=HTMLResponse,
    openapi_extra=access(CREATE, all_of=(TYPE_READ,), scoped=True),
)
def chatter_edit(
    request: Request,
    record_type: str,
    record_id: int,
    message_id: int,
    body: str = Form(""),
    version: int = Form(),
    principal: Principal = Depends(ui_principal),
) -> Any:
    """Change a message's body (its author, or a moderator)."""
    _allow(request, principal, CREATE, record_type)
    crm = request.app.state.crm

    def change(session: Session) -> messages.Posted:
        _own_message(request, session, principal, record_type, record_id, message_id)
        return messages.edit(crm, session, principal.user, message_id, body, version)

    return _change(request, principal, record_type, record_id, change)


@router.post(
    "/chatter/{record_type}/{record_id:int}/messages/{message_id:int}/delete",
    response_class=HTMLResponse,
    openapi_extra=access(CREATE, all_of=(TYPE_READ,), scoped=True),
)
def chatter_delete(
    request: Request,
    record_type: str,
    record_id: int,
    message_id: int,
    principal: Principal = Depends(ui_principal),
) -> Any:
    """Delete a message and its replies (its author, or a moderator)."""
    _allow(request, principal, CREATE, record_type)
    crm = request.app.state.crm

    def change(session: Session) -> int:
        _own_message(request, session, principal, record_type, record_id, message_id)
        return messages.delete(crm, session, principal.user, message_id)

    return _change(request, principal, record_type, record_id, change)


def _following(
    request: Request, principal: Principal, record_type: str, record_id: int, follow: bool
) -> Any:
    _allow(request, principal, READ, record_type)
    crm = request.app.state.crm

    def change(session: Session) -> bool:
        records.require_visible(crm, session, principal.user, record_type, record_id)
        if follow:
            return followers.follow(session, record_type, record_id, principal.user.id, "manual")
        return followers.unfollow(session, record_type, record_id, principal.user.id)

    return _change(request, principal, record_type, record_id, change)


@router.post(
    "/chatter/{record_type}/{record_id:int}/follow",
    response_class=HTMLResponse,
    openapi_extra=access(READ, all_of=(TYPE_READ,), scoped=True),
)
def chatter_follow(
    request: Request, record_type: str, record_id: int, principal: Principal = Depends(ui_principal)
) -> Any:
    """Follow the record: its comments and changes reach me."""
    return _following(request, principal, record_type, record_id, True)


@router.post(
    "/chatter/{record_type}/{record_id:int}/unfollow",
    response_class=HTMLResponse,
    openapi_extra=access(READ, all_of=(TYPE_READ,), scoped=True),
)
def chatter_unfollow(
    request: Request, record_type: str, record_id: int, principal: Principal = Depends(ui_principal)
) -> Any:
    """Stop following the record."""
    return _following(request, principal, record_type, record_id, False)
