"""HTML pages the module renders itself, under ``/analytical/`` (``web_routers`` hook).

Every page reads stored snapshots (``crm analytics refresh``) and says how each figure is
computed. ``/analytical/`` is the overview linking to the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.i18n import N_
from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import UIContext, csrf_check, page, ui_principal

if TYPE_CHECKING:
    from plugins.analytical.models import Run

READ = "analytical.insight:read"

#: The analytics pages: (path, title, snapshot kind shown as "as of", permission).
SECTIONS = (
    ("/analytical/rfm", N_("RFM segments"), "rfm", READ),
    ("/analytical/clv", N_("Lifetime value"), "clv", READ),
    ("/analytical/value", N_("Classes and profitability"), "profit", READ),
    ("/analytical/behaviour", N_("Behaviour and cohorts"), "behaviour", READ),
    ("/analytical/forecast", N_("Forecasts"), "forecast", READ),
    ("/analytical/campaigns", N_("Campaigns"), None, "analytical.campaign:read"),
    ("/analytical/kpi", N_("KPI dashboard"), "kpi", READ),
)


def new_router() -> APIRouter:
    """A router for the module's pages, with CSRF checks on every form."""
    return APIRouter(dependencies=[Depends(csrf_check)], include_in_schema=False)


def require(principal: Principal, permission: str = READ) -> None:
    """Refuse with 403 unless the user holds ``permission``."""
    if not principal.can(permission):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"permission {permission} required")


def visible_customers(query: Any, crm: Any, principal: Principal) -> Any:
    """``query`` (joined to customers) narrowed to the customers the user's record rule shows."""
    from core.records import customer_condition

    condition = customer_condition(crm, principal.user)
    return query if condition is None else query.where(condition)


def snapshot_row(session: Session, run: Run | None, model: Any, customer_id: int) -> Any:
    """The customer's row of ``model`` (a per-customer snapshot table) in ``run``; ``None``
    without a run or a row."""
    if run is None:
        return None
    return session.scalars(
        select(model).where(model.run_id == run.id, model.customer_id == customer_id)
    ).first()


def analytics_page(ctx: UIContext, template: str, **context: Any) -> HTMLResponse:
    """An analytics page: the layout's context plus the section navigation."""
    return page(ctx, template, analytics_sections=SECTIONS, **context)


router = new_router()


@router.get("/", response_class=HTMLResponse, openapi_extra=access(READ))
def overview(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """The analytics pages with the date of their latest snapshot."""
    from plugins.analytical.snapshots import latest_run

    require(principal)
    crm = request.app.state.crm
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        sections = [
            {
                "url": url,
                "title": title,
                "run": latest_run(session, kind) if kind else None,
                "kind": kind,
            }
            for url, title, kind, permission in SECTIONS
            if principal.can(permission)
        ]
        return analytics_page(ctx, "analytical/overview.html", sections=sections)


def routers() -> list[APIRouter]:
    """Every page router of the module."""
    from plugins.analytical import (
        behaviour_pages,
        campaign_pages,
        clv_pages,
        forecast_pages,
        kpi_pages,
        rfm_pages,
        value_pages,
    )

    return [
        router,
        rfm_pages.router,
        clv_pages.router,
        value_pages.router,
        behaviour_pages.router,
        forecast_pages.router,
        campaign_pages.router,
        kpi_pages.router,
    ]
