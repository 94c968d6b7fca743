"""Mining runs: baskets out of the orders, rules into the database, failed runs, mutes.

The helpers at the top (products, a customer, orders with lines, baskets from the real
baskets file) are shared with the other tests of runs, rules and their screens.
"""

from __future__ import annotations

import datetime as dt
import gzip
import math
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from core.errors import NotFoundError
from core.models import AuditLog
from plugins.operational.models import Order, OrderLine, Product
from plugins.smart_sales import runs
from plugins.smart_sales.mining import MiningError, mine
from plugins.smart_sales.models import MiningRun, MutedRule, Rule
from tests.conftest import FIXTURES
from tests.plugins.collaborative.helpers import add_customer

BASKETS_FILE = FIXTURES / "data" / "online-retail-baskets.txt.gz"
START = dt.datetime(2025, 1, 1, 9, 30, tzinfo=dt.UTC)


# --- helpers ------------------------------------------------------------------------------------


def read_baskets(limit: int | None = None) -> list[list[str]]:
    """The first ``limit`` real baskets (SKUs, as in the file, duplicates kept)."""
    baskets = []
    with gzip.open(BASKETS_FILE, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                baskets.append(line.strip().split(","))
                if limit is not None and len(baskets) == limit:
                    break
    return baskets


def add_products(session: Any, skus: Iterable[str], **values: Any) -> dict[str, int]:
    """Insert a product per SKU (Vietnamese name, VND price) and return their ids by SKU."""
    skus = list(dict.fromkeys(skus))
    rows = [
        {
            "sku": sku,
            "name": f"Sản phẩm {sku}",
            "category": "Đồ gia dụng",
            "price_minor": 150_000 + 1_000 * i,
            "cost_minor": 90_000,
            "currency": "VND",
            "active": True,
        }
        | values
        for i, sku in enumerate(skus)
    ]
    for start in range(0, len(rows), 2_000):
        session.execute(insert(Product), rows[start : start + 2_000])
    found: dict[str, int] = {}
    for start in range(0, len(skus), 1_000):
        chunk = skus[start : start + 1_000]
        found.update(
            session.execute(select(Product.sku, Product.id).where(Product.sku.in_(chunk))).all()
        )
    return found


def add_orders(
    session: Any,
    customer_id: int,
    baskets: Sequence[Sequence[int | None]],
    *,
    placed_at: dt.datetime | Sequence[dt.datetime] = START,
    status: str = "paid",
    prefix: str = "DH",
) -> list[int]:
    """Insert one order per basket (lines in the basket's order; ``None``: a line without a
    product) and return the order ids in the same order."""
    times = [placed_at] * len(baskets) if isinstance(placed_at, dt.datetime) else placed_at
    refs = [f"{prefix}-{i:06d}" for i in range(len(baskets))]
    orders = [
        {
            "ref": ref,
            "customer_id": customer_id,
            "status": status,
            "placed_at": at,
            "currency": "VND",
            "total_minor": 100_000 * len(basket),
        }
        for ref, at, basket in zip(refs, times, baskets, strict=True)
    ]
    for start in range(0, len(orders), 2_000):
        session.execute(insert(Order), orders[start : start + 2_000])
    ids: dict[str, int] = {}
    for start in range(0, len(refs), 1_000):
        chunk = refs[start : start + 1_000]
        ids.update(session.execute(select(Order.ref, Order.id).where(Order.ref.in_(chunk))).all())
    lines = [
        {
            "order_id": ids[ref],
            "product_id": product,
            "quantity": 1,
            "unit_price_minor": 100_000,
            "amount_minor": 100_000,
        }
        for ref, basket in zip(refs, baskets, strict=True)
        for product in basket
    ]
    for start in range(0, len(lines), 5_000):
        session.execute(insert(OrderLine), lines[start : start + 5_000])
    return [ids[ref] for ref in refs]


def load_sku_baskets(
    crm: Any, baskets: Sequence[Sequence[str]], **order_values: Any
) -> dict[str, int]:
    """Products for every SKU and one order per basket for a customer; product ids by SKU."""
    with crm.db.write() as session:
        products = add_products(session, (sku for basket in baskets for sku in basket))
        customer = add_customer(session, "Nguyễn Thị Hoa")
        add_orders(
            session,
            customer,
            [[products[sku] for sku in basket] for basket in baskets],
            **order_values,
        )
    return products


#: Small baskets of SKUs: a, b and c go together, d follows b.
SMALL = [["a", "b", "c"], ["a", "b"], ["a", "c"], ["b", "c", "d"], ["a", "b", "d"]]


@pytest.fixture
def small(ss_crm) -> dict[str, int]:
    """``SMALL`` as five orders; product ids by SKU."""
    return load_sku_baskets(ss_crm, SMALL)


def stored_rules(crm: Any, run_id: int) -> list[Rule]:
    with crm.db.session() as session:
        return list(session.scalars(select(Rule).where(Rule.run_id == run_id).order_by(Rule.id)))


def count(crm: Any, model: Any) -> int:
    with crm.db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


# --- baskets ------------------------------------------------------------------------------------


def test_load_baskets_one_per_order_distinct_products_in_line_order(ss_crm):
    with ss_crm.db.write() as session:
        p = add_products(session, ["x", "y", "z", "w"])
        customer = add_customer(session, "Trần Văn Bảo")
        kept = add_orders(
            session,
            customer,
            [
                [p["y"], p["x"], p["y"], None],  # duplicate and a line without a product
                [p["z"]],
                [None],  # no product at all: not a basket
            ],
        )
        add_orders(session, customer, [[p["w"], p["x"]]], status="cancelled", prefix="C")
        add_orders(session, customer, [[p["w"], p["z"]]], status="returned", prefix="R")
        add_orders(session, customer, [[p["w"]]], status="placed", prefix="P")
    with ss_crm.db.session() as session:
        found = runs.load_baskets(session, max_basket_size=50)
    assert found.baskets == [[p["y"], p["x"]], [p["z"]], [p["w"]]]
    assert found.orders == 3 and found.capped == 0
    assert len(kept) == 3


def test_load_baskets_leaves_out_and_counts_baskets_over_the_cap(ss_crm):
    with ss_crm.db.write() as session:
        p = add_products(session, [f"s{i}" for i in range(6)])
        customer = add_customer(session, "Lê Thu")
        ids = [p[f"s{i}"] for i in range(6)]
        add_orders(session, customer, [ids[:3], ids, ids[:4] + ids[:4], ids[2:]])
    with ss_crm.db.session() as session:
        capped = runs.load_baskets(session, max_basket_size=4)
        everything = runs.load_baskets(session, max_basket_size=6)
    assert capped.baskets == [ids[:3], ids[:4], ids[2:]]
    assert (capped.orders, capped.capped) == (4, 1)
    assert len(everything.baskets) == 4 and everything.capped == 0


def test_load_baskets_since_a_utc_day(ss_crm):
    with ss_crm.db.write() as session:
        p = add_products(session, ["a", "b", "c"])
        customer = add_customer(session, "Phạm Hùng")
        times = [
            dt.datetime(2025, 3, 9, 23, 59, 59, tzinfo=dt.UTC),
            dt.datetime(2025, 3, 10, 0, 0, tzinfo=dt.UTC),
            # 06:30 in Ho Chi Minh City on the 10th is still the 9th in UTC
            dt.datetime(2025, 3, 10, 6, 30, tzinfo=dt.timezone(dt.timedelta(hours=7))),
            dt.datetime(2025, 4, 1, 12, 0, tzinfo=dt.UTC),
        ]
        add_orders(session, customer, [[p["a"]], [p["b"]], [p["c"]], [p["a"], p["c"]]],
                   placed_at=times)  # fmt: skip
    with ss_crm.db.session() as session:
        found = runs.load_baskets(session, since=dt.date(2025, 3, 10), max_basket_size=50)
        everything = runs.load_baskets(session, max_basket_size=50)
    assert found.baskets == [[p["b"]], [p["a"], p["c"]]]
    assert len(everything.baskets) == 4


def test_rule_key_sorts_ids():
    assert runs.rule_key([12, 4], [7]) == "4,12>7"
    assert runs.rule_key((3,), (10, 2)) == "3>2,10"


# --- runs ---------------------------------------------------------------------------------------


def test_run_stores_params_counts_and_rules(ss_crm, small):
    run = runs.run_mining(ss_crm, min_support=0.4, min_confidence=0.5, min_lift=0,
                          max_length=3, max_basket_size=10, raise_alerts=False)  # fmt: skip
    assert run.status == "ok" and run.error is None
    assert run.params == {
        "min_support": 0.4,
        "min_confidence": 0.5,
        "min_lift": 0.0,
        "max_length": 3,
        "max_basket_size": 10,
        "since": None,
    }
    # Frequent (in 2 of 5 baskets): a b c d, ab ac bc bd
    assert (run.baskets, run.baskets_capped, run.itemsets) == (5, 0, 8)
    assert run.finished_at >= run.started_at and run.duration_ms >= 0
    assert run.started_by is None and run.alerts_raised == 0

    rules = stored_rules(ss_crm, run.id)
    expected = mine(SMALL, min_support=0.4, min_confidence=0.5)
    assert run.rules == len(rules) == len(expected) == 8
    for stored, want in zip(rules, expected, strict=True):  # stored in the order mined
        assert stored.antecedent == list(want.antecedent)
        assert stored.consequent == list(want.consequent)
        assert stored.antecedent_ids == [small[s] for s in want.antecedent]
        assert stored.consequent_ids == [small[s] for s in want.consequent]
        assert stored.key == runs.rule_key(stored.antecedent_ids, stored.consequent_ids)
        for metric in ("support", "confidence", "lift", "leverage"):
            assert getattr(stored, metric) == pytest.approx(getattr(want, metric), abs=1e-12)
        if math.isinf(want.conviction):
            assert stored.conviction is None
        else:
            assert stored.conviction == pytest.approx(want.conviction, abs=1e-12)
        assert stored.count == round(want.support * 5)
    db = next(r for r in rules if r.antecedent == ["d"])
    assert (db.consequent, db.confidence, db.conviction, db.count) == (["b"], 1.0, None, 2)


def test_defaults_come_from_the_settings(make_crm, ss_crm, small):
    run = runs.run_mining(ss_crm, min_support=0.4, raise_alerts=False)
    assert run.params == {
        "min_support": 0.4,
        "min_confidence": 0.2,
        "min_lift": 1.2,
        "max_length": 3,
        "max_basket_size": 50,
        "since": None,
    }
    # only b <-> d clear a lift of 1.2 (1.25)
    assert [(r.antecedent, r.consequent) for r in stored_rules(ss_crm, run.id)] == [
        (["d"], ["b"]),
        (["b"], ["d"]),
    ]
    tuned = make_crm(
        load_plugins="operational,analytical,smart_sales",
        smart_sales_min_support="40%",
        smart_sales_min_lift="0",
        smart_sales_max_length="2",
    )
    run = runs.run_mining(tuned, raise_alerts=False)
    assert run.params["min_support"] == 0.4 and run.params["max_length"] == 2
    assert run.rules == 8 and run.itemsets == 8


def test_capped_baskets_are_counted_and_left_out(ss_crm):
    baskets = [["a", "b"]] * 4 + [["a", "b", "c", "d", "e"]] * 3
    load_sku_baskets(ss_crm, baskets)
    run = runs.run_mining(ss_crm, min_support=0.5, min_lift=0, max_basket_size=4,
                          raise_alerts=False)  # fmt: skip
    assert (run.baskets, run.baskets_capped, run.itemsets, run.rules) == (4, 3, 3, 2)
    wide = runs.run_mining(ss_crm, min_support=0.4, min_lift=0, max_basket_size=5,
                           raise_alerts=False)  # fmt: skip
    assert (wide.baskets, wide.baskets_capped) == (7, 0)
    assert wide.itemsets == 5 + 10 + 10  # every subset of abcde up to 3 products (max_length)


def test_since_is_stored_and_filters(ss_crm):
    load_sku_baskets(
        ss_crm,
        [["a", "b"]] * 4 + [["c", "d"]] * 4,
        placed_at=[START] * 4 + [START + dt.timedelta(days=40 + i) for i in range(4)],
    )
    run = runs.run_mining(ss_crm, min_support=0.5, min_lift=0, since=dt.date(2025, 2, 1),
                          raise_alerts=False)  # fmt: skip
    assert run.params["since"] == "2025-02-01" and run.baskets == 4
    assert {(tuple(r.antecedent), tuple(r.consequent)) for r in stored_rules(ss_crm, run.id)} == {
        (("c",), ("d",)),
        (("d",), ("c",)),
    }


def test_refused_mining_leaves_a_failed_run_and_nothing_else(ss_crm, small):
    ok = runs.run_mining(ss_crm, min_support=0.4, min_lift=0, raise_alerts=False)
    rules_before = count(ss_crm, Rule)
    with pytest.raises(MiningError, match=r"raise min_support to at least 0\.4"):
        runs.run_mining(ss_crm, min_support=0.2, raise_alerts=False)
    with ss_crm.db.session() as session:
        failed = session.scalars(select(MiningRun).order_by(MiningRun.id.desc())).first()
        assert failed.id > ok.id and failed.status == "failed"
        assert "fewer than 2 baskets" in failed.error
        assert failed.params["min_support"] == 0.2 and failed.finished_at is not None
        assert (failed.rules, failed.baskets, failed.baskets_capped) == (0, 5, 0)
        assert runs.current_run(session).id == ok.id
    assert count(ss_crm, Rule) == rules_before


def test_too_many_itemsets_fail_the_run(ss_crm, monkeypatch):
    from plugins.smart_sales import mining

    monkeypatch.setattr(mining, "MAX_ITEMSETS", 50)
    load_sku_baskets(ss_crm, [[f"s{i}" for i in range(10)]] * 4)
    with pytest.raises(MiningError, match="frequent itemsets"):
        runs.run_mining(ss_crm, min_support=0.5, max_length=10, raise_alerts=False)
    with ss_crm.db.session() as session:
        assert session.scalars(select(MiningRun.status)).all() == ["failed"]
        assert runs.current_run(session) is None
    assert count(ss_crm, Rule) == 0


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"min_support": 0.0}, "min_support"),
        ({"min_support": 1.5}, "min_support"),
        ({"min_confidence": 1.1}, "min_confidence"),
        ({"min_lift": -1.0}, "min_lift"),
        ({"max_length": 1}, "max_length"),
        ({"max_basket_size": 1}, "max_basket_size"),
    ],
)
def test_parameters_out_of_range_fail_the_run(ss_crm, values, field):
    with pytest.raises(MiningError, match=f"^{field}: "):
        runs.run_mining(ss_crm, raise_alerts=False, **values)
    with ss_crm.db.session() as session:
        run = session.scalars(select(MiningRun)).one()
    assert run.status == "failed" and run.error.startswith(f"{field}: ")
    assert run.params[field] == values[field]


def test_no_orders_is_an_empty_successful_run(ss_crm):
    run = runs.run_mining(ss_crm, raise_alerts=False)
    assert (run.status, run.baskets, run.itemsets, run.rules) == ("ok", 0, 0, 0)


def test_current_run_is_the_latest_successful_one(ss_crm, small):
    with ss_crm.db.session() as session:
        assert runs.current_run(session) is None
    first = runs.run_mining(ss_crm, min_support=0.4, raise_alerts=False)
    second = runs.run_mining(ss_crm, min_support=0.6, raise_alerts=False, started_by=None)
    with pytest.raises(MiningError):
        runs.run_mining(ss_crm, min_support=0.01, raise_alerts=False)
    with ss_crm.db.session() as session:
        assert runs.current_run(session).id == second.id > first.id


def test_started_by_and_dicts(ss_crm, small):
    mai = ss_crm.people["mai@example.com"]
    run = runs.run_mining(ss_crm, min_support=0.4, min_lift=0, started_by=mai,
                          raise_alerts=False)  # fmt: skip
    data = runs.run_as_dict(run)
    assert data["started_by"] == mai and data["capped"] == 0 and data["status"] == "ok"
    rule = stored_rules(ss_crm, run.id)[0]
    as_dict = runs.rule_as_dict(rule, muted=True)
    assert as_dict["antecedent"] == rule.antecedent and as_dict["key"] == rule.key
    assert as_dict["muted"] is True and as_dict["count"] == rule.count
    assert set(as_dict) >= {"support", "confidence", "lift", "leverage", "conviction"}


# --- mutes --------------------------------------------------------------------------------------


def test_mute_and_unmute(ss_crm, small):
    run = runs.run_mining(ss_crm, min_support=0.4, min_lift=0, raise_alerts=False)
    key = stored_rules(ss_crm, run.id)[0].key
    mai = ss_crm.people["mai@example.com"]
    with ss_crm.db.write() as session:
        muted = runs.mute(session, key, mai, "Khách sỉ mua theo lô")
        assert (muted.key, muted.muted_by, muted.reason) == (key, mai, "Khách sỉ mua theo lô")
    with ss_crm.db.write() as session:
        runs.mute(session, key, mai, "lý do khác")  # again: the reason changes
    with ss_crm.db.session() as session:
        assert session.get(MutedRule, key).reason == "lý do khác"
        assert runs.muted_keys(session) == {key}
        assert runs.muted_keys(session, [key, "1>2"]) == {key}
        assert runs.muted_keys(session, []) == set()
        audited = session.scalars(
            select(AuditLog.action).where(AuditLog.record_id == key).order_by(AuditLog.id)
        ).all()
    assert audited == ["create", "update"]
    with ss_crm.db.write() as session:
        assert runs.unmute(session, key) is True
        assert runs.unmute(session, key) is False
    assert count(ss_crm, MutedRule) == 0


@pytest.mark.parametrize("key", ["999>998", "not a key", "", "1,2"])
def test_mute_refuses_unknown_rules(ss_crm, small, key):
    runs.run_mining(ss_crm, min_support=0.4, raise_alerts=False)
    with ss_crm.db.write() as session, pytest.raises(NotFoundError):
        runs.mute(session, key, None)
    assert count(ss_crm, MutedRule) == 0


def test_a_mute_outlives_the_run(ss_crm, small):
    first = runs.run_mining(ss_crm, min_support=0.4, min_lift=0, raise_alerts=False)
    key = stored_rules(ss_crm, first.id)[0].key
    with ss_crm.db.write() as session:
        runs.mute(session, key, None, "")
    second = runs.run_mining(ss_crm, min_support=0.4, min_lift=0, raise_alerts=False)
    with ss_crm.db.session() as session:
        keys = [r.key for r in stored_rules(ss_crm, second.id)]
        assert key in keys and runs.muted_keys(session, keys) == {key}


# --- alerts after a run -------------------------------------------------------------------------


def one_customer_per_basket(crm: Any, owner: int | None) -> tuple[dict[str, int], list[int]]:
    """``SMALL`` as one order for each of five customers owned by ``owner`` (products without
    a category, so that only cross-sell applies); product ids by SKU and customer ids."""
    with crm.db.write() as session:
        products = add_products(session, "abcd", category=None)
        customers = []
        for i, basket in enumerate(SMALL):
            customer = add_customer(session, f"Khách hàng {i} Đặng", owner)
            add_orders(session, customer, [[products[s] for s in basket]], prefix=f"K{i}")
            customers.append(customer)
    return products, customers


def expected_offers(crm: Any, run_id: int, customers: list[int]) -> set[tuple[int, int]]:
    """(customer, product) pairs the run's unmuted rules offer: X bought, Y not."""
    bought = {c: set(b) for c, b in zip(customers, SMALL, strict=True)}
    with crm.db.session() as session:
        muted = runs.muted_keys(session)
    offers = set()
    for rule in stored_rules(crm, run_id):
        if rule.key in muted:
            continue
        for customer, skus in bought.items():
            if set(rule.antecedent) <= skus:
                offers.update(
                    (customer, pid)
                    for pid, sku in zip(rule.consequent_ids, rule.consequent, strict=True)
                    if sku not in skus
                )
    return offers


def cross_sells(crm: Any) -> set[tuple[int, int]]:
    from plugins.smart_sales.models import Alert

    with crm.db.session() as session:
        found = session.execute(
            select(Alert.customer_id, Alert.product_id).where(Alert.kind == "cross_sell")
        ).all()
    return {tuple(row) for row in found}


def test_a_run_raises_cross_sell_alerts_and_counts_them(ss_crm):
    from plugins.smart_sales.models import Alert

    an = ss_crm.people["an@example.com"]
    products, customers = one_customer_per_basket(ss_crm, an)
    run = runs.run_mining(ss_crm, min_support=0.4, min_lift=0)
    offers = expected_offers(ss_crm, run.id, customers)
    assert len(offers) >= 4 and cross_sells(ss_crm) == offers
    with ss_crm.db.session() as session:
        alerts = list(session.scalars(select(Alert)))
        assert runs.current_run(session).alerts_raised == len(alerts) == run.alerts_raised
    assert all(a.run_id == run.id and a.source == "mining" and a.owner_id == an for a in alerts)
    # the customer who bought a and c is offered b
    assert (customers[2], products["b"]) in offers
    # raising again from a second run duplicates nothing
    again = runs.run_mining(ss_crm, min_support=0.4, min_lift=0)
    assert again.alerts_raised == 0 and count(ss_crm, Alert) == len(alerts)


def test_no_alerts_when_asked_not_to(ss_crm):
    from plugins.smart_sales.models import Alert

    one_customer_per_basket(ss_crm, ss_crm.people["an@example.com"])
    run = runs.run_mining(ss_crm, min_support=0.4, min_lift=0, raise_alerts=False)
    assert run.alerts_raised == 0 and count(ss_crm, Alert) == 0


def test_a_muted_rule_raises_no_alerts(ss_crm):
    an = ss_crm.people["an@example.com"]
    products, customers = one_customer_per_basket(ss_crm, an)
    first = runs.run_mining(ss_crm, min_support=0.4, min_lift=0, raise_alerts=False)
    # Every rule offering b is muted: nobody is offered b; the other offers still come.
    offering_b = [r.key for r in stored_rules(ss_crm, first.id) if r.consequent == ["b"]]
    assert offering_b
    with ss_crm.db.write() as session:
        for key in offering_b:
            runs.mute(session, key, ss_crm.people["mai@example.com"], "hết hàng")
    second = runs.run_mining(ss_crm, min_support=0.4, min_lift=0)
    raised = cross_sells(ss_crm)
    assert raised == expected_offers(ss_crm, second.id, customers)
    assert raised and all(product != products["b"] for _, product in raised)
    # unmuted, the next run offers b to the customer who bought a and c
    with ss_crm.db.write() as session:
        for key in offering_b:
            runs.unmute(session, key)
    third = runs.run_mining(ss_crm, min_support=0.4, min_lift=0)
    assert third.alerts_raised >= 1
    assert (customers[2], products["b"]) in cross_sells(ss_crm)


def test_only_the_rules_of_the_latest_runs_are_kept(ss_crm, small):
    ss_crm.module_settings("smart_sales")["keep_rule_runs"] = 2
    made = [runs.run_mining(ss_crm, min_support=0.4, raise_alerts=False) for _ in range(3)]
    with ss_crm.db.session() as session:
        per_run = {
            run.id: session.scalar(select(func.count()).where(Rule.run_id == run.id))
            for run in made
        }
        assert session.scalar(select(func.count()).select_from(MiningRun)) == 3
    assert per_run[made[0].id] == 0
    assert per_run[made[1].id] == per_run[made[2].id] == made[2].rules > 0
