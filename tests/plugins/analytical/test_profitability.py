"""Profitability, value tiers and needs equal an independent computation in plain Python."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import Counter
from fractions import Fraction

import pytest
from sqlalchemy import insert, select

from plugins.analytical import profitability
from plugins.analytical.models import Profit
from plugins.operational.models import Interaction, Order, OrderLine, Product, Ticket
from tests.plugins.analytical.helpers import add_customer

AS_OF = dt.date(2026, 6, 30)
END = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
PARAMS = {
    "cost_per_ticket": 50_000,
    "cost_per_interaction": 5_000,
    "cost_per_order": 1_000,
    "tier_a_percent": 80,
    "tier_b_percent": 95,
}
CHANNELS = (None, "phone", "zalo", "website")


def _when(rng: random.Random) -> dt.datetime:
    days = rng.choice((-1, 0, 0, 5, 100))  # -1: after AS_OF, must not count
    time = rng.choice((dt.time(0, 0), dt.time(12, 0), dt.time(23, 59, 59)))
    return dt.datetime.combine(AS_OF - dt.timedelta(days=days), time, tzinfo=dt.UTC)


def _add_customers(session, count: int) -> list[int]:
    return [add_customer(session, f"P{i}") for i in range(count)]


def _add_products(session) -> dict[int, tuple[int | None, str | None]]:
    products = {}
    specs = [
        ("TEA", "tea", 20_000),
        ("TEA2", "tea", None),
        ("COF", "coffee", 35_000),
        ("CUP", "cups", 20_000),
        ("MISC", None, 35_000),
        ("FREE", None, None),
    ]
    for sku, category, cost in specs:
        pid = session.execute(
            insert(Product).values(
                sku=sku,
                name=sku,
                category=category,
                price_minor=100_000,
                cost_minor=cost,
                currency="VND",
                active=True,
                version=1,
            )
        ).inserted_primary_key[0]
        products[pid] = (cost, category)
    return products


def generate(crm, count: int = 140, seed: int = 21) -> dict:
    """Orders with and without lines, products with and without cost, several currencies,
    tickets and interactions before and after the as-of date."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    data: dict = {"orders": [], "tickets": [], "interactions": []}
    with crm.db.write() as session:
        data["products"] = _add_products(session)
        data["customers"] = _add_customers(session, count)
        product_ids = [*data["products"], None]
        for cid in data["customers"]:
            for _ in range(rng.choice((0, 1, 1, 2, 3))):
                order = {
                    "ref": f"O{len(data['orders'])}",
                    "customer_id": cid,
                    "placed_at": _when(rng),
                    "status": rng.choices(("delivered", "cancelled", "returned"), (8, 1, 1))[0],
                    "currency": rng.choices(("VND", "USD", "EUR"), (8, 1, 1))[0],
                    "total_minor": rng.choice((100_000, 200_000, 200_000, 400_000)),
                    "cost_minor": rng.choice((None, 60_000, 500_000)),
                    "channel": rng.choice(CHANNELS),
                    "created_at": now,
                    "version": 1,
                }
                order["id"] = session.execute(insert(Order).values(**order)).inserted_primary_key[0]
                order["lines"] = [
                    (rng.choice(product_ids), rng.choice((1, 2)))
                    for _ in range(rng.choice((0, 0, 1, 2, 3)))
                ]
                for product_id, quantity in order["lines"]:
                    session.execute(
                        insert(OrderLine).values(
                            order_id=order["id"],
                            product_id=product_id,
                            quantity=quantity,
                            unit_price_minor=100_000,
                            discount_minor=0,
                            amount_minor=100_000 * quantity,
                        )
                    )
                data["orders"].append(order)
            for _ in range(rng.choice((0, 0, 1, 3))):
                at = _when(rng)
                data["tickets"].append((cid, at))
                session.execute(
                    insert(Ticket).values(
                        customer_id=cid, subject="Help", created_at=at, updated_at=at, version=1
                    )
                )
            for _ in range(rng.choice((0, 1, 2, 3))):
                at, channel = _when(rng), rng.choice((*CHANNELS[1:], "email"))
                data["interactions"].append((cid, channel, at))
                session.execute(
                    insert(Interaction).values(
                        customer_id=cid,
                        kind="call",
                        channel=channel,
                        direction="inbound",
                        subject="Hi",
                        occurred_at=at,
                        created_at=now,
                    )
                )
    return data


def _most_used(events: list[tuple[str, dt.datetime]]) -> str | None:
    """The channel used most often; ties: used most recently, then by name."""
    if not events:
        return None
    counts = Counter(channel for channel, _ in events)
    last = {channel: max(at for c, at in events if c == channel) for channel in counts}
    return min(counts, key=lambda c: (-counts[c], -last[c].timestamp(), c))


def reference(data: dict, params: dict, currency: str = "VND") -> dict[int, dict]:
    """Every figure written out per customer in Python."""
    valid = [o for o in data["orders"] if o["placed_at"] < END and o["status"] == "delivered"]
    mine = [o for o in valid if o["currency"] == currency]
    result = {}
    for cid in data["customers"]:
        orders = [o for o in mine if o["customer_id"] == cid]
        if not orders:
            continue
        cogs = missing = 0
        for order in orders:
            if not order["lines"]:
                cogs += order["cost_minor"] or 0
                missing += order["cost_minor"] is None
            for product_id, quantity in order["lines"]:
                cost = data["products"].get(product_id, (None, None))[0]
                cogs += quantity * (cost or 0)
                missing += cost is None
        tickets = sum(1 for c, at in data["tickets"] if c == cid and at < END)
        interactions = [(ch, at) for c, ch, at in data["interactions"] if c == cid and at < END]
        serve = (
            tickets * params["cost_per_ticket"]
            + len(interactions) * params["cost_per_interaction"]
            + len(orders) * params["cost_per_order"]
        )
        revenue = sum(o["total_minor"] for o in orders)
        categories = {
            data["products"][pid][1]
            for o in orders
            for pid, _ in o["lines"]
            if pid is not None and data["products"][pid][1] is not None
        }
        channel = _most_used([(o["channel"], o["placed_at"]) for o in orders if o["channel"]])
        result[cid] = {
            "revenue_minor": revenue,
            "cogs_minor": cogs,
            "cost_to_serve_minor": serve,
            "margin_minor": revenue - cogs - serve,
            "lines_without_cost": missing,
            "categories": sorted(categories),
            "preferred_channel": channel or _most_used(interactions),
        }
    _tiers(result, params)
    return result


def _tiers(result: dict[int, dict], params: dict) -> None:
    """Walk the customers by margin; a customer is in A while the positive margin before it is
    under tier_a_percent of the total (as exact fractions)."""
    ranked = sorted(result, key=lambda c: (-result[c]["margin_minor"], c))
    total = sum(max(result[c]["margin_minor"], 0) for c in ranked)
    before = 0
    for cid in ranked:
        margin = result[cid]["margin_minor"]
        share = Fraction(before, total) if total else Fraction(1)
        if margin <= 0:
            tier = "C"
        elif share < Fraction(params["tier_a_percent"], 100):
            tier = "A"
        elif share < Fraction(params["tier_b_percent"], 100):
            tier = "B"
        else:
            tier = "C"
        result[cid]["tier"] = tier
        before += max(margin, 0)


def _stored(crm, run_id: int) -> dict[int, dict]:
    with crm.db.session() as session:
        return {
            p.customer_id: {
                "revenue_minor": p.revenue_minor,
                "cogs_minor": p.cogs_minor,
                "cost_to_serve_minor": p.cost_to_serve_minor,
                "margin_minor": p.margin_minor,
                "lines_without_cost": p.lines_without_cost,
                "categories": p.categories,
                "preferred_channel": p.preferred_channel,
                "tier": p.tier,
            }
            for p in session.scalars(select(Profit).where(Profit.run_id == run_id))
        }


def test_profitability_equals_an_independent_computation(an_crm):
    data = generate(an_crm)
    expected = reference(data, PARAMS)
    with an_crm.db.write() as session:
        run = profitability.refresh(session, AS_OF, "VND", PARAMS)
        run_id, summary, params = run.id, run.summary, dict(run.params)
    got = _stored(an_crm, run_id)
    assert got == expected and len(got) > 50
    assert params == {**PARAMS, "currency": "VND"}
    margins = [v["margin_minor"] for v in expected.values()]
    assert min(margins) < 0 < max(margins)  # negative margins were really there
    assert len(set(margins)) < len(margins)  # and ties
    assert {v["tier"] for v in expected.values()} == {"A", "B", "C"}
    assert any(v["lines_without_cost"] for v in expected.values())
    # the summary
    left_out = Counter(
        o["currency"]
        for o in data["orders"]
        if o["placed_at"] < END and o["status"] == "delivered" and o["currency"] != "VND"
    )
    assert summary["left_out_by_currency"] == dict(left_out) and summary["orders_left_out"] > 0
    assert summary["customers"] == len(expected)
    assert summary["margin_minor"] == sum(margins)
    assert summary["lines_without_cost"] == sum(v["lines_without_cost"] for v in expected.values())
    for tier in "ABC":
        members = [v for v in expected.values() if v["tier"] == tier]
        assert summary["tiers"][tier]["customers"] == len(members)
        assert summary["tiers"][tier]["margin_minor"] == sum(v["margin_minor"] for v in members)
    ranked = sorted((max(m, 0) for m in margins), reverse=True)
    for point in summary["pareto"]:
        top = math.ceil(Fraction(len(ranked) * point["percent"], 100))
        assert point["share"] == pytest.approx(sum(ranked[:top]) / sum(ranked), abs=1e-4)
    assert summary["pareto"][-1]["share"] == 1.0


def test_other_rates_and_thresholds(an_crm):
    data = generate(an_crm, count=60, seed=5)
    params = {
        "cost_per_ticket": 0,
        "cost_per_interaction": 100_000,
        "cost_per_order": 0,
        "tier_a_percent": 50,
        "tier_b_percent": 60,
    }
    with an_crm.db.write() as session:
        run_id = profitability.refresh(session, AS_OF, "USD", params).id
    assert _stored(an_crm, run_id) == reference(data, params, "USD")


def _designed(crm, revenues: list[int]) -> list[int]:
    """One customer per revenue, one order without lines (cost 0), no costs to serve."""
    now = dt.datetime.now(dt.UTC)
    with crm.db.write() as session:
        ids = _add_customers(session, len(revenues))
        for cid, revenue in zip(ids, revenues, strict=True):
            session.execute(
                insert(Order).values(
                    ref=f"D{cid}",
                    customer_id=cid,
                    placed_at=dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
                    status="paid",
                    currency="VND",
                    total_minor=max(revenue, 0),
                    cost_minor=max(-revenue, 0),
                    created_at=now,
                    version=1,
                )
            )
    return ids


@pytest.mark.parametrize(
    ("tier_a", "tiers"),
    [(80, ["A", "A", "B", "B", "C", "C"]), (85, ["A", "A", "A", "B", "C", "C"])],
)
def test_the_customer_crossing_the_threshold_is_in_the_upper_tier(an_crm, tier_a, tiers):
    # margins 50, 30, 10, 10 (a tie: lower id first), 0, -5; positive total 100
    ids = _designed(an_crm, [10, 50, 10, 30, 0, -5])
    rates = {"cost_per_ticket": 0, "cost_per_interaction": 0, "cost_per_order": 0}
    params = {**rates, "tier_a_percent": tier_a, "tier_b_percent": 95}
    with an_crm.db.write() as session:
        run_id = profitability.refresh(session, AS_OF, "VND", params).id
    got = _stored(an_crm, run_id)
    order = [ids[1], ids[3], ids[0], ids[2], ids[4], ids[5]]
    assert [got[c]["tier"] for c in order] == tiers
    assert [got[c]["margin_minor"] for c in order] == [50, 30, 10, 10, 0, -5]


def test_bad_thresholds_are_refused():
    params = {**PARAMS, "tier_a_percent": 90, "tier_b_percent": 80}
    with pytest.raises(ValueError, match="tier_b_percent"):
        profitability.refresh(None, AS_OF, "VND", params)
    with pytest.raises(ValueError, match="cost_per_order"):
        profitability.refresh(None, AS_OF, "VND", {"cost_per_ticket": 1})


def test_refresh_step_uses_the_settings_and_the_default_currency(an_crm):
    data = generate(an_crm, count=30, seed=2)
    with an_crm.db.write() as session:
        run = profitability.refresh_step(an_crm, session, AS_OF)
        run_id, params = run.id, dict(run.params)
    defaults = {
        "cost_per_ticket": 50_000,
        "cost_per_interaction": 5_000,
        "cost_per_order": 0,
        "tier_a_percent": 80,
        "tier_b_percent": 95,
    }
    assert params == {**defaults, "currency": "VND"}
    assert _stored(an_crm, run_id) == reference(data, defaults)
