"""RFM segmentation, computed in SQL so it scales on PostgreSQL, stored as a snapshot.

As of date D (orders placed up to the end of D, UTC; cancelled and returned orders left out):
recency = days from the customer's last order to D; frequency = number of orders; monetary =
total net amount in minor units. Each metric is scored 1-5 by ``NTILE(5)`` over the customers
ordered by the metric (ascending frequency and monetary; descending recency days, so the most
recent get 5), ties broken by customer id ascending: the first ``n mod 5`` groups get one extra
customer. The segment comes from (R, F), as :data:`SEGMENTS` lists.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, and_, case, func, insert, literal, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from plugins.analytical import snapshots
from plugins.analytical.models import RfmScore, Run
from plugins.analytical.snapshots import replace_run
from plugins.analytical.sql import EXCLUDED_STATUSES, days_before

if TYPE_CHECKING:
    from core.runtime import Crm

#: (segment, recency scores, frequency scores), from the issue's exact rules.
SEGMENTS = (
    ("champions", (5,), (4, 5)),
    ("loyal", (3, 4), (4, 5)),
    ("potential_loyalists", (4, 5), (2, 3)),
    ("new", (5,), (1,)),
    ("promising", (4,), (1,)),
    ("need_attention", (3,), (3,)),
    ("about_to_sleep", (3,), (1, 2)),
    ("at_risk", (1, 2), (3, 4)),
    ("cant_lose", (1, 2), (5,)),
    ("hibernating", (1, 2), (1, 2)),
)
#: PostgreSQL memory per sort or hash of the RFM refresh (its transaction only).
WORK_MEM = "256MB"


def segment_of(r: int, f: int) -> str:
    """The segment of recency score ``r`` and frequency score ``f`` (every pair has one)."""
    for name, rs, fs in SEGMENTS:
        if r in rs and f in fs:
            return name
    raise ValueError(f"no segment for R{r} F{f}")


def _no_index(column: Any) -> Any:
    """``+column``: the same value, but SQLite no longer uses an index on it."""
    return UnaryExpression(column, operator=custom_op("+"), type_=column.type)


def _scores_select(dialect: str, as_of: dt.date) -> Any:
    """The unordered SELECT of ``customer_id, recency_days, frequency, monetary, r, f, m``."""
    from plugins.operational.models import Order

    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    # SQLite would walk the (customer_id, placed_at) index and fetch every order row by rowid
    # in random order (bench/rfm.py, 10,000,000 orders: 64 s against 15 s): the no-op unary
    # "+" leaves it one table scan and a sort, as PostgreSQL plans it anyway.
    unindexed = _no_index if dialect == "sqlite" else (lambda column: column)
    metrics = (
        select(
            Order.customer_id.label("customer_id"),
            days_before(dialect, as_of, func.max(Order.placed_at)).label("recency_days"),
            func.count().label("frequency"),
            func.sum(Order.total_minor).label("monetary"),
        )
        .where(and_(unindexed(Order.placed_at) < end, Order.status.not_in(EXCLUDED_STATUSES)))
        .group_by(unindexed(Order.customer_id))
        .subquery()
    )
    return select(
        metrics.c.customer_id,
        metrics.c.recency_days,
        metrics.c.frequency,
        metrics.c.monetary,
        func.ntile(5)
        .over(order_by=(metrics.c.recency_days.desc(), metrics.c.customer_id))
        .label("r"),
        func.ntile(5).over(order_by=(metrics.c.frequency, metrics.c.customer_id)).label("f"),
        func.ntile(5).over(order_by=(metrics.c.monetary, metrics.c.customer_id)).label("m"),
    )


def scores_query(dialect: str, as_of: dt.date) -> Any:
    """The SELECT of ``customer_id, recency_days, frequency, monetary, r, f, m`` by customer."""
    scores = _scores_select(dialect, as_of).subquery()
    return select(*scores.c).order_by(scores.c.customer_id)


def segment_case(r: Any, f: Any) -> Any:
    """SQL ``CASE`` giving the segment of the score columns ``r`` and ``f`` (:data:`SEGMENTS`)."""
    return case(
        *((and_(r.in_(rs), f.in_(fs)), literal(name)) for name, rs, fs in SEGMENTS),
        else_=literal(None),
    )


def compute(session: Session, as_of: dt.date) -> list[dict[str, Any]]:
    """Every customer with an order up to ``as_of``: metrics, scores and segment (in memory;
    :func:`refresh` stores the same without leaving the database)."""
    dialect = session.get_bind().dialect.name
    return [
        {
            "customer_id": row.customer_id,
            "recency_days": int(row.recency_days),
            "frequency": int(row.frequency),
            "monetary": int(row.monetary),
            "r": row.r,
            "f": row.f,
            "m": row.m,
            "segment": segment_of(row.r, row.f),
        }
        for row in session.execute(scores_query(dialect, as_of))
    ]


def refresh(session: Session, as_of: dt.date) -> tuple[Run, Counter]:
    """Compute RFM as of ``as_of`` and store it as the run of that date (replacing an older
    run of the same date); returns the run and the segment counts.

    Scores and segments go from the orders to ``analytical_rfm`` in one
    ``INSERT ... SELECT``; one ``GROUP BY r, f`` over the stored rows then gives the run's
    summary: segment counts, the R x F grid and each segment's mean metrics.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # INSERT ... SELECT runs without parallel workers: with the default 4 MB the grouping
        # of every order and the three sorts spill to disk (twice as slow at 1,000,000
        # customers). Only for this transaction.
        session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
    run = replace_run(session, "rfm", as_of, {"scores": "ntile5", "ties": "customer_id"})
    scores = _scores_select(dialect, as_of).subquery()
    columns = ("run_id", "customer_id", "recency_days", "frequency", "monetary_minor")
    source = select(
        literal(run.id, Integer),
        scores.c.customer_id,
        scores.c.recency_days,
        scores.c.frequency,
        scores.c.monetary,
        scores.c.r,
        scores.c.f,
        scores.c.m,
        segment_case(scores.c.r, scores.c.f),
    )
    session.execute(insert(RfmScore).from_select([*columns, "r", "f", "m", "segment"], source))
    cells = _cells(session, run.id)
    run.summary = summarise(cells)
    run.rows = run.summary["customers"]
    return run, Counter({k: v for k, v in run.summary["segments"].items() if v})


def _cells(session: Session, run_id: int) -> list[dict[str, int]]:
    """Per (r, f) cell of a stored run: customers and the sums of the three metrics."""
    query = (
        select(
            RfmScore.r,
            RfmScore.f,
            func.count().label("customers"),
            func.sum(RfmScore.recency_days).label("recency_days"),
            func.sum(RfmScore.frequency).label("frequency"),
            func.sum(RfmScore.monetary_minor).label("monetary_minor"),
        )
        .where(RfmScore.run_id == run_id)
        .group_by(RfmScore.r, RfmScore.f)
    )
    return [
        {key: int(value) for key, value in row._mapping.items()} for row in session.execute(query)
    ]


def summarise(cells: list[dict[str, int]]) -> dict[str, Any]:
    """The run summary from per-(r, f) cells: ``customers``, ``segments`` (counts, every
    segment), ``grid`` (counts, rows r = 1..5, columns f = 1..5) and ``averages`` (mean
    recency days, orders and monetary minor units per non-empty segment)."""
    grid = [[0] * 5 for _ in range(5)]
    sums: dict[str, dict[str, int]] = {name: Counter() for name, *_ in SEGMENTS}
    for cell in cells:
        grid[cell["r"] - 1][cell["f"] - 1] = cell["customers"]
        sums[segment_of(cell["r"], cell["f"])].update(
            {k: cell[k] for k in ("customers", "recency_days", "frequency", "monetary_minor")}
        )
    averages = {
        name: {
            "recency_days": round(s["recency_days"] / s["customers"], 1),
            "frequency": round(s["frequency"] / s["customers"], 2),
            "monetary_minor": s["monetary_minor"] // s["customers"],
        }
        for name, s in sums.items()
        if s["customers"]
    }
    return {
        "customers": sum(c["customers"] for c in cells),
        "segments": {name: sums[name]["customers"] for name, *_ in SEGMENTS},
        "grid": grid,
        "averages": averages,
    }


def refresh_step(crm: Crm, session: Session, as_of: dt.date) -> Run:
    """The RFM step of ``crm analytics refresh``."""
    return refresh(session, as_of)[0]


def latest_run(session: Session) -> Run | None:
    """The newest RFM snapshot."""
    return snapshots.latest_run(session, "rfm")
