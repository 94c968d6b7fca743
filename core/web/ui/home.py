"""The home dashboard, and the slots and widgets that modules contribute.

The dashboard and the customer 360 page render placeholders only; each widget and slot is
fetched by its own htmx request, so one that is slow or raises shows an error box while the rest
of the page works.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse

from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import UIContext, csrf_check, page, ui_principal

log = logging.getLogger("crm.ui")
router = APIRouter(dependencies=[Depends(csrf_check)], include_in_schema=False)


@router.get("/", response_class=HTMLResponse, openapi_extra=access(None))
def dashboard(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """The home dashboard: the widgets the user may see."""
    ctx = UIContext(request, principal)
    widgets = [w for w in ctx.ui.registry.widgets if ctx.can(w.permission)]
    return page(ctx, "dashboard.html", widgets=widgets, problems=ctx.ui.registry.problems)


@router.get(
    "/ui/widgets/{widget_id}", response_class=HTMLResponse, openapi_extra=access("{widget}")
)
def widget(
    request: Request, widget_id: str, principal: Principal = Depends(ui_principal)
) -> HTMLResponse:
    """One dashboard widget, computed now; an error box if its module fails."""
    ctx = UIContext(request, principal)
    found = next((w for w in ctx.ui.registry.widgets if w.id == widget_id), None)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no widget {widget_id!r}")
    if found.permission is not None:
        principal.require(found.permission)
    with ctx.crm.db.session() as session:
        ctx.session = session
        try:
            value = found.compute(ctx)
        except Exception:
            module = ctx.ui.registry.owners.get(f"widget:{widget_id}", "?")
            log.exception("module %s: widget %s failed", module, widget_id)
            return page(ctx, "box_error.html", title=found.title, module=module)
    return page(ctx, "widget.html", widget=found, value=value)


@router.get(
    "/ui/slots/{slot_id}/{record_id:int}",
    response_class=HTMLResponse,
    openapi_extra=access("{slot}", all_of=("{resource}:read",), scoped=True),
)
def slot(
    request: Request, slot_id: str, record_id: int, principal: Principal = Depends(ui_principal)
) -> HTMLResponse:
    """One panel of a record page; an error box if its module fails."""
    from core.ui import data

    ctx = UIContext(request, principal)
    found = next((s for s in ctx.ui.registry.slots if s.id == slot_id), None)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no slot {slot_id!r}")
    if found.permission is not None:
        principal.require(found.permission)
    resource = ctx.ui.registry.resource(found.resource)
    principal.require(resource.permission("read"))
    with ctx.crm.db.session() as session:
        ctx.session = session
        if data.get(ctx.crm, session, principal.user, resource, record_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {resource.name} {record_id}")
        try:
            body = found.render(ctx, record_id)
        except Exception:
            module = ctx.ui.registry.owners.get(f"slot:{slot_id}", "?")
            log.exception("module %s: slot %s failed for %s", module, slot_id, record_id)
            return page(ctx, "box_error.html", title=found.title, module=module)
    return page(ctx, "slot.html", slot=found, body=body)
