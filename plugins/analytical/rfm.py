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

from sqlalchemy import Date, Integer, and_, cast, func, literal, select
from sqlalchemy.orm import Session

from plugins.analytical import snapshots
from plugins.analytical.models import RfmScore, Run
from plugins.analytical.snapshots import insert_rows, replace_run

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
EXCLUDED_STATUSES = ("cancelled", "returned")


def segment_of(r: int, f: int) -> str:
    """The segment of recency score ``r`` and frequency score ``f`` (every pair has one)."""
    for name, rs, fs in SEGMENTS:
        if r in rs and f in fs:
            return name
    raise ValueError(f"no segment for R{r} F{f}")


def _day_number(dialect: str, value: Any) -> Any:
    """A whole-day count usable for subtracting calendar dates on either database."""
    if dialect == "sqlite":
        return cast(func.julianday(func.date(value)), Integer)
    # the UTC calendar day, whatever the session's time zone
    return cast(func.extract("epoch", cast(func.timezone("UTC", value), Date)) / 86400, Integer)


def scores_query(dialect: str, as_of: dt.date) -> Any:
    """The SELECT of ``customer_id, recency_days, frequency, monetary, r, f, m``."""
    from plugins.operational.models import Order

    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    day_of_as_of = (
        cast(func.julianday(literal(as_of.isoformat())), Integer)
        if dialect == "sqlite"
        else literal((as_of - dt.date(1970, 1, 1)).days)
    )
    metrics = (
        select(
            Order.customer_id.label("customer_id"),
            (day_of_as_of - _day_number(dialect, func.max(Order.placed_at))).label("recency_days"),
            func.count().label("frequency"),
            func.sum(Order.total_minor).label("monetary"),
        )
        .where(and_(Order.placed_at < end, Order.status.not_in(EXCLUDED_STATUSES)))
        .group_by(Order.customer_id)
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
    ).order_by(metrics.c.customer_id)


def compute(session: Session, as_of: dt.date) -> list[dict[str, Any]]:
    """Every customer with an order up to ``as_of``: metrics, scores and segment."""
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
    run of the same date); returns the run and the segment counts."""
    rows = compute(session, as_of)
    run = replace_run(session, "rfm", as_of, {"scores": "ntile5", "ties": "customer_id"})
    counts = Counter(r["segment"] for r in rows)
    run.rows = insert_rows(
        session,
        RfmScore.__table__,
        (
            {
                "run_id": run.id,
                "customer_id": r["customer_id"],
                "recency_days": r["recency_days"],
                "frequency": r["frequency"],
                "monetary_minor": r["monetary"],
                "r": r["r"],
                "f": r["f"],
                "m": r["m"],
                "segment": r["segment"],
            }
            for r in rows
        ),
    )
    run.summary = {"segments": {name: counts.get(name, 0) for name, *_ in SEGMENTS}}
    return run, counts


def refresh_step(crm: Crm, session: Session, as_of: dt.date) -> Run:
    """The RFM step of ``crm analytics refresh``."""
    return refresh(session, as_of)[0]


def latest_run(session: Session) -> Run | None:
    """The newest RFM snapshot."""
    return snapshots.latest_run(session, "rfm")
