"""Customer lifetime value: BG/NBD for purchases, Gamma-Gamma for spend per purchase.

References (equation numbers are the papers'):

- [BG/NBD] Fader, Hardie & Lee (2005), "'Counting Your Customers' the Easy Way: An Alternative
  to the Pareto/NBD Model", Marketing Science 24(2). Likelihood (6), conditional expectation
  (10), probability of being alive (derived in its appendix; the reciprocal of the
  denominator of (10)).
- [GG] Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base
  Analysis", Journal of Marketing Research 42(4), with Fader & Hardie's note "The Gamma-Gamma
  Model of Monetary Value" (2013): the density of a customer's mean spend (eq. 3 of the note),
  its conditional expectation (eq. 5 of the note; eq. 4 of the paper).

**Calibration summary.** Orders that are not ``cancelled`` or ``returned`` and were placed up to
the end of the day ``until`` (UTC) count. All of a customer's orders on the same UTC calendar day
form one purchase, worth the sum of their totals, and the purchase happens at the start of that
day. The calibration period ends at the end of ``until`` (midnight after it), so, in days:

- ``frequency`` x = purchases - 1 (repeat purchases);
- ``recency`` t_x = last purchase day - first purchase day;
- ``T`` = (until - first purchase day) + 1: the ``until`` day itself counts, so a customer
  whose only purchase is on ``until`` has T = 1 day, and T > t_x always. (The ``lifetimes``
  library uses until - first, one day less.)

Times are divided by 7 for ``unit="week"`` (fractions of a week). ``monetary`` is the mean
value of the repeat purchases (the first purchase is left out, as in [GG]), in major units of
the currency as a float; 0 for customers without repeat purchases. Money leaving the module
(``*_minor``) is rounded back to integer minor units.

Customers without repeat purchases (and with a non-positive mean repeat spend) are left out of
the Gamma-Gamma fit, as in [GG]; their expected spend is the population mean p v / (q - 1).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, expit, gammaln, hyp2f1

from plugins.analytical.sql import EXCLUDED_STATUSES, day_number

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

UNITS = {"day": 1.0, "week": 7.0}
MIN_REPEAT_CUSTOMERS = 20
BGNBD_PARAMS = ("r", "alpha", "a", "b")
GG_PARAMS = ("p", "q", "v")
_LOG_BOUND = 15.0  # log-parameters stay within exp(+-15)


class NotEnoughData(ValueError):
    """Too few customers (with repeat purchases) to fit a model."""


class FitError(ValueError):
    """The maximum-likelihood search did not converge to finite parameters."""


class Fit(NamedTuple):
    """Fitted parameters by name and the maximised log-likelihood (unpacks as a pair)."""

    params: dict[str, float]
    log_likelihood: float


@dataclass(frozen=True)
class Summary:
    """Per-customer calibration summary (arrays aligned on ``customer_id``, ascending)."""

    customer_id: np.ndarray
    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    monetary: np.ndarray
    currency: str | None
    unit: str
    until: dt.date

    def __len__(self) -> int:
        return len(self.customer_id)

    @property
    def repeat_customers(self) -> int:
        """How many customers made at least one repeat purchase."""
        return int(np.count_nonzero(self.frequency))


# --- calibration summary -------------------------------------------------------------------


def summary(
    session: Session, until: dt.date, unit: str = "week", currency: str | None = None
) -> Summary:
    """The calibration summary of every customer with a counted order up to ``until``.

    One SQL query sums order totals by customer, UTC day and currency; the rest is numpy
    (see the module docstring for the definitions). Orders in several currencies need
    ``currency``, which keeps only that currency's orders.
    """
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}: use one of {', '.join(UNITS)}")
    customer, day, value, currencies = _purchase_days(session, until, currency)
    code = _single_currency(currencies, currency)
    order = np.lexsort((day, customer))
    customer, day, value = customer[order], day[order], value[order]
    starts = np.flatnonzero(np.r_[True, customer[1:] != customer[:-1]])[: len(customer)]
    ends = np.r_[starts[1:], len(customer)][: len(starts)] - 1
    frequency = ends - starts
    first, last = day[starts], day[ends]
    until_day = (until - dt.date(1970, 1, 1)).days
    repeat_value = (np.add.reduceat(value, starts) if len(starts) else value) - value[starts]
    monetary = np.divide(
        repeat_value, frequency, out=np.zeros(len(starts)), where=frequency > 0
    ) / 10 ** _minor_digits(code)
    scale = UNITS[unit]
    return Summary(
        customer_id=customer[starts],
        frequency=frequency,
        recency=(last - first) / scale,
        T=(until_day - first + 1) / scale,
        monetary=monetary,
        currency=code,
        unit=unit,
        until=until,
    )


def _purchase_days(
    session: Session, until: dt.date, currency: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Customer ids, day numbers (days since 1970-01-01, UTC), day totals and currencies."""
    from sqlalchemy import func, select

    from plugins.operational.models import Order

    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    inner = select(
        Order.customer_id.label("customer_id"),
        day_number(session.get_bind().dialect.name, Order.placed_at).label("day"),
        Order.currency.label("currency"),
        Order.total_minor.label("total_minor"),
    ).where(Order.status.not_in(EXCLUDED_STATUSES), Order.placed_at < end)
    if currency is not None:
        inner = inner.where(Order.currency == currency.upper())
    days = inner.subquery()
    rows = session.execute(
        select(
            days.c.customer_id, days.c.day, days.c.currency, func.sum(days.c.total_minor)
        ).group_by(days.c.customer_id, days.c.day, days.c.currency)
    ).all()
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0), []
    ids, day_numbers, codes, totals = zip(*rows, strict=True)
    return (
        np.fromiter(ids, dtype=np.int64, count=len(rows)),
        np.fromiter(day_numbers, dtype=np.int64, count=len(rows)),
        np.fromiter(totals, dtype=np.float64, count=len(rows)),
        sorted(set(codes)),
    )


def _single_currency(found: list[str], asked: str | None) -> str | None:
    """The currency of the summary; several without one asked for is an error."""
    if asked is not None:
        return asked.upper()
    if len(found) > 1:
        raise ValueError(f"orders are in several currencies ({', '.join(found)}); choose one")
    return found[0] if found else None


def _minor_digits(currency: str | None) -> int:
    """Decimal digits of the currency's minor unit (0 when unknown or none)."""
    if currency is None:
        return 0
    from core.money import minor_digits

    return minor_digits(currency)


# --- fitting -------------------------------------------------------------------------------


def bgnbd_log_likelihood(
    params: dict[str, float], frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood, [BG/NBD] eq. (6), computed in logs.

    L = B(a, b+x)/B(a, b) * Γ(r+x) α^r / (Γ(r) (α+T)^(r+x))
        + δ(x>0) B(a+1, b+x-1)/B(a, b) * Γ(r+x) α^r / (Γ(r) (α+t_x)^(r+x))
    """
    r, alpha, a, b = (params[k] for k in BGNBD_PARAMS)
    x = np.asarray(frequency, dtype=np.float64)
    t_x, T = np.asarray(recency, dtype=np.float64), np.asarray(T, dtype=np.float64)
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    still = betaln(a, b + x) - (r + x) * np.log(alpha + T)
    gone = np.full_like(still, -np.inf)
    repeat = x > 0
    xr = x[repeat]
    gone[repeat] = betaln(a + 1, b + xr - 1) - (r + xr) * np.log(alpha + t_x[repeat])
    return common + np.logaddexp(still, gone)


def gamma_gamma_log_likelihood(
    params: dict[str, float], frequency: np.ndarray, monetary: np.ndarray
) -> np.ndarray:
    """Per-customer log-density of the mean spend m_x of x purchases, [GG] note eq. (3).

    f(m_x | p, q, v, x) = Γ(px+q) / (Γ(px) Γ(q)) * v^q m_x^(px-1) x^(px) / (v + m_x x)^(px+q)
    """
    p, q, v = (params[k] for k in GG_PARAMS)
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary, dtype=np.float64)
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(v + m * x)
    )


def fit_bgnbd(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> Fit:
    """Maximum-likelihood BG/NBD parameters r, alpha, a, b ([BG/NBD] eq. 6 summed).

    Customers with identical (x, t_x, T) are merged with a weight, then the negative
    log-likelihood is minimised over the log-parameters with L-BFGS-B. Raises
    ``NotEnoughData`` under ``MIN_REPEAT_CUSTOMERS`` customers with repeat purchases.
    """
    x, t_x, T = (np.asarray(a, dtype=np.float64) for a in (frequency, recency, T))
    _require_repeaters(x, "BG/NBD")
    if np.any(t_x > T) or np.any(T <= 0) or np.any(t_x < 0) or np.any(x < 0):
        raise ValueError("BG/NBD data needs x >= 0 and 0 <= recency <= T, T > 0")
    rows, weight = np.unique(np.column_stack((x, t_x, T)), axis=0, return_counts=True)
    ux, ut, uT = rows.T

    def nll(params: dict[str, float]) -> float:
        return -float(weight @ bgnbd_log_likelihood(params, ux, ut, uT))

    start = {"r": 1.0, "alpha": max(float(T.mean()) / max(float(x.mean()), 0.1), 1e-3)}
    return _maximise(nll, BGNBD_PARAMS, {**start, "a": 1.0, "b": 1.0}, len(x))


def fit_gamma_gamma(frequency: np.ndarray, monetary: np.ndarray) -> Fit:
    """Maximum-likelihood Gamma-Gamma parameters p, q, v ([GG] note eq. 3 summed).

    Only customers with repeat purchases (x > 0) and a positive mean spend take part, as in
    [GG]. Raises ``NotEnoughData`` under ``MIN_REPEAT_CUSTOMERS`` such customers.
    """
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary, dtype=np.float64)
    keep = (x > 0) & (m > 0)
    _require_repeaters(x[keep], "Gamma-Gamma")
    x, m = x[keep], m[keep]

    def nll(params: dict[str, float]) -> float:
        return -float(gamma_gamma_log_likelihood(params, x, m).sum())

    return _maximise(nll, GG_PARAMS, {"p": 1.0, "q": 2.0, "v": float(m.mean())}, len(x))


def _require_repeaters(frequency: np.ndarray, model: str) -> None:
    """Refuse to fit on fewer than ``MIN_REPEAT_CUSTOMERS`` customers with repeat purchases."""
    repeaters = int(np.count_nonzero(frequency > 0))
    if repeaters < MIN_REPEAT_CUSTOMERS:
        raise NotEnoughData(
            f"too little data to fit {model}: {repeaters} customers with repeat purchases, "
            f"at least {MIN_REPEAT_CUSTOMERS} needed"
        )


def _maximise(
    nll: Callable[[dict[str, float]], float],
    names: tuple[str, ...],
    start: dict[str, float],
    n: int,
) -> Fit:
    """Minimise ``nll`` over log-parameters (L-BFGS-B, then Nelder-Mead if that fails)."""

    def objective(logs: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            value = nll(dict(zip(names, np.exp(logs), strict=True))) / n
        return value if np.isfinite(value) else 1e300

    x0 = np.log([start[k] for k in names])
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * len(names)
    result = minimize(objective, x0, method="L-BFGS-B", bounds=bounds)
    if not result.success or result.fun >= 1e300:
        result = minimize(
            objective,
            result.x,
            method="Nelder-Mead",
            bounds=bounds,
            options={"maxiter": 4000, "xatol": 1e-8, "fatol": 1e-12},
        )
    if not result.success or result.fun >= 1e300:
        raise FitError(f"the likelihood search did not converge: {result.message}")
    params = {k: float(v) for k, v in zip(names, np.exp(result.x), strict=True)}
    return Fit(params, -float(result.fun) * n)


# --- predictions ---------------------------------------------------------------------------


def probability_alive(
    params: dict[str, float], frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """P(still active at T | x, t_x, T) under BG/NBD ([BG/NBD] appendix, eq. (10)'s denominator).

    1 / (1 + δ(x>0) a/(b+x-1) ((α+T)/(α+t_x))^(r+x)); exactly 1 when x = 0.
    """
    r, alpha, a, b = (params[k] for k in BGNBD_PARAMS)
    x = np.asarray(frequency, dtype=np.float64)
    t_x, T = np.asarray(recency, dtype=np.float64), np.asarray(T, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_odds = (
            np.log(a)
            - np.log(np.where(x > 0, b + x - 1, 1.0))
            + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        )
    return np.where(x > 0, expit(-log_odds), 1.0)


def expected_purchases(
    params: dict[str, float],
    t: float,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
) -> np.ndarray:
    """Expected purchases in the next ``t`` units, E[Y(t) | x, t_x, T], [BG/NBD] eq. (10).

    (a+b+x-1)/(a-1) * [1 - ((α+T)/(α+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(α+T+t))]
    times P(alive) (the reciprocal of eq. (10)'s denominator).
    """
    r, alpha, a, b = (params[k] for k in BGNBD_PARAMS)
    x = np.asarray(frequency, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    if t <= 0:
        return np.zeros_like(x)
    z = t / (alpha + T + t)
    tail = np.exp((r + x) * np.log1p(-z)) * hyp2f1(r + x, b + x, a + b + x - 1, z)
    alive = probability_alive(params, frequency, recency, T)
    return (a + b + x - 1) / (a - 1) * (1 - tail) * alive


def expected_spend(
    gg_params: dict[str, float], frequency: np.ndarray, monetary: np.ndarray
) -> np.ndarray:
    """Expected spend per purchase, E(M | p, q, v, m_x, x), [GG] note eq. (5) / paper eq. (4).

    (q-1)/(px+q-1) * p v/(q-1) + px/(px+q-1) * m_x: a weighted mean of the population mean
    p v/(q-1) and the customer's observed mean m_x; the population mean when x = 0.
    Needs q > 1 (otherwise the population mean is infinite).
    """
    p, q, v = (gg_params[k] for k in GG_PARAMS)
    if q <= 1:
        raise ValueError(f"Gamma-Gamma q = {q:.4g} <= 1: the mean spend is not finite")
    x = np.asarray(frequency, dtype=np.float64)
    m = np.where(x > 0, np.asarray(monetary, dtype=np.float64), 0.0)
    return p * (v + m * x) / (p * x + q - 1)


def clv(
    bg_params: dict[str, float],
    gg_params: dict[str, float],
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    monetary: np.ndarray,
    horizon: int,
    discount_rate: float = 0.0,
) -> np.ndarray:
    """Expected revenue over the next ``horizon`` units, discounted at ``discount_rate`` a unit.

    CLV = sum over k = 1..horizon of (E[Y(k)] - E[Y(k-1)]) * E(M) / (1 + d)^k, with E[Y] from
    ``expected_purchases`` ([BG/NBD] eq. 10) and E(M) from ``expected_spend`` ([GG] eq. 4).
    Approximations: purchases during step k are discounted as if made at its end (a step is
    one unit, so use weeks for long horizons); spend per purchase is independent of the
    purchase process, as [GG] assumes; this is revenue, not margin. With d = 0 it is exactly
    E[Y(horizon)] * E(M). Returned in major units as floats.
    """
    if horizon < 0:
        raise ValueError("the horizon must not be negative")
    if discount_rate < 0:
        raise ValueError("the discount rate must not be negative")
    spend = expected_spend(gg_params, frequency, monetary)
    if discount_rate == 0:
        return expected_purchases(bg_params, horizon, frequency, recency, T) * spend
    total = np.zeros(len(np.atleast_1d(frequency)))
    before = np.zeros_like(total)
    for k in range(1, horizon + 1):
        after = expected_purchases(bg_params, k, frequency, recency, T)
        total += (after - before) / (1 + discount_rate) ** k
        before = after
    return total * spend


def to_minor(amounts: np.ndarray, currency: str | None) -> np.ndarray:
    """Major-unit floats to integer minor units of ``currency`` (rounded half to even)."""
    return np.rint(np.asarray(amounts) * 10 ** _minor_digits(currency)).astype(np.int64)


# --- simulation (tests and benchmarks) -----------------------------------------------------


def simulate_bgnbd(
    params: dict[str, float], T: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw (frequency, recency) for customers observed ``T`` units after their first purchase.

    The BG/NBD story ([BG/NBD] section 3): λ ~ Gamma(r, α), p ~ Beta(a, b); while active,
    purchases follow a Poisson process of rate λ; right after each repeat purchase the customer
    becomes inactive with probability p (not after the first: the likelihood (6) has every
    x = 0 customer alive). With N ~ Poisson(λ T) events of the process in (0, T] and the
    customer's last repeat purchase J ~ Geometric(p), x = min(N, J), and the x-th of N uniform
    event times is T * Beta(x, N - x + 1).
    """
    r, alpha, a, b = (params[k] for k in BGNBD_PARAMS)
    T = np.asarray(T, dtype=np.float64)
    rate = rng.gamma(r, 1 / alpha, size=T.shape)
    dropout = rng.beta(a, b, size=T.shape)
    events = rng.poisson(rate * T)
    frequency = np.minimum(events, rng.geometric(dropout))
    repeat = frequency > 0
    share = rng.beta(np.where(repeat, frequency, 1), np.where(repeat, events - frequency + 1, 1))
    return frequency, np.where(repeat, T * share, 0.0)


def simulate_gamma_gamma(
    params: dict[str, float], frequency: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Draw each customer's mean spend over ``frequency`` purchases ([GG] note section 2).

    ν ~ Gamma(q, v) per customer, each spend ~ Gamma(p, ν), so the mean of x spends is
    Gamma(p x, ν x). Customers with x = 0 get 0.
    """
    p, q, v = (params[k] for k in GG_PARAMS)
    x = np.asarray(frequency, dtype=np.float64)
    nu = rng.gamma(q, 1 / v, size=x.shape)
    repeat = x > 0
    return np.where(
        repeat, rng.gamma(np.where(repeat, p * x, 1.0), 1 / (nu * np.maximum(x, 1))), 0.0
    )
