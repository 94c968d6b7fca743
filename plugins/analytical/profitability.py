"""Customer profitability, value tiers and needs, computed in SQL and stored as a snapshot.

As of date D, per customer with at least one order placed up to the end of D (UTC), cancelled
and returned orders left out, **in the default currency only** (orders in other currencies are
counted in the summary as left out, never converted):

- revenue = sum of the orders' totals (``total_minor``);
- cost of goods = for an order with lines, the sum of quantity x product cost over its lines
  whose product has a cost; for an order without lines, the order's own ``cost_minor`` (0 when
  unknown). ``lines_without_cost`` counts the lines whose product has no cost (or no product),
  plus the orders without lines and without a cost: the margin is overstated by their cost;
- cost to serve = tickets opened up to D x ``cost_per_ticket`` + interactions up to D x
  ``cost_per_interaction`` + the orders above x ``cost_per_order``;
- margin = revenue - cost of goods - cost to serve.

All amounts are integer minor units, summed in SQL.

**Value tiers** (margin Pareto): customers sorted by margin, highest first (ties by customer id
ascending); P is the sum of the positive margins. A customer with a positive margin is in tier A
when the positive margin of the customers *before* it is below ``tier_a_percent`` % of P (so the
customer crossing the threshold is in A), else in B when it is below ``tier_b_percent`` % of P,
else in C. Customers with a margin of zero or less are in C. Comparisons are exact integers
(``100 x before < percent x P``), done with window functions.

**Needs**: ``categories`` are the distinct product categories of the same orders' lines,
sorted; ``preferred_channel`` is the channel of most of those orders (ties: the channel used
most recently, then by name), or, without any order channel, the channel of most interactions
up to D (same tie rules).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, case, cast, func, literal, select
from sqlalchemy.orm import Session

from plugins.analytical import snapshots
from plugins.analytical.models import Profit, Run
from plugins.analytical.snapshots import insert_rows, replace_run
from plugins.analytical.sql import EXCLUDED_STATUSES

if TYPE_CHECKING:
    from core.runtime import Crm

TIERS = ("A", "B", "C")
#: The settings the computation reads.
RATES = ("cost_per_ticket", "cost_per_interaction", "cost_per_order")
THRESHOLDS = ("tier_a_percent", "tier_b_percent")
#: Pareto points: the share of positive margin held by the top p % of customers.
PARETO_PERCENTS = (1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)


def _end(as_of: dt.date) -> dt.datetime:
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def _valid_orders(as_of: dt.date) -> list[Any]:
    from plugins.operational.models import Order

    return [Order.placed_at < _end(as_of), Order.status.not_in(EXCLUDED_STATUSES)]


def _included_orders(as_of: dt.date, currency: str) -> list[Any]:
    from plugins.operational.models import Order

    return [*_valid_orders(as_of), Order.currency == currency]


def _big(value: Any) -> Any:
    return cast(value, BigInteger)


def _per_customer(as_of: dt.date, currency: str) -> Any:
    """Revenue, cost of goods, lines without cost and orders per customer."""
    from plugins.operational.models import Order, OrderLine, Product

    included = _included_orders(as_of, currency)
    has_cost = Product.cost_minor.is_not(None)
    lines = (
        select(
            OrderLine.order_id.label("order_id"),
            func.count().label("lines"),
            func.sum(case((has_cost, OrderLine.quantity * Product.cost_minor), else_=0)).label(
                "cogs"
            ),
            func.sum(case((has_cost, 0), else_=1)).label("missing"),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .outerjoin(Product, Product.id == OrderLine.product_id)
        .where(*included)
        .group_by(OrderLine.order_id)
        .subquery("lines")
    )
    with_lines = lines.c.lines.is_not(None)
    per_order = (
        select(
            Order.customer_id.label("customer_id"),
            Order.total_minor.label("total"),
            case((with_lines, lines.c.cogs), else_=func.coalesce(Order.cost_minor, 0)).label(
                "cogs"
            ),
            case((with_lines, lines.c.missing), (Order.cost_minor.is_(None), 1), else_=0).label(
                "missing"
            ),
        )
        .outerjoin(lines, lines.c.order_id == Order.id)
        .where(*included)
        .subquery("per_order")
    )
    return (
        select(
            per_order.c.customer_id,
            _big(func.sum(per_order.c.total)).label("revenue"),
            _big(func.sum(per_order.c.cogs)).label("cogs"),
            cast(func.sum(per_order.c.missing), BigInteger).label("missing"),
            func.count().label("orders"),
        )
        .group_by(per_order.c.customer_id)
        .subquery("per_customer")
    )


def _counts(model: Any, column: Any, end: dt.datetime, name: str) -> Any:
    return (
        select(model.customer_id.label("customer_id"), func.count().label("n"))
        .where(column < end)
        .group_by(model.customer_id)
        .subquery(name)
    )


def metrics_query(as_of: dt.date, currency: str, params: dict[str, int]) -> Any:
    """The SELECT of every customer's money figures and tier, in tier order."""
    from plugins.operational.models import Interaction, Ticket

    end = _end(as_of)
    pc = _per_customer(as_of, currency)
    tickets = _counts(Ticket, Ticket.created_at, end, "tickets")
    interactions = _counts(Interaction, Interaction.occurred_at, end, "interactions")
    n_tickets = func.coalesce(tickets.c.n, 0)
    n_interactions = func.coalesce(interactions.c.n, 0)
    cost_to_serve = _big(
        n_tickets * literal(params["cost_per_ticket"], BigInteger)
        + n_interactions * literal(params["cost_per_interaction"], BigInteger)
        + pc.c.orders * literal(params["cost_per_order"], BigInteger)
    )
    metrics = (
        select(
            pc.c.customer_id,
            pc.c.revenue,
            pc.c.cogs,
            pc.c.missing,
            n_tickets.label("tickets"),
            n_interactions.label("interactions"),
            cost_to_serve.label("cost_to_serve"),
            _big(pc.c.revenue - pc.c.cogs - cost_to_serve).label("margin"),
        )
        .outerjoin(tickets, tickets.c.customer_id == pc.c.customer_id)
        .outerjoin(interactions, interactions.c.customer_id == pc.c.customer_id)
        .subquery("metrics")
    )
    positive = case((metrics.c.margin > 0, metrics.c.margin), else_=0)
    order = (metrics.c.margin.desc(), metrics.c.customer_id)
    ranked = select(
        metrics,
        _big(func.sum(positive).over(order_by=order) - positive).label("before"),
        _big(func.sum(positive).over()).label("total_positive"),
    ).subquery("ranked")
    before = ranked.c.before * 100
    total = ranked.c.total_positive
    tier = case(
        (ranked.c.margin <= 0, "C"),
        (before < total * params["tier_a_percent"], "A"),
        (before < total * params["tier_b_percent"], "B"),
        else_="C",
    )
    return select(ranked, tier.label("tier")).order_by(ranked.c.margin.desc(), ranked.c.customer_id)


def categories(session: Session, as_of: dt.date, currency: str) -> dict[int, list[str]]:
    """Each customer's distinct product categories on the included orders, sorted."""
    from plugins.operational.models import Order, OrderLine, Product

    query = (
        select(Order.customer_id, Product.category)
        .distinct()
        .select_from(OrderLine)
        .join(Order, Order.id == OrderLine.order_id)
        .join(Product, Product.id == OrderLine.product_id)
        .where(*_included_orders(as_of, currency), Product.category.is_not(None))
    )
    found: dict[int, list[str]] = defaultdict(list)
    for customer_id, category in session.execute(query):
        found[customer_id].append(category)
    return {cid: sorted(set(values)) for cid, values in found.items()}


def _top_channel(model: Any, at: Any, conditions: list[Any]) -> Any:
    grouped = (
        select(
            model.customer_id.label("customer_id"),
            model.channel.label("channel"),
            func.count().label("n"),
            func.max(at).label("last"),
        )
        .where(*conditions, model.channel.is_not(None), model.channel != "")
        .group_by(model.customer_id, model.channel)
        .subquery("channels")
    )
    rank = func.row_number().over(
        partition_by=grouped.c.customer_id,
        order_by=(grouped.c.n.desc(), grouped.c.last.desc(), grouped.c.channel),
    )
    ranked = select(grouped.c.customer_id, grouped.c.channel, rank.label("rk")).subquery("r")
    return select(ranked.c.customer_id, ranked.c.channel).where(ranked.c.rk == 1)


def preferred_channels(session: Session, as_of: dt.date, currency: str) -> dict[int, str]:
    """Each customer's preferred channel: most orders, else most interactions (ties: most
    recent, then by name)."""
    from plugins.operational.models import Interaction, Order

    found = dict(
        session.execute(
            _top_channel(
                Interaction, Interaction.occurred_at, [Interaction.occurred_at < _end(as_of)]
            )
        ).all()
    )
    found.update(
        session.execute(
            _top_channel(Order, Order.placed_at, _included_orders(as_of, currency))
        ).all()
    )
    return found


def left_out(session: Session, as_of: dt.date, currency: str) -> dict[str, int]:
    """Valid orders up to ``as_of`` in currencies other than ``currency``, per currency."""
    from plugins.operational.models import Order

    query = (
        select(Order.currency, func.count())
        .where(*_valid_orders(as_of), Order.currency != currency)
        .group_by(Order.currency)
        .order_by(Order.currency)
    )
    return {code: int(n) for code, n in session.execute(query)}


def compute(
    session: Session, as_of: dt.date, currency: str, params: dict[str, int]
) -> list[dict[str, Any]]:
    """Every customer's profitability as of ``as_of``, highest margin first."""
    needs = categories(session, as_of, currency)
    channels = preferred_channels(session, as_of, currency)
    return [
        {
            "customer_id": row.customer_id,
            "revenue_minor": int(row.revenue),
            "cogs_minor": int(row.cogs),
            "cost_to_serve_minor": int(row.cost_to_serve),
            "margin_minor": int(row.margin),
            "tier": row.tier,
            "lines_without_cost": int(row.missing or 0),
            "categories": needs.get(row.customer_id, []),
            "preferred_channel": channels.get(row.customer_id),
        }
        for row in session.execute(metrics_query(as_of, currency, params))
    ]


def pareto(margins: list[int]) -> list[dict[str, float]]:
    """The share of the positive margin held by the top p % of ``margins`` (sorted highest
    first) for each p of :data:`PARETO_PERCENTS`; the top p % is ``ceil(n x p / 100)``
    customers."""
    positive = [max(m, 0) for m in margins]
    total = sum(positive)
    points = []
    for percent in PARETO_PERCENTS:
        top = -(-len(margins) * percent // 100)
        held = sum(positive[:top])
        points.append({"percent": percent, "share": round(held / total, 4) if total else 0.0})
    return points


def summarise(rows: list[dict[str, Any]], omitted: dict[str, int]) -> dict[str, Any]:
    """Totals, tier figures, Pareto points and what was left out (for the run's summary)."""
    totals = {
        key: sum(r[key] for r in rows)
        for key in ("revenue_minor", "cogs_minor", "cost_to_serve_minor", "margin_minor")
    }
    positive = sum(max(r["margin_minor"], 0) for r in rows)
    tiers = {}
    for tier in TIERS:
        members = [r for r in rows if r["tier"] == tier]
        margin = sum(r["margin_minor"] for r in members)
        tiers[tier] = {
            "customers": len(members),
            "revenue_minor": sum(r["revenue_minor"] for r in members),
            "margin_minor": margin,
            "share": round(margin / totals["margin_minor"], 4)
            if totals["margin_minor"] > 0
            else None,
        }
    return {
        "customers": len(rows),
        **totals,
        "positive_margin_minor": positive,
        "tiers": tiers,
        "pareto": pareto([r["margin_minor"] for r in rows]),
        "lines_without_cost": sum(r["lines_without_cost"] for r in rows),
        "customers_with_missing_cost": sum(1 for r in rows if r["lines_without_cost"]),
        "orders_left_out": sum(omitted.values()),
        "left_out_by_currency": omitted,
    }


def refresh(session: Session, as_of: dt.date, currency: str, params: dict[str, int]) -> Run:
    """Compute profitability as of ``as_of`` in ``currency`` with ``params`` (rates and tier
    thresholds) and store it as the run of that date."""
    missing = [name for name in (*RATES, *THRESHOLDS) if name not in params]
    if missing:
        raise ValueError(f"missing profitability settings: {', '.join(missing)}")
    if params["tier_b_percent"] < params["tier_a_percent"]:
        raise ValueError("tier_b_percent: must be at least tier_a_percent")
    values = {name: int(params[name]) for name in (*RATES, *THRESHOLDS)}
    rows = compute(session, as_of, currency, values)
    run = replace_run(session, "profit", as_of, {**values, "currency": currency})
    run.rows = insert_rows(session, Profit.__table__, ({"run_id": run.id, **r} for r in rows))
    run.summary = summarise(rows, left_out(session, as_of, currency))
    return run


def refresh_step(crm: Crm, session: Session, as_of: dt.date) -> Run:
    """The profitability step of ``crm analytics refresh``."""
    from plugins.analytical.config import settings

    values = settings(crm)
    params = {name: values[name] for name in (*RATES, *THRESHOLDS)}
    return refresh(session, as_of, crm.settings.default_currency, params)


def latest_run(session: Session) -> Run | None:
    """The newest profitability snapshot."""
    return snapshots.latest_run(session, "profit")


def tier_filter(value: str) -> Any:
    """The customer list's "Value tier" filter: customers of tier ``value`` in the latest run
    (an unknown tier matches nobody)."""
    from sqlalchemy import false

    from core.customers.models import Customer

    tier = value.strip().upper()
    if tier not in TIERS:
        return false()
    return Customer.id.in_(
        select(Profit.customer_id).where(
            Profit.run_id == snapshots.latest_run_id("profit"), Profit.tier == tier
        )
    )
