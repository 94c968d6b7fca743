"""``/analytical/forecast``: the pipeline by expected close month and the revenue forecast with
its backtest, read from the latest ``forecast`` snapshot; a user whose record rules hide some
customers gets both computed live over the customers they may see (``forecast.summary_for``)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from core.i18n import N_
from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import UIContext, ui_principal
from plugins.analytical import forecast
from plugins.analytical.pages import READ, analytics_page, new_router, require

router = new_router()

GROUP_LABELS = {"overdue": N_("Overdue"), "undated": N_("No close date")}
MODEL_LABELS = {
    "holt_winters": N_("Holt-Winters (damped additive trend, additive 12-month seasonality)"),
    "holt": N_("Holt's linear trend (no seasonality: under 24 months of history)"),
}
NAIVE_LABELS = {
    "seasonal": N_("Naive seasonal (same month one year earlier)"),
    "last": N_("Naive (last month's value: under 12 months of history)"),
}


def _major(values: list[int | None], digits: int) -> list[float | int | None]:
    """Amounts for a chart, in major units of the currency."""
    scale = 10**digits
    return [None if v is None else (v if scale == 1 else v / scale) for v in values]


def _digits(currency: str) -> int:
    from core.money import minor_digits

    return minor_digits(currency)


def _group_label(ctx: UIContext, group: str) -> str:
    """A close-month group's label: a month as is, "undated" and "overdue" translated."""
    label = GROUP_LABELS.get(group)
    return ctx.gettext(label) if label else group


def pipeline_chart(ctx: UIContext, pipeline: dict[str, Any]) -> dict[str, Any] | None:
    """Expected against weighted revenue per close month group."""
    groups = pipeline.get("groups") or []
    if not groups:
        return None
    digits = _digits(pipeline["currency"])
    return {
        "labels": [_group_label(ctx, g["group"]) for g in groups],
        "series": [
            {
                "label": ctx.gettext(N_("Weighted revenue")),
                "data": _major([g["weighted_minor"] for g in groups], digits),
            },
            {
                "label": ctx.gettext(N_("Expected revenue")),
                "data": _major([g["expected_minor"] for g in groups], digits),
            },
        ],
    }


def revenue_chart(ctx: UIContext, revenue: dict[str, Any]) -> dict[str, Any] | None:
    """Actual monthly revenue, then the model's and the naive forecasts of the next months."""
    future = revenue.get("forecast")
    if not revenue.get("actual") or future is None:
        return None
    digits = _digits(revenue["currency"])
    past, ahead = len(revenue["actual"]), len(future["months"])
    last = revenue["actual"][-1]
    return {
        "labels": revenue["months"] + future["months"],
        "series": [
            {
                "label": ctx.gettext(N_("Actual")),
                "data": _major(revenue["actual"] + [None] * ahead, digits),
            },
            {
                "label": ctx.gettext(N_("Forecast")),
                "data": _major([None] * (past - 1) + [last] + future["model"], digits),
            },
            {
                "label": ctx.gettext(N_("Naive forecast")),
                "data": _major([None] * (past - 1) + [last] + future["naive"], digits),
            },
        ],
    }


def backtest_rows(backtest: dict[str, Any] | None, months: list[str]) -> list[dict[str, Any]]:
    """The held-out months: actual, model and naive forecasts."""
    if not backtest:
        return []
    held = months[len(months) - backtest["holdout"] :]
    return [
        {"month": month, "actual": a, "model": m, "naive": n}
        for month, a, m, n in zip(
            held, backtest["actual"], backtest["model"], backtest["naive"], strict=True
        )
    ]


@router.get("/forecast", response_class=HTMLResponse, openapi_extra=access(READ))
def forecast_page(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """Pipeline forecast table and chart, revenue forecast chart and its backtest."""
    require(principal)
    crm = request.app.state.crm
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        run = forecast.latest_run(session)
        summary, scoped = forecast.summary_for(crm, principal.user, session, run)
        pipeline = summary.get("pipeline") or {"groups": [], "currency": None}
        revenue = summary.get("revenue") or {"months": [], "actual": []}
        return analytics_page(
            ctx,
            "analytical/forecast.html",
            run=run,
            scoped=scoped,
            pipeline=pipeline,
            pipeline_chart=pipeline_chart(ctx, pipeline) if run else None,
            revenue=revenue,
            revenue_chart=revenue_chart(ctx, revenue) if run else None,
            backtest=revenue.get("backtest"),
            backtest_rows=backtest_rows(revenue.get("backtest"), revenue.get("months", [])),
            group_labels=GROUP_LABELS,
            model_labels=MODEL_LABELS,
            naive_labels=NAIVE_LABELS,
            horizon=forecast.HORIZON,
            min_months=forecast.MIN_MONTHS,
            seasonal_min_months=forecast.SEASONAL_MIN_MONTHS,
        )
