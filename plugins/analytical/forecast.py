"""Forecasts: the sales pipeline by expected close month, and monthly revenue from orders.

**Pipeline.** Open opportunities (their stage is of kind ``open`` in their team's pipeline, or
in the default pipeline when the team has no stages of its own, as
:mod:`plugins.operational.pipeline` decides) in the default currency, grouped by expected close
month as of D: ``undated`` without a date, ``overdue`` when the month is before D's month.
Per group: count, total expected revenue and weighted revenue = sum of expected revenue x
probability / 100, summed exactly in integers and rounded half up once per group. Open
opportunities in other currencies are counted and left out.

**Revenue.** Monthly totals of orders in the default currency, except ``cancelled`` and
``returned``, by UTC month, from the first month with an order to the last complete month
(D's month counts when D is its last day); months without orders are 0. With at least 24
months, Holt-Winters exponential smoothing (statsmodels ``ExponentialSmoothing``: additive
damped trend, additive seasonality of period 12, parameters estimated by maximum likelihood);
with 6 to 23 months, Holt's linear trend (no seasonality); under 6 months, no forecast. The next
:data:`HORIZON` months are forecast. The naive seasonal forecast is the same month one year
earlier (the last value when there are under 12 months).

**Backtest.** The last 12 months are held out (the last third when there are under 36 months),
the same model choice is fitted on the months before, and both the model and the naive forecast
predict the held-out months: MAE (mean absolute error, minor units) and MAPE (mean absolute
percentage error, months with zero revenue left out). The lower MAE wins. Forecasts are rounded
to integer minor units and never below 0.

Both forecasts can be restricted to the customers matching a condition (``customers``, from
:func:`core.records.customer_condition`): :func:`summary_for` computes them live so for a user
whose record rules hide some customers.
"""

from __future__ import annotations

import datetime as dt
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from plugins.analytical import snapshots
from plugins.analytical.kpi import of_customers
from plugins.analytical.models import Run
from plugins.analytical.snapshots import replace_run
from plugins.analytical.sql import EXCLUDED_STATUSES, key_of, month_key, month_label, month_start

if TYPE_CHECKING:
    from core.runtime import Crm

KIND = "forecast"
HORIZON = 6
SEASON = 12
SEASONAL_MIN_MONTHS = 24
MIN_MONTHS = 6
BACKTEST_MONTHS = 12


def round_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up, in integers (``denominator`` > 0)."""
    return (2 * numerator + denominator) // (2 * denominator)


# --- pipeline ------------------------------------------------------------------------------


def pipeline_forecast(
    session: Session,
    as_of: dt.date,
    currency: str,
    customers: ColumnElement[bool] | None = None,
) -> dict[str, Any]:
    """Open opportunities (of the ``customers`` when given) by expected close month: groups,
    totals and those left out."""
    from plugins.operational.models import Opportunity
    from plugins.operational.pipeline import in_open_stage

    mine = of_customers(Opportunity.customer_id, customers)

    dialect = session.get_bind().dialect.name
    month = month_key(dialect, Opportunity.expected_close).label("month")
    opportunities = (
        select(
            month,
            Opportunity.expected_revenue_minor.label("expected"),
            (Opportunity.expected_revenue_minor * Opportunity.probability).label("weighted"),
        )
        .where(in_open_stage(), Opportunity.currency == currency, *mine)
        .subquery()
    )
    query = select(
        opportunities.c.month,
        func.count(),
        func.sum(opportunities.c.expected),
        func.sum(opportunities.c.weighted),
    ).group_by(opportunities.c.month)
    groups: dict[str, list[int]] = {}
    current = key_of(as_of)
    for key, count, expected, weighted in session.execute(query):
        name = "undated" if key is None else "overdue" if key < current else month_label(key)
        totals = groups.setdefault(name, [0, 0, 0])
        for i, value in enumerate((count, expected, weighted)):
            totals[i] += int(value or 0)
    other = session.scalar(
        select(func.count())
        .select_from(Opportunity)
        .where(in_open_stage(), Opportunity.currency != currency, *mine)
    )
    rows = [
        {
            "group": name,
            "count": count,
            "expected_minor": expected,
            "weighted_minor": round_half_up(weighted, 100),
        }
        for name, (count, expected, weighted) in sorted(groups.items(), key=_group_order)
    ]
    return {
        "currency": currency,
        "groups": rows,
        "other_currency": int(other or 0),
        "total": {
            "count": sum(r["count"] for r in rows),
            "expected_minor": sum(r["expected_minor"] for r in rows),
            "weighted_minor": sum(r["weighted_minor"] for r in rows),
        },
    }


def _group_order(item: tuple[str, Any]) -> tuple[int, str]:
    name = item[0]
    return ({"overdue": 0, "undated": 2}.get(name, 1), name)


# --- revenue series ------------------------------------------------------------------------


def last_complete_month(as_of: dt.date) -> int:
    """The key of the last complete month as of the end of ``as_of``."""
    tomorrow = as_of + dt.timedelta(days=1)
    return key_of(as_of) if tomorrow.month != as_of.month else key_of(as_of) - 1


def monthly_revenue(
    session: Session,
    as_of: dt.date,
    currency: str,
    customers: ColumnElement[bool] | None = None,
) -> tuple[list[int], int]:
    """Revenue per month (0-filled) up to the last complete month, and the first month's key
    (orders of the ``customers`` only, when given)."""
    from plugins.operational.models import Order

    last = last_complete_month(as_of)
    end = month_start(last + 1)
    orders = (
        select(
            month_key(session.get_bind().dialect.name, Order.placed_at).label("month"),
            Order.total_minor.label("total"),
        )
        .where(
            Order.placed_at < end,
            Order.currency == currency,
            Order.status.not_in(EXCLUDED_STATUSES),
            *of_customers(Order.customer_id, customers),
        )
        .subquery()
    )
    totals = {
        int(key): int(total)
        for key, total in session.execute(
            select(orders.c.month, func.sum(orders.c.total)).group_by(orders.c.month)
        )
    }
    if not totals:
        return [], last + 1
    first = min(totals)
    return [totals.get(key, 0) for key in range(first, last + 1)], first


# --- models --------------------------------------------------------------------------------


def model_name(months: int) -> str | None:
    """The model used for a history of ``months``: ``holt_winters``, ``holt`` or None."""
    if months >= SEASONAL_MIN_MONTHS:
        return "holt_winters"
    if months >= MIN_MONTHS:
        return "holt"
    return None


def fit_forecast(history: list[int], horizon: int) -> tuple[list[float], dict[str, Any]]:
    """The model's forecast of the next ``horizon`` months (floats) and its parameters."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    name = model_name(len(history))
    if name is None:
        raise ValueError(f"at least {MIN_MONTHS} months are needed, got {len(history)}")
    y = np.asarray(history, dtype=float)
    if name == "holt_winters":
        model = ExponentialSmoothing(
            y,
            trend="add",
            damped_trend=True,
            seasonal="add",
            seasonal_periods=SEASON,
            initialization_method="estimated",
        )
    else:
        model = ExponentialSmoothing(y, trend="add", initialization_method="estimated")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = model.fit()
    params = {
        key: _finite(fitted.params.get(key))
        for key in ("smoothing_level", "smoothing_trend", "smoothing_seasonal", "damping_trend")
    }
    return [float(v) for v in fitted.forecast(horizon)], {"model": name, **params}


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return round(number, 4) if np.isfinite(number) else None


def naive_forecast(history: list[int], horizon: int) -> tuple[list[int], str]:
    """Same month one year earlier (``seasonal``), or the last value (``last``) under 12."""
    if len(history) >= SEASON:
        extended = list(history)
        for _ in range(horizon):
            extended.append(extended[-SEASON])
        return extended[len(history) :], "seasonal"
    return [history[-1]] * horizon, "last"


def to_minor(values: list[float]) -> list[int]:
    """Model output as integer minor units, never below 0."""
    return [max(0, round(v)) if np.isfinite(v) else 0 for v in values]


def errors(actual: list[int], predicted: list[int]) -> dict[str, Any]:
    """MAE (integer minor units) and MAPE (a share; months with zero actuals left out)."""
    absolute = [abs(a - p) for a, p in zip(actual, predicted, strict=True)]
    relative = [abs(a - p) / abs(a) for a, p in zip(actual, predicted, strict=True) if a != 0]
    return {
        "mae": round(sum(absolute) / len(absolute)) if absolute else None,
        "mape": round(sum(relative) / len(relative), 4) if relative else None,
    }


def backtest(series: list[int]) -> dict[str, Any] | None:
    """Model and naive forecasts of the held-out last months against the actuals."""
    holdout = BACKTEST_MONTHS if len(series) >= 3 * BACKTEST_MONTHS else len(series) // 3
    train, test = series[: len(series) - holdout], series[len(series) - holdout :]
    if holdout < 1 or model_name(len(train)) is None:
        return None
    predicted, params = fit_forecast(train, holdout)
    model = to_minor(predicted)
    naive, naive_kind = naive_forecast(train, holdout)
    model_errors, naive_errors = errors(test, model), errors(test, naive)
    if model_errors["mae"] == naive_errors["mae"]:
        winner = "tie"
    else:
        winner = "model" if model_errors["mae"] < naive_errors["mae"] else "naive"
    return {
        "holdout": holdout,
        "train_months": len(train),
        "params": params,
        "actual": test,
        "model": model,
        "naive": naive,
        "naive_kind": naive_kind,
        "model_errors": model_errors,
        "naive_errors": naive_errors,
        "winner": winner,
    }


def revenue_forecast(
    session: Session,
    as_of: dt.date,
    currency: str,
    customers: ColumnElement[bool] | None = None,
) -> dict[str, Any]:
    """The revenue series, the next months' model and naive forecasts, and the backtest (of
    the ``customers``' orders only, when given)."""
    series, first = monthly_revenue(session, as_of, currency, customers)
    months = [month_label(first + i) for i in range(len(series))]
    future = [month_label(first + len(series) + i) for i in range(HORIZON)]
    result: dict[str, Any] = {
        "currency": currency,
        "months": months,
        "actual": series,
        "model": model_name(len(series)),
        "min_months": MIN_MONTHS,
        "seasonal_min_months": SEASONAL_MIN_MONTHS,
        "forecast": None,
        "backtest": None,
    }
    if result["model"] is None:
        return result
    predicted, params = fit_forecast(series, HORIZON)
    naive, naive_kind = naive_forecast(series, HORIZON)
    result["params"] = params
    result["forecast"] = {
        "months": future,
        "model": to_minor(predicted),
        "naive": naive,
        "naive_kind": naive_kind,
    }
    result["backtest"] = backtest(series)
    return result


# --- the snapshot --------------------------------------------------------------------------


def refresh(session: Session, as_of: dt.date, currency: str) -> Run:
    """Compute both forecasts as of ``as_of`` and store them in the run's summary."""
    pipeline = pipeline_forecast(session, as_of, currency)
    revenue = revenue_forecast(session, as_of, currency)
    run = replace_run(
        session,
        KIND,
        as_of,
        {"currency": currency, "horizon": HORIZON, "model": revenue["model"]},
    )
    run.rows = len(revenue["months"])
    run.summary = {"pipeline": pipeline, "revenue": revenue}
    return run


def refresh_step(crm: Crm, session: Session, as_of: dt.date) -> Run:
    """The forecast step of ``crm analytics refresh``."""
    return refresh(session, as_of, crm.settings.default_currency)


def latest_run(session: Session) -> Run | None:
    """The newest forecast snapshot."""
    return snapshots.latest_run(session, KIND)


def summary_for(
    crm: Crm, user: Any, session: Session, run: Run | None
) -> tuple[dict[str, Any], bool]:
    """The forecasts of ``run`` that ``user`` may see (``{}`` without a run), and whether they
    are restricted: the stored summary for a user who sees every customer, else both forecasts
    computed live as of the run's date over the customers they may see."""
    from core.records import customer_condition

    summary = (run.summary or {}) if run is not None else {}
    condition = customer_condition(crm, user)
    if run is None or not summary or condition is None:
        return summary, False
    currency = (run.params or {}).get("currency") or crm.settings.default_currency
    return {
        "pipeline": pipeline_forecast(session, run.as_of, currency, condition),
        "revenue": revenue_forecast(session, run.as_of, currency, condition),
    }, True
