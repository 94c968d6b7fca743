"""The admin pages of outbound webhooks: register endpoints, watch and redeliver deliveries.

Every action calls ``core.webhooks.service`` (as ``crm webhooks`` does), inside one write
transaction, so a refused change stores nothing. A new or rotated signing secret is shown in
that response only, never in a URL or a cookie. A test event (ping) and a redelivery are sent
at once, so the admin sees the target's answer on the next page.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from core import audit
from core.i18n import N_, Msg
from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import (
    UIContext,
    csrf_check,
    flash_redirect,
    page,
    read_flash,
    ui_principal,
)
from core.webhooks import ALL_EVENTS, declared_events
from core.webhooks.errors import WebhookError

router = APIRouter(
    prefix="/admin/webhooks", dependencies=[Depends(csrf_check)], include_in_schema=False
)

PERMISSION = "webhook:manage"
#: The fields of the endpoint form; a ``WebhookError`` message starts with one of them.
FIELDS = ("url", "events", "description")
PAGE_SIZE = 50
#: How each delivery status reads on the page.
STATUS_LABELS = {"pending": N_("waiting"), "delivered": N_("delivered"), "failed": N_("failed")}


def _actor(request: Request, principal: Principal) -> audit.Actor:
    ip = request.client.host if request.client else None
    return audit.Actor(principal.user.email, principal.user.id, ip)


def _allowed(principal: Principal) -> None:
    principal.require(PERMISSION)


def field_errors(exc: WebhookError) -> dict[str, str]:
    """``{field: message}`` for a refusal (``""`` when it names no field of the form)."""
    text = str(exc)
    name, _, reason = text.partition(": ")
    return {name: reason} if name in FIELDS and reason else {"": text}


def event_groups(crm: Any) -> list[tuple[str, list[Any]]]:
    """The declared events grouped by the module that declares them, the core's first."""
    groups: dict[str, list[Any]] = {}
    for module, event in declared_events(crm).values():
        groups.setdefault(module, []).append(event)
    ordered = sorted(groups, key=lambda module: (module != "core", module))
    return [(module, sorted(groups[module], key=lambda e: e.name)) for module in ordered]


def _form(form: Any) -> dict[str, Any]:
    return {
        "url": str(form.get("url", "")).strip(),
        "description": str(form.get("description", "")).strip(),
        "events": [str(e) for e in form.getlist("events")],
    }


def _endpoint_or_404(session: Any, endpoint_id: int) -> Any:
    from core.webhooks import service

    try:
        return service.get_endpoint(session, endpoint_id)
    except WebhookError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


# --- the list and registering -----------------------------------------------------------------


@router.get("", response_class=HTMLResponse, openapi_extra=access(PERMISSION))
def webhooks_page(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """Every endpoint with its events and state; the form to register one."""
    _allowed(principal)
    return _list_view(request, principal, **read_flash(request))


def _list_view(
    request: Request,
    principal: Principal,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    **flash: Any,
) -> HTMLResponse:
    from sqlalchemy import func, select

    from core.webhooks import service
    from core.webhooks.models import FAILED, PENDING, WebhookDelivery

    crm = request.app.state.crm
    with crm.db.session() as session:
        counts: dict[tuple[int, str], int] = {
            (endpoint_id, state): count
            for endpoint_id, state, count in session.execute(
                select(WebhookDelivery.endpoint_id, WebhookDelivery.status, func.count())
                .where(WebhookDelivery.status.in_((PENDING, FAILED)))
                .group_by(WebhookDelivery.endpoint_id, WebhookDelivery.status)
            )
        }
        return page(
            UIContext(request, principal, session),
            "admin/webhooks.html",
            status_code=status_code,
            endpoints=service.list_endpoints(session),
            counts=counts,
            groups=event_groups(crm),
            all_events=ALL_EVENTS,
            values=values or {"url": "", "description": "", "events": []},
            errors=errors or {},
            **{"message": None, "error": None, **flash},
        )


@router.post("", openapi_extra=access(PERMISSION))
async def register(request: Request, principal: Principal = Depends(ui_principal)) -> Response:
    """Register an endpoint; show its secret once, or the form again with the errors."""
    from core.webhooks import service

    _allowed(principal)
    values = _form(await request.form())
    crm = request.app.state.crm
    try:
        with crm.db.write() as session, audit.acting_as(_actor(request, principal)):
            endpoint, secret = service.add_endpoint(
                session,
                crm,
                values["url"],
                values["events"],
                values["description"],
                created_by_id=principal.user.id,
            )
            endpoint_id = endpoint.id
    except WebhookError as exc:
        errors = field_errors(exc)
        if "url" in errors and not values["events"]:
            errors["events"] = N_("Choose at least one event.")
        return _list_view(request, principal, values=values, errors=errors, status_code=422)
    message = Msg(N_("Registered the endpoint %(url)s."), url=values["url"])
    return _endpoint_view(request, principal, endpoint_id, secret=secret, message=message)


# --- one endpoint -----------------------------------------------------------------------------


@router.get("/{endpoint_id}", response_class=HTMLResponse, openapi_extra=access(PERMISSION))
def endpoint_page(
    request: Request, endpoint_id: int, principal: Principal = Depends(ui_principal)
) -> HTMLResponse:
    """One endpoint: its settings, actions, and its deliveries newest first (by keyset pages,
    filtered by status)."""
    _allowed(principal)
    return _endpoint_view(request, principal, endpoint_id, **read_flash(request))


def _endpoint_view(
    request: Request,
    principal: Principal,
    endpoint_id: int,
    *,
    secret: str | None = None,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    **flash: Any,
) -> HTMLResponse:
    from core.webhooks import service
    from core.webhooks.models import STATUSES

    params = request.query_params
    wanted = params.get("status") or None
    if wanted is not None and wanted not in STATUSES:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"status: must be one of {', '.join(STATUSES)}",
        )
    before = params.get("before", "")
    if before and not before.isdigit():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "before: must be a delivery id")
    crm = request.app.state.crm
    with crm.db.session() as session:
        endpoint = _endpoint_or_404(session, endpoint_id)
        deliveries = service.list_deliveries(
            session,
            endpoint_id=endpoint.id,
            status=wanted,
            limit=PAGE_SIZE + 1,
            before_id=int(before) if before else None,
        )
        more = len(deliveries) > PAGE_SIZE
        deliveries = deliveries[:PAGE_SIZE]
        current = {
            "url": endpoint.url,
            "description": endpoint.description,
            "events": list(endpoint.events or ()),
        }
        response = page(
            UIContext(request, principal, session),
            "admin/webhook.html",
            status_code=status_code,
            endpoint=endpoint,
            deliveries=deliveries,
            next_before=deliveries[-1].id if more and deliveries else None,
            status_filter=wanted or "",
            statuses=STATUSES,
            status_labels=STATUS_LABELS,
            groups=event_groups(crm),
            all_events=ALL_EVENTS,
            values=values or current,
            errors=errors or {},
            secret=secret,
            **{"message": None, "error": None, **flash},
        )
    if secret is not None:  # never kept by the browser's cache or history
        response.headers["Cache-Control"] = "no-store"
    return response


def _here(endpoint_id: int) -> str:
    return f"/admin/webhooks/{endpoint_id}"


@router.post("/{endpoint_id}", openapi_extra=access(PERMISSION))
async def save(
    request: Request, endpoint_id: int, principal: Principal = Depends(ui_principal)
) -> Response:
    """Change an endpoint's URL, description and events; the form again with the errors."""
    from core.webhooks import service

    _allowed(principal)
    values = _form(await request.form())
    crm = request.app.state.crm
    try:
        with crm.db.write() as session, audit.acting_as(_actor(request, principal)):
            _endpoint_or_404(session, endpoint_id)
            service.update_endpoint(
                session,
                crm,
                endpoint_id,
                url=values["url"],
                events=values["events"],
                description=values["description"],
            )
    except WebhookError as exc:
        return _endpoint_view(
            request,
            principal,
            endpoint_id,
            values=values,
            errors=field_errors(exc),
            status_code=422,
        )
    return flash_redirect(request, _here(endpoint_id), message=N_("Saved."))


@router.post("/{endpoint_id}/active", openapi_extra=access(PERMISSION))
async def set_active(
    request: Request, endpoint_id: int, principal: Principal = Depends(ui_principal)
) -> Response:
    """Enable (``active=1``) or disable (``active=0``) an endpoint; a disabled one is sent
    nothing, and its pending deliveries wait."""
    from core.webhooks import service

    _allowed(principal)
    wanted = str((await request.form()).get("active", ""))
    if wanted not in ("0", "1"):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "active: must be 0 or 1")
    crm = request.app.state.crm
    with crm.db.write() as session, audit.acting_as(_actor(request, principal)):
        _endpoint_or_404(session, endpoint_id)
        service.update_endpoint(session, crm, endpoint_id, active=wanted == "1")
    text = N_("Endpoint enabled.") if wanted == "1" else N_("Endpoint disabled.")
    return flash_redirect(request, _here(endpoint_id), message=text)


@router.post("/{endpoint_id}/rotate", openapi_extra=access(PERMISSION))
def rotate(
    request: Request, endpoint_id: int, principal: Principal = Depends(ui_principal)
) -> Response:
    """Give the endpoint a new signing secret, shown in this response only."""
    from core.webhooks import service

    _allowed(principal)
    crm = request.app.state.crm
    with crm.db.write() as session, audit.acting_as(_actor(request, principal)):
        _endpoint_or_404(session, endpoint_id)
        secret = service.rotate_secret(session, endpoint_id)
    message = N_("New secret made. Give it to the receiver: the old one no longer verifies.")
    return _endpoint_view(request, principal, endpoint_id, secret=secret, message=message)


@router.post("/{endpoint_id}/delete", openapi_extra=access(PERMISSION))
def remove(
    request: Request, endpoint_id: int, principal: Principal = Depends(ui_principal)
) -> Response:
    """Delete an endpoint with its deliveries (the page asks for confirmation first)."""
    from core.webhooks import service

    _allowed(principal)
    crm = request.app.state.crm
    with crm.db.write() as session, audit.acting_as(_actor(request, principal)):
        url = _endpoint_or_404(session, endpoint_id).url
        service.remove_endpoint(session, endpoint_id)
    return flash_redirect(
        request, "/admin/webhooks", message=Msg(N_("Deleted the endpoint %(url)s."), url=url)
    )


def _send_now(crm: Any, delivery_id: int) -> Any:
    """Send one queued delivery at once and return it as it stands afterwards."""
    from core.webhooks import service
    from core.webhooks.delivery import deliver_due

    deliver_due(crm, limit=1, ids=[delivery_id])
    with crm.db.session() as session:
        return service.get_delivery(session, delivery_id)


def _outcome(delivery: Any) -> dict[str, str]:
    """The flash message saying how a delivery sent at once went."""
    from core.webhooks.models import DELIVERED

    if delivery.status == DELIVERED:
        return {
            "message": Msg(
                N_("Delivered: the endpoint answered HTTP %(code)s."),
                code=delivery.response_status,
            )
        }
    reason = delivery.error or (
        f"HTTP {delivery.response_status}" if delivery.response_status else ""
    )
    return {
        "error": Msg(
            N_("Not delivered (%(reason)s); it is retried later, or redeliver it from the list."),
            reason=reason or "?",
        )
    }


@router.post("/{endpoint_id}/ping", openapi_extra=access(PERMISSION))
def ping(
    request: Request, endpoint_id: int, principal: Principal = Depends(ui_principal)
) -> Response:
    """Send the endpoint a test event now; the page then shows the answer."""
    from core.webhooks import service

    _allowed(principal)
    crm = request.app.state.crm
    try:
        with crm.db.write() as session, audit.acting_as(_actor(request, principal)):
            _endpoint_or_404(session, endpoint_id)
            delivery_id = service.send_ping(session, crm, endpoint_id).id
    except WebhookError as exc:
        return flash_redirect(request, _here(endpoint_id), error=str(exc))
    return flash_redirect(request, _here(endpoint_id), **_outcome(_send_now(crm, delivery_id)))


@router.post("/deliveries/{delivery_id}/redeliver", openapi_extra=access(PERMISSION))
def redeliver(
    request: Request, delivery_id: int, principal: Principal = Depends(ui_principal)
) -> Response:
    """Send a delivery again now (a delivered or failed one as a new delivery of the same
    event); back to its endpoint's page with the answer."""
    from core.webhooks import service

    _allowed(principal)
    crm = request.app.state.crm
    with crm.db.session() as session:
        try:
            endpoint_id = service.get_delivery(session, delivery_id).endpoint_id
        except WebhookError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    try:
        with crm.db.write() as session, audit.acting_as(_actor(request, principal)):
            again = service.redeliver(session, delivery_id).id
    except WebhookError as exc:
        return flash_redirect(request, _here(endpoint_id), error=str(exc))
    return flash_redirect(request, _here(endpoint_id), **_outcome(_send_now(crm, again)))
