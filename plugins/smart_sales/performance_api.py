"""REST endpoints for performance, under ``/api/smart_sales/performance/``: the figures of the
performance pages as JSON.

``GET /performance/sales?start=&end=&by=owner|team`` and ``GET /performance/alerts?start=&end=
&by=kind|product|owner|month``; ``start`` and ``end`` are ISO dates, both included, and default
to the last twelve months. Both need ``smart_sales.performance:read`` and follow the user's
record scope (see :mod:`plugins.smart_sales.performance`). A period ending before it starts, or
spanning more than ten years, is 422 naming ``end`` or ``start``. Money is in minor units of
``currency`` (the CRM's default); rates are ratios between 0 and 1 (``null`` without a base).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy.orm import Session

from core.runtime import Crm
from core.web.access import access
from core.web.deps import Principal, get_crm, read_session, require_permission
from core.web.inputs import Day
from core.web.problems import invalid
from plugins.smart_sales import performance
from plugins.smart_sales.performance import READ, PerformanceError

router = APIRouter(tags=["smart_sales"])


class AlertRowOut(BaseModel):
    """What became of a group of alerts raised in the period."""

    key: str | int | None
    label: str | None
    raised: int
    acted: int
    converted: int
    dismissed: int
    expired: int
    open: int
    conversion_rate: float | None
    acted_rate: float | None
    credited_minor: int
    expected_minor: int
    other_currency: int


class AlertSeriesOut(BaseModel):
    """Per month of raising (``months``): alerts raised, acted on, converted, revenue credited."""

    raised: list[int]
    acted: list[int]
    converted: list[int]
    credited_minor: list[int]


class AlertPerformanceOut(BaseModel):
    """Alert performance over a period."""

    start: dt.date
    end: dt.date
    by: str
    currency: str
    rows: list[AlertRowOut]
    totals: AlertRowOut
    months: list[str]
    series: AlertSeriesOut
    other_currencies: dict[str, int]


class SalesRowOut(BaseModel):
    """A salesperson's or team's figures over the period, and their month-over-month trend."""

    key: int | None
    label: str | None
    orders: int
    revenue_minor: int
    margin_minor: int
    margin_rate: float | None
    costed_orders: int
    orders_without_cost: int
    average_order_minor: int | None
    other_currency_orders: int
    won: int
    lost: int
    win_rate: float | None
    won_value_minor: int
    average_won_minor: int | None
    this_month_minor: int
    last_month_minor: int
    change: float | None
    direction: Literal["up", "down", "flat"]


class SalesSeriesOut(BaseModel):
    """Per month (``months``): revenue, margin, orders, deals won and lost."""

    revenue_minor: list[int]
    margin_minor: list[int]
    orders: list[int]
    won: list[int]
    lost: list[int]


class CustomerMarginOut(BaseModel):
    """A customer's margin over the period."""

    customer_id: int
    name: str
    orders: int
    revenue_minor: int
    margin_minor: int
    margin_rate: float | None
    orders_without_cost: int


class SalesPerformanceOut(BaseModel):
    """Sales performance over a period; ``trend_months`` are the two months compared."""

    start: dt.date
    end: dt.date
    by: str
    currency: str
    rows: list[SalesRowOut]
    totals: SalesRowOut
    trend_months: list[str]
    months: list[str]
    series: SalesSeriesOut
    customers: list[CustomerMarginOut]
    other_currencies: dict[str, int]


def _period(start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    first, last = performance.default_period()
    return start or first, end or last


def _computed(compute: Any) -> dict[str, Any]:
    try:
        return compute()
    except PerformanceError as exc:
        raise invalid({exc.field: str(exc)}, "query") from None


@router.get("/performance/sales", response_model=SalesPerformanceOut, openapi_extra=access(READ))
async def sales_performance(
    start: Day | None = None,
    end: Day | None = None,
    by: Literal["owner", "team"] = "owner",
    principal: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> dict[str, Any]:
    """Revenue, margin, orders, deals, win rate and trends per salesperson or team, with the
    monthly series and the customers with the largest margins."""
    first, last = _period(start, end)
    return _computed(
        lambda: performance.sales_performance(
            crm, session, principal.user, start=first, end=last, by=by
        )
    )


@router.get("/performance/alerts", response_model=AlertPerformanceOut, openapi_extra=access(READ))
async def alert_performance(
    start: Day | None = None,
    end: Day | None = None,
    by: Literal["kind", "product", "owner", "month"] = "kind",
    principal: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> dict[str, Any]:
    """Alerts raised in the period per kind, product, salesperson or month: raised, acted,
    converted, dismissed, expired, conversion rate, revenue credited, expected value."""
    first, last = _period(start, end)
    return _computed(
        lambda: performance.alert_performance(
            crm, session, principal.user, start=first, end=last, by=by
        )
    )
