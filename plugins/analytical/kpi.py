"""KPI series for the dashboard, computed in SQL with ``GROUP BY`` month and stored in
``Run.summary`` (kind ``"kpi"``).

As of date D the series cover the 24 complete calendar months before D's month plus D's own
month up to the end of D (UTC), flagged as partial. Orders placed up to the end of D count,
cancelled and returned ones left out. Months are keyed ``year * 12 + month - 1`` on both
SQLite and PostgreSQL (UTC calendar months).

- **Acquisition**: new customers per month (customers whose first order, in all history, falls
  in the month) and customer records created per month (``Customer.created_at``).
- **Penetration**: at each month end (and at D for the partial month), the share of customers
  with an order so far who bought in two or more product categories so far (order lines whose
  product has a category).
- **Retention and churn**: the base of month m is the customers who bought in the three months
  before m (m-3, m-2, m-1); the retention rate of m is the share of that base who bought again
  in m; the churn rate is one minus it. Empty base: no rate.
- **Revenue and margin** (default currency only; orders in other currencies are counted and
  left out): revenue is the order totals; margin is revenue minus the sum of line quantity times
  product cost over lines whose product has a cost in the default currency; the lines without
  one are counted (the margin is overstated by their cost).
- **Satisfaction**: answered operational surveys (1-5 rating) per month of the answer: response
  count, average rating, and CSAT = share of ratings 4 or 5.
- **Segment sizes**: from the RFM runs as of dates within the window, the latest run of each
  month: ``summary["segments"]`` when stored, else a count of its rows per segment.

Every series can be restricted to the customers matching a condition (``customers``, from
:func:`core.records.customer_condition`): :func:`compute` then gives the figures of a user whose
record rules hide some customers, live, with the same queries as the stored snapshot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    func,
    literal_column,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session

from plugins.analytical import snapshots
from plugins.analytical.models import RfmScore, Run
from plugins.analytical.rfm import SEGMENTS
from plugins.analytical.sql import EXCLUDED_STATUSES, key_of, month_key, month_label, month_start

if TYPE_CHECKING:
    from core.runtime import Crm

#: Complete months before the as-of month that the series cover.
MONTHS = 24
#: Months before month m whose buyers form the retention base of m.
RETENTION_BASE_MONTHS = 3


@dataclass(frozen=True)
class Window:
    """The months of the series: ``first`` to ``last`` (the partial as-of month), by key."""

    first: int
    last: int
    end: dt.datetime

    @classmethod
    def as_of(cls, day: dt.date, months: int = MONTHS) -> Window:
        """The window of ``months`` complete months before ``day``'s month, and that month."""
        last = key_of(day)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        return cls(last - months, last, end)

    @property
    def keys(self) -> range:
        """Every month key of the window, oldest first."""
        return range(self.first, self.last + 1)

    @property
    def start(self) -> dt.datetime:
        """The first instant of the window."""
        return month_start(self.first)

    def series(self, counts: dict[int, Any], default: Any = 0) -> list[Any]:
        """``counts`` (by month key) as a list over the window."""
        return [counts.get(key, default) for key in self.keys]


def of_customers(column: Any, customers: ColumnElement[bool] | None) -> list[ColumnElement[bool]]:
    """Conditions keeping the rows whose customer (``column``) matches ``customers`` (a
    condition on ``core_customer``); none when ``customers`` is None (every customer)."""
    from core.customers.models import Customer

    if customers is None:
        return []
    return [column.in_(select(Customer.id).where(customers))]


def _counted(
    window: Window, customers: ColumnElement[bool] | None = None
) -> list[ColumnElement[bool]]:
    """Conditions of the orders that count: placed up to D, not cancelled or returned, of the
    ``customers``."""
    from plugins.operational.models import Order

    return [
        Order.placed_at < window.end,
        Order.status.not_in(EXCLUDED_STATUSES),
        *of_customers(Order.customer_id, customers),
    ]


def _by_month(session: Session, query: Any) -> dict[int, Any]:
    """``{month key: value}`` from rows of (key, value)."""
    return {int(key): value for key, value in session.execute(query)}


def _cumulative(counts: dict[int, int], window: Window) -> list[int]:
    """For each month of the window, the sum of ``counts`` up to and including it."""
    result, total = [], sum(n for key, n in counts.items() if key < window.first)
    for key in window.keys:
        total += counts.get(key, 0)
        result.append(total)
    return result


def _ratio(part: int | float, whole: int | float) -> float | None:
    return part / whole if whole else None


def _first_order_months(
    session: Session, dialect: str, window: Window, customers: ColumnElement[bool] | None = None
) -> dict[int, int]:
    """How many customers placed their first counted order in each month (all history)."""
    from plugins.operational.models import Order

    first = (
        select(Order.customer_id, func.min(Order.placed_at).label("first_at"))
        .where(*_counted(window, customers))
        .group_by(Order.customer_id)
        .subquery()
    )
    months = select(month_key(dialect, first.c.first_at).label("m")).subquery()
    return _by_month(session, select(months.c.m, func.count()).group_by(months.c.m))


def acquisition(
    session: Session, dialect: str, window: Window, customers: ColumnElement[bool] | None = None
) -> dict[str, Any]:
    """New customers (first order) and new customer records per month."""
    from core.customers.models import Customer

    records = (
        select(month_key(dialect, Customer.created_at).label("m"))
        .where(Customer.created_at >= window.start, Customer.created_at < window.end)
        .where(*([] if customers is None else [customers]))
        .subquery()
    )
    created = _by_month(session, select(records.c.m, func.count()).group_by(records.c.m))
    firsts = _first_order_months(session, dialect, window, customers)
    return {"new_customers": window.series(firsts), "new_records": window.series(created)}


def _second_category_months(
    session: Session, dialect: str, window: Window, customers: ColumnElement[bool] | None = None
) -> dict[int, int]:
    """How many customers reached their second product category in each month."""
    from plugins.operational.models import Order, OrderLine, Product

    bought = (
        select(
            Order.customer_id.label("customer_id"),
            Product.category.label("category"),
            month_key(dialect, Order.placed_at).label("m"),
        )
        .join(OrderLine, OrderLine.order_id == Order.id)
        .join(Product, Product.id == OrderLine.product_id)
        .where(*_counted(window, customers), Product.category.is_not(None))
        .subquery()
    )
    firsts = (
        select(bought.c.customer_id, func.min(bought.c.m).label("m"))
        .group_by(bought.c.customer_id, bought.c.category)
        .subquery()
    )
    ranked = select(
        firsts.c.m,
        func.row_number().over(partition_by=firsts.c.customer_id, order_by=firsts.c.m).label("n"),
    ).subquery()
    return _by_month(
        session, select(ranked.c.m, func.count()).where(ranked.c.n == 2).group_by(ranked.c.m)
    )


def penetration(
    session: Session, dialect: str, window: Window, customers: ColumnElement[bool] | None = None
) -> dict[str, Any]:
    """At each month end, customers so far and those who bought in 2+ categories so far."""
    buyers = _cumulative(_first_order_months(session, dialect, window, customers), window)
    multi = _cumulative(_second_category_months(session, dialect, window, customers), window)
    return {
        "customers": buyers,
        "multi_category": multi,
        "share": [_ratio(m, c) for m, c in zip(multi, buyers, strict=True)],
    }


def _customer_months(
    dialect: str, window: Window, customers: ColumnElement[bool] | None = None
) -> Any:
    """Distinct (customer, month) pairs of counted orders from the first base month on."""
    from plugins.operational.models import Order

    return (
        select(
            Order.customer_id.label("customer_id"),
            month_key(dialect, Order.placed_at).label("m"),
        )
        .where(*_counted(window, customers), Order.placed_at >= month_start(window.first - 3))
        .distinct()
        .subquery()
    )


def retention(
    session: Session, dialect: str, window: Window, customers: ColumnElement[bool] | None = None
) -> dict[str, Any]:
    """Per month m: the base (bought in m-3..m-1), those of it who bought in m, the rates."""
    offsets = union_all(
        *(select(literal_column(str(k)).label("k")) for k in range(1, RETENTION_BASE_MONTHS + 1))
    ).subquery()
    bought = _customer_months(dialect, window, customers)
    base = (
        select(bought.c.customer_id, (bought.c.m + offsets.c.k).label("target"))
        .select_from(bought)
        .join(offsets, true())
        .distinct()
        .subquery()
    )
    again = _customer_months(dialect, window, customers)
    bases = _by_month(session, select(base.c.target, func.count()).group_by(base.c.target))
    kept = _by_month(
        session,
        select(base.c.target, func.count())
        .join(again, and_(again.c.customer_id == base.c.customer_id, again.c.m == base.c.target))
        .group_by(base.c.target),
    )
    base_series, kept_series = window.series(bases), window.series(kept)
    rates = [_ratio(k, b) for k, b in zip(kept_series, base_series, strict=True)]
    return {
        "base": base_series,
        "retained": kept_series,
        "rate": rates,
        "churn": [None if r is None else 1 - r for r in rates],
    }


def revenue(
    session: Session,
    dialect: str,
    window: Window,
    currency: str,
    customers: ColumnElement[bool] | None = None,
) -> dict[str, Any]:
    """Revenue, cost of goods, margin, order and cost-less line counts per month."""
    from plugins.operational.models import Order, OrderLine, Product

    in_currency = [
        *_counted(window, customers),
        Order.placed_at >= window.start,
        Order.currency == currency,
    ]
    orders = (
        select(month_key(dialect, Order.placed_at).label("m"), Order.total_minor.label("total"))
        .where(*in_currency)
        .subquery()
    )
    totals = {
        int(m): (int(n), int(total or 0))
        for m, n, total in session.execute(
            select(orders.c.m, func.count(), func.sum(orders.c.total)).group_by(orders.c.m)
        )
    }
    known = and_(Product.cost_minor.is_not(None), Product.currency == currency)
    lines = (
        select(
            month_key(dialect, Order.placed_at).label("m"),
            case((known, OrderLine.quantity * Product.cost_minor), else_=0).label("cost"),
            case((known, 0), else_=1).label("missing"),
        )
        .select_from(OrderLine)
        .join(Order, Order.id == OrderLine.order_id)
        .outerjoin(Product, Product.id == OrderLine.product_id)
        .where(*in_currency)
        .subquery()
    )
    costs = {
        int(m): (int(cost or 0), int(missing or 0))
        for m, cost, missing in session.execute(
            select(lines.c.m, func.sum(lines.c.cost), func.sum(lines.c.missing)).group_by(lines.c.m)
        )
    }
    revenue_series = [totals.get(k, (0, 0))[1] for k in window.keys]
    cogs = [costs.get(k, (0, 0))[0] for k in window.keys]
    return {
        "orders": [totals.get(k, (0, 0))[0] for k in window.keys],
        "revenue_minor": revenue_series,
        "cogs_minor": cogs,
        "margin_minor": [r - c for r, c in zip(revenue_series, cogs, strict=True)],
        "lines_without_cost": [costs.get(k, (0, 0))[1] for k in window.keys],
    }


def other_currencies(
    session: Session, window: Window, currency: str, customers: ColumnElement[bool] | None = None
) -> dict[str, int]:
    """Counted orders of the window in currencies other than ``currency``, per currency."""
    from plugins.operational.models import Order

    query = (
        select(Order.currency, func.count())
        .where(
            *_counted(window, customers),
            Order.placed_at >= window.start,
            Order.currency != currency,
        )
        .group_by(Order.currency)
        .order_by(Order.currency)
    )
    return {code: int(n) for code, n in session.execute(query)}


def satisfaction(
    session: Session, dialect: str, window: Window, customers: ColumnElement[bool] | None = None
) -> dict[str, Any]:
    """Answered surveys per month of the answer: responses, average rating, CSAT share."""
    from plugins.operational.models import Survey

    answers = (
        select(month_key(dialect, Survey.answered_at).label("m"), Survey.rating.label("rating"))
        .where(
            Survey.rating.is_not(None),
            Survey.answered_at >= window.start,
            Survey.answered_at < window.end,
            *of_customers(Survey.customer_id, customers),
        )
        .subquery()
    )
    query = select(
        answers.c.m,
        func.count(),
        func.sum(answers.c.rating),
        func.sum(case((answers.c.rating >= 4, 1), else_=0)),
    ).group_by(answers.c.m)
    found = {
        int(m): (int(n), int(total), int(happy)) for m, n, total, happy in session.execute(query)
    }
    rows = [found.get(k, (0, 0, 0)) for k in window.keys]
    return {
        "responses": [n for n, _, _ in rows],
        "average": [_ratio(total, n) for n, total, _ in rows],
        "csat": [_ratio(happy, n) for n, _, happy in rows],
    }


def _segment_counts(
    session: Session, run: Run, customers: ColumnElement[bool] | None = None
) -> dict[str, int]:
    """A RFM run's customers per segment: its summary, else a count of its rows (of the
    ``customers`` only, when given)."""
    stored = (run.summary or {}).get("segments")
    if customers is None and isinstance(stored, dict):
        return {str(k): int(v) for k, v in stored.items()}
    query = (
        select(RfmScore.segment, func.count())
        .where(RfmScore.run_id == run.id, *of_customers(RfmScore.customer_id, customers))
        .group_by(RfmScore.segment)
    )
    return {segment: int(n) for segment, n in session.execute(query)}


def segment_sizes(
    session: Session, window: Window, customers: ColumnElement[bool] | None = None
) -> dict[str, Any]:
    """Customers per RFM segment at the latest RFM run of each month of the window."""
    runs = session.scalars(
        select(Run)
        .where(
            Run.kind == "rfm",
            Run.as_of >= window.start.date(),
            Run.as_of < window.end.date(),
        )
        .order_by(Run.as_of, Run.id)
    )
    latest: dict[int, Run] = {}
    for run in runs:
        latest[key_of(run.as_of)] = run
    picked = [latest[key] for key in sorted(latest)]
    counts = [_segment_counts(session, run, customers) for run in picked]
    names = [name for name, *_ in SEGMENTS]
    names += sorted({n for c in counts for n in c} - set(names))
    return {
        "dates": [run.as_of.isoformat() for run in picked],
        "counts": {name: [c.get(name, 0) for c in counts] for name in names},
    }


#: The KPI sections of :func:`compute`.
SECTIONS = (
    "acquisition",
    "penetration",
    "retention",
    "revenue",
    "other_currencies",
    "satisfaction",
    "segments",
)


def compute(
    session: Session,
    as_of: dt.date,
    currency: str,
    customers: ColumnElement[bool] | None = None,
    only: Iterable[str] = SECTIONS,
) -> dict[str, Any]:
    """Every KPI series as of ``as_of``, money in ``currency`` (the summary of a KPI run); over
    the customers matching ``customers`` only when given, and the ``only`` sections."""
    dialect = session.get_bind().dialect.name
    window = Window.as_of(as_of)
    currency = currency.upper()
    sections = {
        "acquisition": lambda: acquisition(session, dialect, window, customers),
        "penetration": lambda: penetration(session, dialect, window, customers),
        "retention": lambda: retention(session, dialect, window, customers),
        "revenue": lambda: revenue(session, dialect, window, currency, customers),
        "other_currencies": lambda: other_currencies(session, window, currency, customers),
        "satisfaction": lambda: satisfaction(session, dialect, window, customers),
        "segments": lambda: segment_sizes(session, window, customers),
    }
    return {
        "as_of": as_of.isoformat(),
        "currency": currency,
        "months": [month_label(key) for key in window.keys],
        "partial_month": month_label(window.last),
        **{name: sections[name]() for name in only},
    }


def refresh(session: Session, as_of: dt.date, currency: str) -> Run:
    """Compute the KPIs as of ``as_of`` and store them as the ``kpi`` run of that date."""
    summary = compute(session, as_of, currency)
    run = snapshots.replace_run(
        session,
        "kpi",
        as_of,
        {"months": MONTHS, "currency": summary["currency"], "retention": "base m-3..m-1"},
    )
    run.summary = summary
    run.rows = len(summary["months"])
    return run


def refresh_step(crm: Crm, session: Session, as_of: dt.date) -> Run:
    """The KPI step of ``crm analytics refresh``."""
    return refresh(session, as_of, crm.settings.default_currency)


def latest_run(session: Session) -> Run | None:
    """The newest KPI snapshot."""
    return snapshots.latest_run(session, "kpi")


def summary_for(
    crm: Crm, user: Any, session: Session, run: Run | None, only: Iterable[str] = SECTIONS
) -> tuple[dict[str, Any] | None, bool]:
    """The figures of KPI ``run`` that ``user`` may see, and whether they are restricted.

    A user whose record rules show every customer reads the stored summary; any other gets the
    ``only`` sections computed live as of the run's date over the customers they may see (a
    team's manager must not read the company's revenue). ``None`` without a run or summary.
    """
    from core.records import customer_condition

    if run is None or not run.summary:
        return None, False
    condition = customer_condition(crm, user)
    if condition is None:
        return run.summary, False
    return compute(session, run.as_of, run.summary["currency"], condition, only), True


def last(values: Iterable[Any], offset: int = 1) -> Any:
    """The ``offset``-th value from the end of a series (1: the partial month), or None."""
    items = list(values)
    return items[-offset] if len(items) >= offset else None
