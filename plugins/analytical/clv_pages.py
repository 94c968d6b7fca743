"""The lifetime-value page, ``/analytical/clv``, and the customer 360 panel "Lifetime value".

Both read the stored ``clv`` snapshot (:mod:`plugins.analytical.clv_snapshot`): the fitted
parameters, the holdout check and the CLV deciles from the run's summary, customers from its
``analytical_clv`` rows (within the user's record rules).
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.customers.models import Customer
from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import UIContext, ui_principal
from plugins.analytical.models import ClvScore, Run
from plugins.analytical.pages import (
    READ,
    analytics_page,
    new_router,
    require,
    snapshot_row,
    visible_customers,
)
from plugins.analytical.snapshots import latest_run

router = new_router()

#: How many customers the top list shows.
TOP = 50


@router.get("/clv", response_class=HTMLResponse, openapi_extra=access(READ))
def clv_page(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """Fitted parameters, the holdout check, the CLV distribution and the top customers."""
    require(principal)
    crm = request.app.state.crm
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        run = latest_run(session, "clv")
        summary = (run.summary or {}) if run else {}
        holdout = summary.get("holdout") or {}
        currency = ((run.params or {}).get("currency") if run else None) or (
            crm.settings.default_currency
        )
        return analytics_page(
            ctx,
            "analytical/clv.html",
            run=run,
            summary=summary,
            error=summary.get("error"),
            holdout=holdout,
            holdout_chart=holdout_chart(ctx, holdout),
            deciles=summary.get("deciles") or [],
            decile_chart=decile_chart(ctx, summary.get("deciles") or []),
            customers=top_customers(session, crm, principal, run),
            means=model_means(summary, currency),
            currency=currency,
        )


def model_means(summary: dict[str, Any], currency: str) -> dict[str, Any] | None:
    """What the parameters mean: the mean purchase rate while active (r / alpha), the mean
    chance of dropping out after a purchase (a / (a + b)) and the mean spend per purchase
    (p v / (q - 1), minor units; None when q <= 1 makes it infinite)."""
    bg, gg = summary.get("bgnbd"), summary.get("gamma_gamma")
    if not bg or not gg:
        return None
    from plugins.analytical.clv import to_minor

    spend = gg["p"] * gg["v"] / (gg["q"] - 1) if gg["q"] > 1 else None
    return {
        "rate": bg["r"] / bg["alpha"],
        "dropout": bg["a"] / (bg["a"] + bg["b"]),
        "spend_minor": int(to_minor(spend, currency)) if spend is not None else None,
    }


def holdout_chart(ctx: UIContext, holdout: dict[str, Any]) -> dict[str, Any] | None:
    """Mean actual purchases (bars) and mean predicted purchases (line) per frequency group."""
    groups = holdout.get("groups")
    if not groups:
        return None
    return {
        "labels": [group["label"] for group in groups],
        "series": [
            {
                "label": ctx.gettext("Actual purchases (mean)"),
                "data": [round(group["actual"], 3) for group in groups],
            },
            {
                "label": ctx.gettext("Predicted purchases (mean)"),
                "data": [round(group["predicted"], 3) for group in groups],
                "type": "line",
            },
        ],
    }


def decile_chart(ctx: UIContext, deciles: list[dict[str, int]]) -> dict[str, Any] | None:
    """Share of the total CLV held by each decile of customers (lowest CLV first), percent."""
    total = sum(d["total_minor"] for d in deciles)
    if not deciles or total <= 0:
        return None
    return {
        "labels": [str(d["decile"]) for d in deciles],
        "series": [
            {
                "label": ctx.gettext("Share of total CLV (%)"),
                "data": [round(100 * d["total_minor"] / total, 1) for d in deciles],
            }
        ],
        "percent": True,
    }


def top_customers(session: Session, crm: Any, principal: Principal, run: Run | None) -> list:
    """The customers the user may see with the highest CLV in ``run``."""
    if run is None or not run.rows:
        return []
    query = (
        select(ClvScore, Customer.display_name)
        .join(Customer, Customer.id == ClvScore.customer_id)
        .where(ClvScore.run_id == run.id)
        .order_by(ClvScore.clv_minor.desc(), ClvScore.customer_id)
        .limit(TOP)
    )
    return list(session.execute(visible_customers(query, crm, principal)))


def clv_slot(ctx: Any, customer_id: int) -> str:
    """The customer 360 panel: expected purchases, probability alive and CLV from the latest
    lifetime-value snapshot."""
    run = latest_run(ctx.session, "clv")
    score = snapshot_row(ctx.session, run, ClvScore, customer_id) if run and run.rows else None
    return ctx.render(
        "analytical/clv_slot.html",
        run=run,
        score=score,
        currency=((run.params or {}).get("currency") if run else None)
        or ctx.crm.settings.default_currency,
    )
