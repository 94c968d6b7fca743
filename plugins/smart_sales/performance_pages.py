"""The performance pages, under ``/smart_sales/``: sales performance per salesperson and team
(``/performance``) and alert performance per kind, product and salesperson
(``/performance/alerts``), each over a period (the last twelve months unless chosen), with
charts drawn by the core's script from ``<canvas data-chart=...>``.

Both need ``smart_sales.performance:read``; the figures follow the user's record scope
(:mod:`plugins.smart_sales.performance`). A bad query parameter (an unreadable ``start`` or
``end``, a period ending before it starts or spanning more than ten years, an unknown ``by``) is
answered 422 naming it, as the API does, and nothing is computed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse

from core.i18n import N_
from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import UIContext, csrf_check, page, ui_principal
from plugins.smart_sales import performance
from plugins.smart_sales.performance import KIND_LABELS, READ, PerformanceError

router = APIRouter(dependencies=[Depends(csrf_check)], include_in_schema=False)

#: Labels of rows without a key, per grouping (msgids).
NO_KEY = {
    "owner": N_("No owner"),
    "team": N_("No team"),
    "product": N_("No product (win back)"),
    "kind": N_("Unknown"),
    "month": N_("Unknown"),
}


def _require(principal: Principal) -> None:
    if not principal.can(READ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"permission {READ} required")


def refused(field: str, message: str) -> HTTPException:
    """422 naming the query parameter ``field`` (the error page shows ``field: message``)."""
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{field}: {message}")


def period(request: Request) -> tuple[dt.date, dt.date]:
    """The period asked for in ``?start=&end=`` (ISO dates), each defaulting to the last twelve
    months when absent or empty; 422 naming the parameter when a date is unreadable."""
    dates = dict(zip(("start", "end"), performance.default_period(), strict=True))
    for name in dates:
        text = (request.query_params.get(name) or "").strip()
        if not text:
            continue
        try:
            dates[name] = dt.date.fromisoformat(text)
        except ValueError:
            raise refused(name, f"{text[:40]!r} is not a day written as YYYY-MM-DD") from None
    return dates["start"], dates["end"]


def row_label(ctx: UIContext, by: str, row: dict[str, Any]) -> str:
    """What a row is called on screen: a translated kind, a name, a month, or "no owner"."""
    if by == "kind" and row["key"] in KIND_LABELS:
        return ctx.gettext(KIND_LABELS[row["key"]])
    if by == "month" and row["key"] is not None:
        return str(row["key"])
    if row["key"] is None:
        return ctx.gettext(NO_KEY[by])
    return row["label"] or f"#{row['key']}"


def _major(values: list[int], currency: str) -> list[float]:
    """Minor units as major units for a chart axis (the chart only draws them)."""
    from core.money import minor_digits

    scale = 10 ** minor_digits(currency)
    return [v / scale for v in values]


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def sales_charts(ctx: UIContext, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Chart data of the sales page: revenue and margin per month, win rate per row."""
    currency, series = data["currency"], data["series"]
    return {
        "money": {
            "labels": data["months"],
            "series": [
                {
                    "label": ctx.gettext(N_("Revenue")),
                    "data": _major(series["revenue_minor"], currency),
                },
                {
                    "label": ctx.gettext(N_("Margin")),
                    "data": _major(series["margin_minor"], currency),
                    "type": "line",
                },
            ],
        },
        "win_rate": {
            "labels": [row_label(ctx, data["by"], row) for row in data["rows"]],
            "percent": True,
            "series": [
                {
                    "label": ctx.gettext(N_("Win rate, %")),
                    "data": [_percent(row["win_rate"]) for row in data["rows"]],
                }
            ],
        },
    }


def alert_charts(ctx: UIContext, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Chart data of the alert page: raised, acted and converted per month; credited revenue."""
    series = data["series"]
    return {
        "outcomes": {
            "labels": data["months"],
            "series": [
                {"label": ctx.gettext(N_("Raised")), "data": series["raised"]},
                {"label": ctx.gettext(N_("Acted on")), "data": series["acted"]},
                {"label": ctx.gettext(N_("Converted")), "data": series["converted"]},
            ],
        },
        "credited": {
            "labels": data["months"],
            "series": [
                {
                    "label": ctx.gettext(N_("Revenue credited")),
                    "data": _major(series["credited_minor"], data["currency"]),
                    "type": "line",
                }
            ],
        },
    }


def _labelled(ctx: UIContext, data: dict[str, Any]) -> dict[str, Any]:
    for row in data["rows"]:
        row["shown"] = row_label(ctx, data["by"], row)
    return data


@router.get("/performance", response_class=HTMLResponse, openapi_extra=access(READ))
def sales_page(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """Sales performance per salesperson (``?by=owner``) or team (``?by=team``)."""
    _require(principal)
    by = request.query_params.get("by") or "owner"
    start, end = period(request)
    crm = request.app.state.crm
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        try:
            data = performance.sales_performance(
                crm, session, principal.user, start=start, end=end, by=by
            )
        except PerformanceError as exc:
            raise refused(exc.field, str(exc)) from None
        return page(
            ctx,
            "smart_sales/performance.html",
            data=_labelled(ctx, data),
            charts=sales_charts(ctx, data),
            start=start,
            end=end,
            by=by,
        )


@router.get("/performance/alerts", response_class=HTMLResponse, openapi_extra=access(READ))
def alerts_page(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """Alert performance per kind, product and salesperson, and per month in the charts."""
    _require(principal)
    start, end = period(request)
    crm = request.app.state.crm
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        try:
            tables = {
                by: _labelled(
                    ctx,
                    performance.alert_performance(
                        crm, session, principal.user, start=start, end=end, by=by
                    ),
                )
                for by in ("kind", "product", "owner")
            }
        except PerformanceError as exc:
            raise refused(exc.field, str(exc)) from None
        data = tables["kind"]
        return page(
            ctx,
            "smart_sales/performance_alerts.html",
            data=data,
            tables=tables,
            charts=alert_charts(ctx, data),
            start=start,
            end=end,
        )
