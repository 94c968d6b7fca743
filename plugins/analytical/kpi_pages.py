"""The KPI dashboard, ``/analytical/kpi``: one card per KPI with its chart, its latest value and
how it is computed, for holders of ``analytical.insight:read``. It reads the latest ``kpi``
snapshot (:mod:`plugins.analytical.kpi`); a user whose record rules hide some customers gets the
same figures computed live over the customers they may see (``kpi.summary_for``)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from core.i18n import N_
from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import UIContext, ui_principal
from plugins.analytical import kpi
from plugins.analytical.pages import READ, analytics_page, new_router, require
from plugins.analytical.views import SEGMENT_LABELS

router = new_router()


def month_labels(ctx: UIContext, summary: dict[str, Any]) -> list[str]:
    """The months of the series, the partial one marked as such."""
    partial = summary.get("partial_month")
    return [
        ctx.gettext(N_("%(month)s (so far)")) % {"month": m} if m == partial else m
        for m in summary["months"]
    ]


def _percent(values: list[float | None]) -> list[float | None]:
    return [None if v is None else round(v * 100, 1) for v in values]


def _major(values: list[int], currency: str) -> list[float]:
    """Minor units as major units for a chart axis (the chart only draws them)."""
    from core.money import minor_digits

    scale = 10 ** minor_digits(currency)
    return [v / scale for v in values]


def _series(ctx: UIContext, label: str, data: list[Any], **extra: Any) -> dict[str, Any]:
    return {"label": ctx.gettext(label), "data": data, **extra}


def charts(ctx: UIContext, summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The chart data of each KPI card, from a KPI run's summary."""
    labels = month_labels(ctx, summary)
    acq, pen, ret = summary["acquisition"], summary["penetration"], summary["retention"]
    rev, sat, seg = summary["revenue"], summary["satisfaction"], summary["segments"]
    currency = summary["currency"]
    return {
        "acquisition": {
            "labels": labels,
            "series": [
                _series(ctx, N_("New customers (first order)"), acq["new_customers"]),
                _series(ctx, N_("Customer records created"), acq["new_records"], type="line"),
            ],
        },
        "penetration": {
            "labels": labels,
            "percent": True,
            "series": [_series(ctx, N_("Buying in 2+ categories, %"), _percent(pen["share"]))],
        },
        "retention": {
            "labels": labels,
            "percent": True,
            "series": [
                _series(ctx, N_("Retention rate, %"), _percent(ret["rate"])),
                _series(ctx, N_("Churn rate, %"), _percent(ret["churn"])),
            ],
        },
        "revenue": {
            "labels": labels,
            "series": [
                _series(ctx, N_("Revenue"), _major(rev["revenue_minor"], currency)),
                _series(ctx, N_("Margin"), _major(rev["margin_minor"], currency), type="line"),
            ],
        },
        "satisfaction": {
            "labels": labels,
            "series": [
                _series(ctx, N_("Responses"), sat["responses"]),
                _series(ctx, N_("Average rating (1-5)"), sat["average"], type="line", axis="y1"),
            ],
        },
        "segments": {
            "labels": seg["dates"],
            "series": [
                _series(ctx, SEGMENT_LABELS.get(name, name), counts)
                for name, counts in seg["counts"].items()
            ],
        },
    }


def latest_segments(summary: dict[str, Any]) -> list[tuple[str, int]]:
    """(label msgid, customers) per segment at the latest RFM run of the series."""
    counts = summary["segments"]["counts"]
    if not summary["segments"]["dates"]:
        return []
    return [(SEGMENT_LABELS.get(name, name), values[-1]) for name, values in counts.items()]


@router.get("/kpi", response_class=HTMLResponse, openapi_extra=access(READ))
def kpi_page(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """The KPI cards of the latest KPI snapshot (or how to compute one)."""
    require(principal)
    crm = request.app.state.crm
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        run = kpi.latest_run(session)
        summary, scoped = kpi.summary_for(crm, principal.user, session, run)
        return analytics_page(
            ctx,
            "analytical/kpi.html",
            run=run,
            s=summary,
            scoped=scoped,
            charts=charts(ctx, summary) if summary else None,
            segments=latest_segments(summary) if summary else [],
            last=kpi.last,
        )
