"""Churn alerts: valuable customers (tier at least ``churn_min_tier``) whose probability alive fell
under ``churn_alive_percent``, or whose next order is overdue by ``churn_overdue_percent`` of
their usual gap; the value at risk is their lifetime value (or margin)."""

from __future__ import annotations

import pytest

from core.customers.models import Customer
from plugins.smart_sales import alerts
from tests.plugins.smart_sales.conftest import SMART, _crm
from tests.plugins.smart_sales.helpers import (
    AN,
    alerts_of,
    customer,
    days_ago,
    now,
    order,
    product,
    refresh_analytics,
    set_behaviour,
    set_clv,
    set_tiers,
)


def _generate(crm, **kwargs) -> int:
    with crm.db.write() as session:
        return alerts.generate(crm, session, **kwargs)


def _customers(crm) -> dict[str, int]:
    """Customers with snapshots set by hand (CLV snapshot as of 10 days ago)."""
    plan = {
        # name: (tier, (P(alive), CLV) or None, mean gap or None, days since the last order)
        "alive": ("A", (0.2, 5_000_000), None, 100),
        "overdue": ("B", (0.8, 3_000_000), 30.0, 90),
        "both": ("A", (0.1, 2_000_000), 20.0, 50),
        "margin": ("B", None, 10.0, 25),
        "fine": ("A", (0.9, 9_000_000), 30.0, 40),
        "low": ("C", (0.05, 1_000_000), 5.0, 100),
        "fresh": ("A", (0.1, 4_000_000), None, 2),
        "untiered": (None, (0.05, 1_000_000), 5.0, 100),
    }
    made: dict[str, int] = {}
    with crm.db.write() as session:
        item = product(session, crm, "TRA", name="Trà Ô Long", price=250_000)
        for name, (_, _, _, days) in plan.items():
            made[name] = customer(session, f"Khách {name}", crm.people[AN])
            order(session, crm, made[name], [item], at=days_ago(days + 0.01))
        set_tiers(
            session,
            {made[n]: tier for n, (tier, *_) in plan.items() if tier},
            margins={made["margin"]: 700_000},
        )
        set_clv(
            session,
            {made[n]: clv for n, (_, clv, _, _) in plan.items() if clv},
            as_of=days_ago(10).date(),
        )
        set_behaviour(session, {made[n]: gap for n, (_, _, gap, _) in plan.items() if gap})
    return made


def test_churn_on_probability_alive_and_on_overdue(ss_crm):
    made = _customers(ss_crm)
    assert _generate(ss_crm, kinds=["churn"]) == 4
    with ss_crm.db.session() as session:
        found = {a.customer_id: a for a in alerts_of(session, kind="churn")}
    assert set(found) == {made["alive"], made["overdue"], made["both"], made["margin"]}
    alive = found[made["alive"]]
    assert (alive.product_id, alive.open_key) == (None, f"{made['alive']}:churn")
    assert alive.probability == pytest.approx(0.8)
    assert (alive.expected_value_minor, alive.price_minor, alive.currency) == (5_000_000, 0, "VND")
    assert (alive.value_tier, alive.owner_id) == ("A", ss_crm.people[AN])
    assert alive.reason == {
        "probability_alive": 0.2,
        "days_since_last": 100,
        "usual_gap_days": None,
        "signal": "alive",
    }
    overdue = found[made["overdue"]]
    assert overdue.probability == 0.5 and overdue.expected_value_minor == 3_000_000
    assert overdue.reason == {
        "probability_alive": 0.8,
        "days_since_last": 90,
        "usual_gap_days": 30.0,
        "signal": "overdue",
    }
    both = found[made["both"]]
    assert both.reason["signal"] == "both" and both.probability == pytest.approx(0.9)
    # no lifetime value: the margin is what is at risk
    margin = found[made["margin"]]
    assert (margin.expected_value_minor, margin.reason["probability_alive"]) == (700_000, None)


def test_the_reason_reads_in_plain_words(ss_crm):
    made = _customers(ss_crm)
    _generate(ss_crm, kinds=["churn"])
    with ss_crm.db.session() as session:
        [both] = alerts_of(session, made["both"])
        [alive] = alerts_of(session, made["alive"])
    assert alerts.describe(both, {}) == (
        "The chance this customer still buys from us fell to 10%. "
        "No order for 50 days; they usually order every 20 days."
    )
    assert alerts.describe(alive, {}) == "The chance this customer still buys from us fell to 20%."
    assert alerts.headline(alive, {}) == "Win back the customer"


def test_an_order_after_the_snapshots_silences_the_alert(ss_crm):
    made = _customers(ss_crm)
    _generate(ss_crm, kinds=["churn"])
    with ss_crm.db.session() as session:
        assert alerts_of(session, made["fresh"]) == []  # P(alive) predates their last order
    with ss_crm.db.write() as session:
        product_id = product(session, ss_crm, "BANH", price=50_000)
        order(session, ss_crm, made["overdue"], [product_id])
        order(session, ss_crm, made["low"], [product_id])
    with ss_crm.db.write() as session:
        for found in alerts_of(session, kind="churn"):
            session.delete(found)
    assert _generate(ss_crm, kinds=["churn"]) == 3  # overdue ordered today


def test_the_tier_filter(make_crm):
    crm = _crm(lambda **kw: make_crm(**kw, smart_sales_churn_min_tier="A"), SMART)
    made = _customers(crm)
    assert _generate(crm, kinds=["churn"]) == 2
    with crm.db.session() as session:
        assert {a.customer_id for a in alerts_of(session)} == {made["alive"], made["both"]}


def test_the_thresholds_are_settings(make_crm):
    crm = _crm(
        lambda **kw: make_crm(
            **kw,
            smart_sales_churn_min_tier="C",
            smart_sales_churn_alive_percent="15",
            smart_sales_churn_overdue_percent="400",
        ),
        SMART,
    )
    made = _customers(crm)
    # P(alive) under 15 %: both (10 %) and low (5 %, tier C now allowed); overdue by 4x the
    # gap: low (100 > 20 days), and margin (25 <= 40) no longer
    assert _generate(crm, kinds=["churn"]) == 2
    with crm.db.session() as session:
        found = {a.customer_id: a.reason["signal"] for a in alerts_of(session)}
    assert found == {made["both"]: "alive", made["low"]: "both"}


def test_no_snapshots_no_churn(ss_crm):
    with ss_crm.db.write() as session:
        cid = customer(session, "Khách mới")
        order(session, ss_crm, cid, [product(session, ss_crm, "X")], at=days_ago(400))
    assert _generate(ss_crm, kinds=["churn"]) == 0


def test_churn_from_a_real_analytics_refresh(ss_crm):
    """The analytical module's own snapshots: a big customer who stopped ordering 270 days ago
    after ordering every 10 days is flagged; customers still ordering are not."""
    with ss_crm.db.write() as session:
        cheap = product(session, ss_crm, "RE", price=100_000, cost=50_000)
        dear = product(session, ss_crm, "DAT", price=20_000_000, cost=5_000_000)
        stopped = customer(session, "Khách lớn đã ngừng", ss_crm.people[AN])
        for days in (300, 290, 280, 270):
            order(session, ss_crm, stopped, [dear], at=days_ago(days))
        active = []
        for i in range(8):
            cid = customer(session, f"Khách đều đặn {i}")
            active.append(cid)
            for days in range(85 + i, 0, -10):
                order(session, ss_crm, cid, [cheap], at=days_ago(days))
    refresh_analytics(ss_crm, only=["clv", "profit", "behaviour"])
    assert _generate(ss_crm, kinds=["churn"]) == 1
    with ss_crm.db.session() as session:
        [alert] = alerts_of(session)
        assert session.get(Customer, alert.customer_id).id == stopped
    assert alert.value_tier == "A"
    assert alert.reason["days_since_last"] == (now().date() - days_ago(270).date()).days
    assert alert.reason["usual_gap_days"] == pytest.approx(10.0)
    assert alert.reason["signal"] in ("overdue", "both")
    assert alert.expected_value_minor > 0
