"""Customer behaviour: cohort retention, purchase rhythm and churn risk, stored as a snapshot.

As of date D, orders placed up to the end of D (UTC) count, except ``cancelled`` and
``returned`` ones. All of a customer's orders on the same UTC calendar day form one purchase.

- **Cohort retention.** A customer's cohort is the month of their first purchase. The cell of
  cohort c at offset k is the share of c's customers who made a purchase in month c + k; the
  cohort size is its customers (offset 0 is always 100 %). Months are keyed as in
  ``plugins.analytical.sql`` on both databases. Offsets run 0..23 at most; cells after D's month are
  ``None`` (not observed yet; D's own month is observed only up to D). The last 24 cohorts are
  kept.
- **Inter-purchase time.** A customer's mean gap is the mean number of days between
  consecutive purchase days, i.e. (last day - first day) / (purchase days - 1); ``None`` with a
  single purchase day. The summary holds a histogram of the mean gaps and their median.
- **Churn risk** (one row per customer with an order). When the latest ``clv`` snapshot has the
  customer's probability alive p: high when p < ``churn_high_alive_percent`` %, medium when p <
  ``churn_medium_alive_percent`` %, else low. Otherwise, with a mean gap g and d days since the
  last purchase: high when d > g x ``churn_overdue_percent`` / 100, medium when d > g, else low.
  With a single purchase day: high when d > 365, medium when d > 180, else low. The comparisons
  are exact (integer arithmetic).

``churn_reason`` is a short code with numbers (``p_alive=0.23``, ``overdue=120/30.5``,
``single=200``); :func:`reason_message` turns it into a translatable sentence.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, literal_column, select
from sqlalchemy.orm import Session

from core.i18n import N_, Msg
from plugins.analytical import snapshots
from plugins.analytical.models import Behaviour, ClvScore, Run
from plugins.analytical.snapshots import insert_rows, replace_run
from plugins.analytical.sql import (
    EPOCH,
    EXCLUDED_STATUSES,
    day_number,
    epoch_day,
    key_of,
    month_key,
    month_label,
)

if TYPE_CHECKING:
    from core.runtime import Crm

KIND = "behaviour"
MAX_COHORTS = 24
MAX_OFFSETS = 24
#: Single purchase day: (risk, more days since it than this).
SINGLE_PURCHASE_DAYS = (("high", 365), ("medium", 180))
#: Histogram buckets of mean gaps: (label, upper bound in days, inclusive; None = no bound).
GAP_BUCKETS = (
    ("0–7", 7),
    ("8–14", 14),
    ("15–30", 30),
    ("31–60", 60),
    ("61–90", 90),
    ("91–180", 180),
    ("181–365", 365),
    (">365", None),
)
RISKS = ("high", "medium", "low")
RISK_LABELS = {"high": N_("High"), "medium": N_("Medium"), "low": N_("Low")}


@dataclass(frozen=True)
class ChurnRules:
    """The churn thresholds, in percent (module settings ``churn_*``)."""

    overdue_percent: int = 200
    high_alive_percent: int = 30
    medium_alive_percent: int = 60

    @classmethod
    def from_settings(cls, values: dict[str, Any]) -> ChurnRules:
        """The rules from the module's settings."""
        return cls(
            overdue_percent=int(values["churn_overdue_percent"]),
            high_alive_percent=int(values["churn_high_alive_percent"]),
            medium_alive_percent=int(values["churn_medium_alive_percent"]),
        )


# --- SQL -----------------------------------------------------------------------------------


def _purchases(dialect: str, as_of: dt.date) -> Any:
    """Subquery: one row per customer and purchase day with its month and order count."""
    from plugins.operational.models import Order

    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    orders = (
        select(
            Order.customer_id.label("customer_id"),
            day_number(dialect, Order.placed_at).label("day"),
            month_key(dialect, Order.placed_at).label("month"),
        )
        .where(Order.placed_at < end, Order.status.not_in(EXCLUDED_STATUSES))
        .subquery("counted_orders")
    )
    return (
        select(orders.c.customer_id, orders.c.day, orders.c.month, func.count().label("orders"))
        .group_by(orders.c.customer_id, orders.c.day, orders.c.month)
        .subquery("purchases")
    )


def cohort_cells(session: Session, as_of: dt.date) -> list[tuple[int, int, int]]:
    """``(cohort month key, offset, customers)`` for offsets below :data:`MAX_OFFSETS`."""
    purchases = _purchases(session.get_bind().dialect.name, as_of)
    months = (
        select(purchases.c.customer_id, purchases.c.month)
        .group_by(purchases.c.customer_id, purchases.c.month)
        .subquery("months")
    )
    firsts = (
        select(months.c.customer_id, func.min(months.c.month).label("cohort"))
        .group_by(months.c.customer_id)
        .subquery("firsts")
    )
    offset = months.c.month - firsts.c.cohort
    query = (
        select(firsts.c.cohort, offset, func.count())
        .join_from(months, firsts, months.c.customer_id == firsts.c.customer_id)
        .where(offset < MAX_OFFSETS)
        .group_by(firsts.c.cohort, offset)
    )
    return [(int(c), int(k), int(n)) for c, k, n in session.execute(query)]


def customer_rhythm(session: Session, as_of: dt.date, clv_run_id: int | None) -> list[Any]:
    """Per customer: orders, purchase days, first and last day numbers, probability alive."""
    purchases = _purchases(session.get_bind().dialect.name, as_of)
    per_customer = (
        select(
            purchases.c.customer_id.label("customer_id"),
            func.sum(purchases.c.orders).label("orders"),
            func.count().label("days"),
            func.min(purchases.c.day).label("first"),
            func.max(purchases.c.day).label("last"),
        )
        .group_by(purchases.c.customer_id)
        .subquery("per_customer")
    )
    if clv_run_id is None:
        alive: Any = literal_column("NULL")
        source: Any = per_customer
    else:
        alive = ClvScore.probability_alive
        source = per_customer.outerjoin(
            ClvScore,
            and_(
                ClvScore.customer_id == per_customer.c.customer_id,
                ClvScore.run_id == clv_run_id,
            ),
        )
    query = (
        select(*per_customer.c, alive.label("probability_alive"))
        .select_from(source)
        .order_by(per_customer.c.customer_id)
    )
    return list(session.execute(query))


# --- rules and summaries -------------------------------------------------------------------


def churn_risk(
    rules: ChurnRules, days_since: int, span_days: int, gaps: int, probability_alive: float | None
) -> tuple[str, str]:
    """``(risk, reason)`` of a customer (see the module docstring for the rules).

    ``span_days`` is last minus first purchase day and ``gaps`` the purchase days minus one,
    so the mean gap is ``span_days / gaps`` (when ``gaps`` > 0).
    """
    if probability_alive is not None:
        reason = f"p_alive={probability_alive:.2f}"
        if probability_alive < rules.high_alive_percent / 100:
            return "high", reason
        return ("medium" if probability_alive < rules.medium_alive_percent / 100 else "low"), reason
    if gaps > 0:
        reason = f"overdue={days_since}/{span_days / gaps:.1f}"
        if days_since * gaps * 100 > span_days * rules.overdue_percent:
            return "high", reason
        return ("medium" if days_since * gaps > span_days else "low"), reason
    reason = f"single={days_since}"
    for risk, limit in SINGLE_PURCHASE_DAYS:
        if days_since > limit:
            return risk, reason
    return "low", reason


def reason_message(reason: str | None) -> Msg | None:
    """The sentence explaining a stored ``churn_reason`` (translated where shown)."""
    if not reason or "=" not in reason:
        return None
    code, _, value = reason.partition("=")
    try:
        if code == "p_alive":
            return Msg(
                N_("The lifetime value model gives a %(percent)s %% chance of still being active."),
                percent=round(float(value) * 100),
            )
        if code == "overdue":
            days, gap = value.split("/")
            return Msg(
                N_("%(days)s days since the last purchase; usually buys every %(gap)s days."),
                days=int(days),
                gap=gap,
            )
        if code == "single":
            return Msg(
                N_("A single purchase day, %(days)s days ago (no rhythm to compare with)."),
                days=int(value),
            )
    except ValueError:
        return None
    return None


def gap_histogram(gaps: list[float]) -> list[dict[str, Any]]:
    """How many mean gaps fall in each bucket of :data:`GAP_BUCKETS`."""
    counts = Counter()
    for gap in gaps:
        for label, upper in GAP_BUCKETS:
            if upper is None or gap <= upper:
                counts[label] += 1
                break
    return [{"label": label, "customers": counts[label]} for label, _ in GAP_BUCKETS]


def cohort_matrix(cells: list[tuple[int, int, int]], as_of: dt.date) -> dict[str, Any]:
    """The last :data:`MAX_COHORTS` cohorts: sizes, counts and shares per month offset."""
    current = key_of(as_of)
    by_cohort: dict[int, dict[int, int]] = {}
    for cohort, offset, customers in cells:
        by_cohort.setdefault(cohort, {})[offset] = customers
    kept = sorted(by_cohort)[-MAX_COHORTS:]
    columns = min(MAX_OFFSETS, current - kept[0] + 1) if kept else 0
    rows = []
    for cohort in kept:
        counts = by_cohort[cohort]
        size = counts.get(0, 0)
        observed = range(min(columns, current - cohort + 1))
        count_row = [counts.get(k, 0) for k in observed]
        rows.append(
            {
                "month": month_label(cohort),
                "size": size,
                "counts": count_row + [None] * (columns - len(count_row)),
                "shares": [round(n / size, 4) if size else 0.0 for n in count_row]
                + [None] * (columns - len(count_row)),
            }
        )
    return {"columns": columns, "cohorts": rows}


# --- the snapshot --------------------------------------------------------------------------


def _date(day_number_: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(day_number_))


def behaviour_rows(
    session: Session, as_of: dt.date, rules: ChurnRules, clv_run_id: int | None
) -> list[dict[str, Any]]:
    """One :class:`Behaviour` row (without ``run_id``) per customer with a counted order."""
    as_of_day = epoch_day(as_of)
    rows = []
    for row in customer_rhythm(session, as_of, clv_run_id):
        first, last, days = int(row.first), int(row.last), int(row.days)
        alive = None if row.probability_alive is None else float(row.probability_alive)
        days_since = as_of_day - last
        risk, reason = churn_risk(rules, days_since, last - first, days - 1, alive)
        rows.append(
            {
                "customer_id": row.customer_id,
                "orders": int(row.orders),
                "first_order": _date(first),
                "last_order": _date(last),
                "mean_gap_days": (last - first) / (days - 1) if days > 1 else None,
                "days_since_last": days_since,
                "probability_alive": alive,
                "churn_risk": risk,
                "churn_reason": reason,
            }
        )
    return rows


def summarise(
    rows: list[dict[str, Any]], cells: list[tuple[int, int, int]], as_of: dt.date
) -> dict[str, Any]:
    """The run's summary: cohort matrix, gap histogram and median, risk counts by basis."""
    gaps = [r["mean_gap_days"] for r in rows if r["mean_gap_days"] is not None]
    risks = Counter(r["churn_risk"] for r in rows)
    basis = Counter(r["churn_reason"].partition("=")[0] for r in rows)
    return {
        "cohorts": cohort_matrix(cells, as_of),
        "gaps": {
            "histogram": gap_histogram(gaps),
            "median": round(statistics.median(gaps), 1) if gaps else None,
            "customers": len(gaps),
            "single": len(rows) - len(gaps),
        },
        "risk": {risk: risks.get(risk, 0) for risk in RISKS},
        "basis": {code: basis.get(code, 0) for code in ("p_alive", "overdue", "single")},
    }


def refresh(session: Session, as_of: dt.date, rules: ChurnRules) -> Run:
    """Compute behaviour as of ``as_of`` and store it (replacing a run of the same date)."""
    clv_run = snapshots.latest_run(session, "clv")
    clv_run_id = clv_run.id if clv_run is not None else None
    rows = behaviour_rows(session, as_of, rules, clv_run_id)
    cells = cohort_cells(session, as_of)
    run = replace_run(
        session,
        KIND,
        as_of,
        {
            "churn_overdue_percent": rules.overdue_percent,
            "churn_high_alive_percent": rules.high_alive_percent,
            "churn_medium_alive_percent": rules.medium_alive_percent,
            "clv_run_id": clv_run_id,
            "clv_as_of": clv_run.as_of.isoformat() if clv_run is not None else None,
        },
    )
    run.rows = insert_rows(
        session, Behaviour.__table__, ({"run_id": run.id, **row} for row in rows)
    )
    run.summary = summarise(rows, cells, as_of)
    return run


def refresh_step(crm: Crm, session: Session, as_of: dt.date) -> Run:
    """The behaviour step of ``crm analytics refresh``."""
    from plugins.analytical.config import settings

    return refresh(session, as_of, ChurnRules.from_settings(settings(crm)))


def latest_run(session: Session) -> Run | None:
    """The newest behaviour snapshot."""
    return snapshots.latest_run(session, KIND)
