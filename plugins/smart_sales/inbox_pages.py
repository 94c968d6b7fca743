"""The alert inbox and the alert page, under ``/smart_sales/``.

``/smart_sales/inbox`` lists my open alerts (tab "Mine") or my team's (tab "Team", for holders
of ``smart_sales.alert:team``), by priority (tier A first, then expected value), value or
date, filtered by kind; keyset pages. Each row acts in one click and dismisses in two (the
"Dismiss" disclosure opens the reasons; each reason is a submit button, so the keyboard works
as well as the mouse). Opening a row's details, or the alert's page, marks the owner's new
alert seen -- by a POST to ``/smart_sales/alerts/{id}/seen`` carrying the CSRF token (htmx, on
the details' toggle or the page's load), never by the GET itself, so that a link or an image
from another site cannot change an alert. The answer refreshes the state badge and the version
the page's forms carry, so that acting next is not taken for someone else's change.

Bad query parameters (an unknown ``scope``, ``kind`` or ``sort``) are answered 422 naming the
parameter, as the API does, rather than silently replaced; asking for the team's alerts without
``smart_sales.alert:team`` shows one's own.

Forms work with and without htmx: with it (``HX-Request``) a form answers with the fragment it
replaces (the inbox row, or the customer's "Next best offers" panel) plus, in the inbox, the
count out of band, and an ``HX-Trigger: crm:badges`` header so that the navigation badge
follows; without it, a redirect with a flash message. ``/smart_sales/inbox/count`` is the
navigation badge's ``{"count": n}``: my alerts waiting for action (new or seen).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
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
from plugins.smart_sales import alerts
from plugins.smart_sales.alerts_api import (
    BadCursor,
    customer_names,
    page_of,
    seen_by_owner,
    waiting_count,
)
from plugins.smart_sales.models import ALERT_KINDS, DISMISS_REASONS, OPEN_STATES, Alert

router = APIRouter(dependencies=[Depends(csrf_check)], include_in_schema=False)

READ = alerts.READ
UPDATE = alerts.UPDATE
TEAM = alerts.TEAM
INBOX = "/smart_sales/inbox"
ALERT_PAGE = "/smart_sales/alerts/{id}"
PAGE_SIZE = 30
TEMPLATES = "smart_sales/"
SORT_LABELS = (
    ("priority", N_("Priority")),
    ("value", N_("Expected value")),
    ("recent", N_("Most recent")),
)
#: Where an action was taken, so that its answer replaces the right fragment.
VIEWS = ("row", "offer", "detail")
STALE_MESSAGE = N_("Someone else changed this alert meanwhile; it now shows their version.")
CLOSED_MESSAGE = N_("This alert is closed; it can no longer change.")
REASON_MESSAGE = N_("Choose why you dismiss the alert.")
NOTE_MESSAGE = N_("The note is too long.")


def owner_names(session: Session, ids: set[int | None]) -> dict[int, str]:
    """Display names (or e-mails) of the users ``ids``."""
    from core.models import User

    wanted = sorted(i for i in ids if i is not None)
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.name, User.email).where(User.id.in_(wanted)))
    return {uid: name or email for uid, name, email in rows}


def rows_context(ctx: UIContext, session: Session, rows: list[Alert]) -> dict[str, Any]:
    """What the alert templates need besides the alerts: products, customer and owner names,
    labels, what the user may do."""
    user = ctx.principal.user
    return {
        "products": alerts.products_for(session, rows),
        "customers": customer_names(session, (a.customer_id for a in rows)),
        "owners": owner_names(session, {a.owner_id for a in rows}),
        "kind_labels": alerts.KIND_LABELS,
        "state_labels": alerts.STATE_LABELS,
        "reason_labels": [(r, alerts.REASON_LABELS[r]) for r in DISMISS_REASONS],
        "reason_names": alerts.REASON_LABELS,
        "can_update": ctx.can(UPDATE),
        "user_id": user.id,
        "describe": alerts.describe,
        "headline": alerts.headline,
        "open_states": OPEN_STATES,
        "errors": {},
    }


_DEFAULTS = {("scope", "mine"), ("sort", "priority")}


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    """422 naming the query parameter ``name`` when ``value`` is not one of ``allowed``."""
    if value not in allowed:
        known = ", ".join(repr(a) for a in allowed if a)
        detail = f"{name}: unknown value {value[:40]!r}; known: {known}"
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


def _link(scope: str, kind: str, sort: str, cursor: str | None = None) -> str:
    """The inbox's URL for these choices (defaults left out)."""
    params = {"scope": scope, "kind": kind, "sort": sort, "cursor": cursor}
    query = urlencode({k: v for k, v in params.items() if v and (k, v) not in _DEFAULTS})
    return f"{INBOX}?{query}" if query else INBOX


@router.get("/inbox", response_class=HTMLResponse, openapi_extra=access(READ))
def inbox_page(
    request: Request,
    scope: str = Query("mine"),
    kind: str = Query(""),
    sort: str = Query("priority"),
    cursor: str | None = Query(None, max_length=200),
    principal: Principal = Depends(ui_principal),
) -> HTMLResponse:
    """My open alerts (or my team's), by priority, value or date; filtered by kind."""
    principal.require(READ)
    _choice("scope", scope, alerts.SCOPES)
    _choice("kind", kind, ("", *ALERT_KINDS))
    _choice("sort", sort, alerts.SORTS)
    can_team = principal.can(TEAM)
    if scope == "team" and not can_team:
        scope = "mine"
    crm = request.app.state.crm
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        query = alerts.inbox_query(crm, principal.user, scope=scope, kind=kind or None, sort=sort)
        try:
            rows, next_cursor = page_of(session, query, sort, cursor, PAGE_SIZE)
        except BadCursor as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"cursor: {exc}") from None
        return page(
            ctx,
            TEMPLATES + "inbox.html",
            rows=rows,
            scope=scope,
            kind=kind,
            sort=sort,
            can_team=can_team,
            kinds=[(k, alerts.KIND_LABELS[k]) for k in ALERT_KINDS],
            sorts=SORT_LABELS,
            tab_links={name: _link(name, kind, sort) for name in alerts.SCOPES},
            next_link=_link(scope, kind, sort, next_cursor) if next_cursor else None,
            first_link=_link(scope, kind, sort) if cursor else None,
            waiting=waiting_count(crm, session, principal.user),
            view="row",
            **rows_context(ctx, session, rows),
            **read_flash(request),
        )


@router.get("/inbox/count", openapi_extra=access(READ))
def inbox_count(request: Request, principal: Principal = Depends(ui_principal)) -> JSONResponse:
    """``{"count": n}``: my alerts waiting for action (new or seen), the navigation badge."""
    principal.require(READ)
    crm = request.app.state.crm
    with crm.db.session() as session:
        return JSONResponse({"count": waiting_count(crm, session, principal.user)})


def _visible(crm: Any, session: Session, principal: Principal, alert_id: int) -> Alert:
    found = alerts.get_visible(crm, session, principal.user, alert_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert {alert_id}")
    return found


@router.get(
    "/alerts/{alert_id}", response_class=HTMLResponse, openapi_extra=access(READ, scoped=True)
)
def alert_page(
    request: Request, alert_id: int, principal: Principal = Depends(ui_principal)
) -> HTMLResponse:
    """One alert: its reason, figures and history. The GET changes nothing: the page, once
    loaded, posts to the ``seen`` route (with the CSRF token) when the owner opens their new
    alert."""
    principal.require(READ)
    crm = request.app.state.crm
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        alert = _visible(crm, session, principal, alert_id)
        context = rows_context(ctx, session, [alert])
        context["owners"] = owner_names(
            session, {alert.owner_id, alert.acted_by, alert.dismissed_by}
        )
        return page(
            ctx, TEMPLATES + "alert.html", a=alert, view="detail", **context, **read_flash(request)
        )


def _answer(
    request: Request,
    principal: Principal,
    alert_id: int,
    view: str,
    error: str = "",
    message: str = "",
) -> Response:
    """The fragment the action's form replaces (htmx), or a redirect with a flash message."""
    crm = request.app.state.crm
    if not is_htmx(request):
        target = ALERT_PAGE.format(id=alert_id) if view == "detail" else INBOX
        if view == "offer":
            with crm.db.session() as session:
                alert = _visible(crm, session, principal, alert_id)
                target = f"/ui/customer/{alert.customer_id}"
        return flash_redirect(request, target, message="" if error else message, error=error)
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        alert = _visible(crm, session, principal, alert_id)
        if view == "offer":
            from plugins.smart_sales.alert_views import offers_body

            body = offers_body(ctx, alert.customer_id, errors={alert_id: error} if error else None)
            response: Response = HTMLResponse(body)
        else:
            context = rows_context(ctx, session, [alert])
            context["errors"] = {alert_id: error} if error else {}
            response = page(
                ctx,
                TEMPLATES + "alert_changed.html",
                a=alert,
                view=view,
                waiting=waiting_count(crm, session, principal.user),
                **context,
            )
    response.headers["HX-Trigger"] = "crm:badges"
    return response


def _error_text(exc: alerts.AlertError) -> str:
    if exc.field == "reason":
        return REASON_MESSAGE
    if exc.field == "note":
        return NOTE_MESSAGE
    return CLOSED_MESSAGE


def _change(
    request: Request, principal: Principal, alert_id: int, view: str, change: Any, done: str
) -> Response:
    """Run ``change(session, alert)`` in a write transaction and answer (see ``_answer``)."""
    principal.require(UPDATE)
    view = view if view in VIEWS else "row"
    crm = request.app.state.crm
    error = ""
    try:
        with crm.db.write() as session:
            session.info[audit.REQUEST_KEY] = request
            change(session, _visible(crm, session, principal, alert_id))
    except alerts.StaleAlert:
        error = STALE_MESSAGE
    except alerts.AlertError as exc:
        error = _error_text(exc)
    ui = request.app.state.ui
    return _answer(
        request, principal, alert_id, view, ui.translator.gettext(error) if error else "", done
    )


def _version(value: str) -> int | None:
    return int(value) if value.strip().isdigit() else None


@router.post(
    "/alerts/{alert_id}/act", response_class=HTMLResponse, openapi_extra=access(UPDATE, scoped=True)
)
def act(
    request: Request,
    alert_id: int,
    version: str = Form(""),
    view: str = Form("row"),
    principal: Principal = Depends(ui_principal),
) -> Response:
    """I acted on the alert (one click): new or seen -> acted."""
    return _change(
        request,
        principal,
        alert_id,
        view,
        lambda session, alert: alerts.act(session, alert, principal.user, _version(version)),
        N_("Marked as acted on."),
    )


@router.post(
    "/alerts/{alert_id}/dismiss",
    response_class=HTMLResponse,
    openapi_extra=access(UPDATE, scoped=True),
)
def dismiss(
    request: Request,
    alert_id: int,
    reason: str = Form(""),
    note: str = Form(""),
    version: str = Form(""),
    view: str = Form("row"),
    principal: Principal = Depends(ui_principal),
) -> Response:
    """Dismiss the alert with the reason whose button was pressed (and an optional note)."""
    return _change(
        request,
        principal,
        alert_id,
        view,
        lambda session, alert: alerts.dismiss(
            session, alert, principal.user, reason, note, _version(version)
        ),
        N_("Alert dismissed."),
    )


@router.post("/alerts/{alert_id}/seen", openapi_extra=access(UPDATE, scoped=True))
def seen(request: Request, alert_id: int, principal: Principal = Depends(ui_principal)) -> Response:
    """The owner opened the row's details or the alert's page: a new alert becomes seen. htmx
    gets, out of band, the state badge and the alert's new version for the forms of the row or
    page (so that acting next is not refused as stale); a plain form a redirect to the alert's
    page."""
    principal.require(UPDATE)
    crm = request.app.state.crm
    try:
        with crm.db.write() as session:
            session.info[audit.REQUEST_KEY] = request
            seen_by_owner(session, _visible(crm, session, principal, alert_id), principal.user)
    except alerts.StaleAlert:
        pass  # changed meanwhile: the badge below shows its state now
    if not is_htmx(request):
        return flash_redirect(request, ALERT_PAGE.format(id=alert_id))
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        alert = _visible(crm, session, principal, alert_id)
        return page(
            ctx,
            TEMPLATES + "alert_seen.html",
            a=alert,
            state_labels=alerts.STATE_LABELS,
            open_states=OPEN_STATES,
        )
