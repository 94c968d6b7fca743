"""The inbox and notification preferences pages, under ``/collaborative/``.

The inbox list refreshes itself every 30 seconds with htmx (only the list is swapped); marking
one item or everything read answers with the changed fragment, and the navigation badge follows
(the list sits inside a ``data-refresh-badges`` element, see ``core/web/static/ui.js``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from core.errors import Invalid, NotFoundError
from core.i18n import N_
from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import (
    UIContext,
    csrf_check,
    flash_redirect,
    is_htmx,
    page,
    read_flash,
    ui_principal,
)
from plugins.collaborative import inbox

router = APIRouter(dependencies=[Depends(csrf_check)], include_in_schema=False)
READ = "collaborative.notification:read"
INBOX = "/collaborative/inbox"
PREFERENCES = "/collaborative/preferences"
PAGE_SIZE = 30
#: The e-mail choices as the preferences form shows them.
EMAIL_LABELS = (
    ("immediate", N_("At once")),
    ("digest", N_("Daily digest")),
    ("off", N_("Never")),
)


def _require(principal: Principal) -> None:
    if not principal.can(READ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"permission {READ} required")


def _listing(
    request: Request, principal: Principal, unread: bool, before: int | None
) -> dict[str, Any]:
    """What the list fragment shows: a page of items, the unread count, the next page."""
    crm = request.app.state.crm
    with crm.db.session() as session:
        items = inbox.list_items(
            crm, session, principal.user, unread_only=unread, before_id=before, limit=PAGE_SIZE
        )
        count = inbox.unread_count(crm, session, principal.user)
    query = "?unread=1" if unread else ""
    older = None
    if len(items) == PAGE_SIZE:
        older = f"{INBOX}?{'unread=1&' if unread else ''}before={items[-1].id}"
    return {
        "items": items,
        "unread_count": count,
        "unread_only": unread,
        "before": before,
        "older": older,
        "list_url": f"{INBOX}/list{query}" if before is None else None,
    }


@router.get("/inbox", response_class=HTMLResponse, openapi_extra=access(READ))
def inbox_page(
    request: Request,
    unread: bool = Query(False),
    before: int | None = Query(None, ge=1),
    principal: Principal = Depends(ui_principal),
) -> HTMLResponse:
    """The user's notifications, newest first; unread ones highlighted."""
    _require(principal)
    ctx = UIContext(request, principal)
    return page(
        ctx,
        "collaborative/inbox.html",
        **_listing(request, principal, unread, before),
        **read_flash(request),
    )


@router.get("/inbox/list", response_class=HTMLResponse, openapi_extra=access(READ))
def inbox_list(
    request: Request,
    unread: bool = Query(False),
    principal: Principal = Depends(ui_principal),
) -> HTMLResponse:
    """The list alone, for the page's periodic refresh."""
    _require(principal)
    ctx = UIContext(request, principal)
    return page(ctx, "collaborative/inbox_list.html", **_listing(request, principal, unread, None))


@router.post("/inbox/read-all", response_class=HTMLResponse, openapi_extra=access(READ))
def inbox_read_all(request: Request, principal: Principal = Depends(ui_principal)) -> Response:
    """Mark everything read; htmx gets the refreshed list, a plain form a redirect."""
    _require(principal)
    crm = request.app.state.crm
    with crm.db.write() as session:
        inbox.mark_all_read(crm, session, principal.user)
    if not is_htmx(request):
        return flash_redirect(request, INBOX, N_("All notifications are marked read."))
    ctx = UIContext(request, principal)
    return page(ctx, "collaborative/inbox_list.html", **_listing(request, principal, False, None))


@router.post(
    "/inbox/{notification_id}/read",
    response_class=HTMLResponse,
    openapi_extra=access(READ, scoped=True),
)
def inbox_read_one(
    request: Request, notification_id: int, principal: Principal = Depends(ui_principal)
) -> Response:
    """Mark one notification read; htmx gets the item again (and the new unread count), a
    plain form a redirect."""
    _require(principal)
    crm = request.app.state.crm
    with crm.db.write() as session:
        try:
            inbox.get(crm, session, principal.user, notification_id)
        except NotFoundError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "notification not found") from None
        inbox.mark_read(crm, session, principal.user, [notification_id])
        item = inbox.get(crm, session, principal.user, notification_id)
        count = inbox.unread_count(crm, session, principal.user)
    if not is_htmx(request):
        return RedirectResponse(INBOX, status_code=303)
    ctx = UIContext(request, principal)
    # the item again, and the page's unread count out of band
    return page(ctx, "collaborative/inbox_marked.html", item=item, unread_count=count)


def _preferences_page(
    request: Request,
    principal: Principal,
    chosen: dict[str, Any],
    status_code: int = 200,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    ctx = UIContext(request, principal)
    return page(
        ctx,
        "collaborative/preferences.html",
        status_code=status_code,
        chosen=chosen,
        choices=EMAIL_LABELS,
        errors=errors or {},
        **read_flash(request),
    )


@router.get("/preferences", response_class=HTMLResponse, openapi_extra=access(READ))
def preferences_page(
    request: Request, principal: Principal = Depends(ui_principal)
) -> HTMLResponse:
    """How the user wants to be told: in the inbox, by e-mail at once, daily, or never."""
    _require(principal)
    with request.app.state.crm.db.session() as session:
        chosen = inbox.get_preferences(session, principal.user.id)
    return _preferences_page(request, principal, chosen)


@router.post("/preferences", response_class=HTMLResponse, openapi_extra=access(READ))
def save_preferences(
    request: Request,
    in_app: str | None = Form(None),
    email: str | None = Form(None),
    principal: Principal = Depends(ui_principal),
) -> Response:
    """Save the preferences; a bad value shows the form again (422) and changes nothing."""
    _require(principal)
    wanted = {"in_app": in_app == "1", "email": email}
    try:
        with request.app.state.crm.db.write() as session:
            inbox.set_preferences(session, principal.user.id, **wanted)
    except Invalid as exc:
        return _preferences_page(request, principal, wanted, 422, exc.errors)
    return flash_redirect(request, PREFERENCES, N_("Your notification preferences are saved."))
