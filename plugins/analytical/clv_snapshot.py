"""The lifetime-value snapshot of ``crm analytics refresh`` (kind ``clv``), with its holdout check.

Settings: ``clv_unit`` (day or week), ``clv_horizon`` (in that unit), ``clv_discount_percent``
(a yearly rate, turned into the per-unit rate :func:`plugins.analytical.clv.clv` expects) and
``clv_holdout_days``.

1. Holdout check: BG/NBD fitted on the orders up to ``as_of - clv_holdout_days`` (the
   calibration period) predicts each calibration customer's purchases over the holdout days;
   the actual count is the customer's repeat purchases (purchase days) after the calibration
   end, up to ``as_of``. Both are averaged per calibration frequency (0, 1, ..., 6, 7+) and
   stored in ``Run.summary["holdout"]`` with their totals and the fitted parameters.
2. BG/NBD and Gamma-Gamma fitted on every order up to ``as_of``; each customer's calibration
   summary, expected purchases over the horizon, probability alive and CLV are stored as
   ``ClvScore`` rows; the parameters, log-likelihoods and the CLV deciles in the summary.

Too little data (``NotEnoughData``, ``FitError``, a Gamma-Gamma ``q <= 1``) is stored as a run
with no rows and ``summary = {"error": message}``: the refresh goes on and the page shows why.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np

from plugins.analytical import clv
from plugins.analytical.config import settings
from plugins.analytical.models import ClvScore, Run
from plugins.analytical.snapshots import insert_rows, replace_run

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.runtime import Crm

#: Calibration frequencies of the holdout groups; the last group is "7 or more".
HOLDOUT_GROUPS = 8
DAYS_A_YEAR = 365.0


def per_unit_rate(yearly_percent: float, unit: str) -> float:
    """The discount rate per ``unit`` equivalent to ``yearly_percent`` a year (compounded):
    (1 + y) ** (days of the unit / 365) - 1."""
    return (1 + yearly_percent / 100) ** (clv.UNITS[unit] / DAYS_A_YEAR) - 1


def refresh_step(crm: Crm, session: Session, as_of: dt.date) -> Run:
    """The lifetime-value step of ``crm analytics refresh``: holdout check, then scores."""
    options = settings(crm)
    unit, horizon = options["clv_unit"], int(options["clv_horizon"])
    holdout_days = int(options["clv_holdout_days"])
    rate = per_unit_rate(float(options["clv_discount_percent"]), unit)
    params = {
        "unit": unit,
        "horizon": horizon,
        "discount_percent_yearly": options["clv_discount_percent"],
        "discount_rate_per_unit": rate,
        "holdout_days": holdout_days,
    }
    run = replace_run(session, "clv", as_of, params)
    try:
        data = _summary(session, as_of, unit, crm.settings.default_currency)
        holdout = holdout_check(session, data, holdout_days)
        run.rows, result = store_scores(session, run.id, data, horizon, rate)
    except ValueError as error:  # NotEnoughData, FitError and q <= 1 are ValueErrors
        run.summary = {"error": str(error)}
        return run
    run.params = {**params, "currency": data.currency}
    run.summary = {**result, "holdout": holdout}
    return run


def _summary(session: Session, as_of: dt.date, unit: str, default_currency: str) -> clv.Summary:
    """The calibration summary up to ``as_of``: all orders when they share one currency, else
    the orders in the default currency only."""
    try:
        return clv.summary(session, as_of, unit)
    except ValueError:  # several currencies
        return clv.summary(session, as_of, unit, default_currency)


def holdout_check(session: Session, full: clv.Summary, days: int) -> dict[str, Any]:
    """Predicted against actual repeat purchases over the last ``days`` before ``full.until``,
    per calibration frequency group; ``{"error": ...}`` when the calibration period is too
    short to fit."""
    end = full.until - dt.timedelta(days=days)
    calibration = clv.summary(session, end, full.unit, full.currency)
    try:
        fit = clv.fit_bgnbd(calibration.frequency, calibration.recency, calibration.T)
    except ValueError as error:
        return {"error": str(error), "calibration_end": end.isoformat(), "days": days}
    length = days / clv.UNITS[full.unit]
    predicted = clv.expected_purchases(
        fit.params, length, calibration.frequency, calibration.recency, calibration.T
    )
    # every calibration customer is in the full summary; purchase days after the
    # calibration end are exactly the extra repeat purchases
    position = np.searchsorted(full.customer_id, calibration.customer_id)
    actual = full.frequency[position] - calibration.frequency
    return {
        "calibration_end": end.isoformat(),
        "days": days,
        "length": length,
        "bgnbd": fit.params,
        "log_likelihood": fit.log_likelihood,
        "groups": holdout_groups(calibration.frequency, predicted, actual),
        "total": {
            "customers": len(calibration),
            "predicted": float(predicted.sum()),
            "actual": int(actual.sum()),
        },
    }


def holdout_groups(
    frequency: np.ndarray, predicted: np.ndarray, actual: np.ndarray
) -> list[dict[str, Any]]:
    """Customers, mean predicted and mean actual purchases per calibration frequency 0..6, 7+
    (empty groups left out)."""
    group = np.minimum(frequency, HOLDOUT_GROUPS - 1)
    rows = []
    for value in range(HOLDOUT_GROUPS):
        members = group == value
        count = int(members.sum())
        if count:
            rows.append(
                {
                    "frequency": value,
                    "label": f"{value}+" if value == HOLDOUT_GROUPS - 1 else str(value),
                    "customers": count,
                    "predicted": float(predicted[members].mean()),
                    "actual": float(actual[members].mean()),
                }
            )
    return rows


def store_scores(
    session: Session, run_id: int, data: clv.Summary, horizon: int, rate: float
) -> tuple[int, dict[str, Any]]:
    """Fit both models on ``data``, store every customer's scores; returns the row count and
    the summary (parameters, log-likelihoods, totals, CLV deciles)."""
    bg = clv.fit_bgnbd(data.frequency, data.recency, data.T)
    gg = clv.fit_gamma_gamma(data.frequency, data.monetary)
    args = (data.frequency, data.recency, data.T)
    purchases = clv.expected_purchases(bg.params, horizon, *args)
    alive = clv.probability_alive(bg.params, *args)
    value = clv.to_minor(
        clv.clv(bg.params, gg.params, *args, data.monetary, horizon, rate), data.currency
    )
    monetary = clv.to_minor(data.monetary, data.currency)
    columns = (data.customer_id, data.frequency, data.recency, data.T, monetary)
    rows = insert_rows(
        session,
        ClvScore.__table__,
        (
            {
                "run_id": run_id,
                "customer_id": customer,
                "frequency": frequency,
                "recency": recency,
                "t": t,
                "monetary_minor": spend,
                "expected_purchases": expected,
                "probability_alive": p_alive,
                "clv_minor": amount,
            }
            for customer, frequency, recency, t, spend, expected, p_alive, amount in zip(
                *(c.tolist() for c in (*columns, purchases, alive, value)), strict=True
            )
        ),
    )
    return rows, {
        "bgnbd": {**bg.params, "log_likelihood": bg.log_likelihood},
        "gamma_gamma": {**gg.params, "log_likelihood": gg.log_likelihood},
        "customers": len(data),
        "repeat_customers": data.repeat_customers,
        "currency": data.currency,
        "total_clv_minor": int(value.sum()),
        "expected_purchases": float(purchases.sum()),
        "mean_probability_alive": float(alive.mean()),
        "deciles": deciles(value),
    }


def deciles(values: np.ndarray) -> list[dict[str, int]]:
    """Customers ranked by CLV, lowest first, in ten groups as SQL's ``NTILE(10)`` splits them:
    each group's customers, lowest, highest and total CLV (minor units)."""
    ordered = np.sort(np.asarray(values, dtype=np.int64))
    groups = np.array_split(ordered, 10) if len(ordered) >= 10 else [ordered]
    return [
        {
            "decile": number,
            "customers": len(group),
            "min_minor": int(group.min()),
            "max_minor": int(group.max()),
            "total_minor": int(group.sum()),
        }
        for number, group in enumerate(groups, start=1)
        if len(group)
    ]
