"""The analytical checklist items pass and fail for the right reasons, with the numbers found."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import insert, update

from core import checks
from core.customers.models import Customer
from core.db import utcnow
from plugins.analytical.models import Run
from plugins.analytical.refresh import step_names
from plugins.operational.models import Order, OrderLine, Product

ENV = {"CRM_LOAD_PLUGINS": "operational,analytical"}


def _status(crm, item_id: str) -> tuple[str, str]:
    result = next(r for r in checks.run(crm, deploy=True) if r.id == item_id)
    return result.status, result.detail


def _customer(session, n: int) -> int:
    now = utcnow()
    return session.execute(
        insert(Customer).values(
            kind="person",
            display_name=f"C{n}",
            search_key=f"c{n}",
            archived=False,
            created_at=now,
            updated_at=now,
            version=1,
        )
    ).inserted_primary_key[0]


def _order(session, customer: int, placed: dt.datetime, status="delivered", currency="VND"):
    return session.execute(
        insert(Order).values(
            ref=f"R{customer}-{placed.isoformat()}-{status}-{currency}",
            customer_id=customer,
            placed_at=placed,
            status=status,
            currency=currency,
            total_minor=100_000,
            created_at=utcnow(),
            version=1,
        )
    ).inserted_primary_key[0]


def _at(day: str, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=dt.UTC)


def test_clv_history_counts_repeat_customers_by_distinct_utc_days(an_crm, make_crm):
    assert "orders span 0 days" in _status(an_crm, "analytical.W001")[1]
    orders = {  # customer -> (placed, status)
        1: [(_at("2026-01-10", 23, 30), "delivered"), (_at("2026-01-11", 0, 30), "paid")],
        2: [(_at("2026-02-01", 0, 10), "paid"), (_at("2026-02-01", 23, 50), "delivered")],
        3: [(_at("2026-03-01"), "delivered"), (_at("2026-05-01"), "cancelled")],
        4: [(_at("2025-12-01"), "delivered"), (_at("2026-04-15"), "shipped")],
        5: [(_at("2026-06-01"), "returned")],
    }
    with an_crm.db.write() as session:
        for n, placed_list in orders.items():
            cid = _customer(session, n)
            for placed, status in placed_list:
                _order(session, cid, placed, status)
    counted = [
        [p for p, s in placed_list if s not in ("cancelled", "returned")]
        for placed_list in orders.values()
    ]
    repeaters = sum(len({p.date() for p in days}) >= 2 for days in counted)
    everything = [p for days in counted for p in days]
    span = (max(everything) - min(everything)).days
    assert (repeaters, span) == (2, 135)  # customers 1 and 4; 2025-12-01 .. 2026-04-15
    status, detail = _status(an_crm, "analytical.W001")  # defaults: 100 repeaters, 90 days
    assert status == "open"
    assert f"orders span {span} days" in detail and f"{repeaters} customers bought" in detail
    enough = make_crm(
        load_plugins="operational,analytical",
        analytical_clv_min_repeat_customers=str(repeaters),
        analytical_clv_min_history_days=str(span),
    )
    assert _status(enough, "analytical.W001")[0] == "ok"
    short = make_crm(
        load_plugins="operational,analytical",
        analytical_clv_min_repeat_customers=str(repeaters),
        analytical_clv_min_history_days=str(span + 1),
    )
    assert _status(short, "analytical.W001")[0] == "open"


def test_product_costs_count_recent_lines_without_cost(an_crm):
    now = utcnow()
    with an_crm.db.write() as session:
        cid = _customer(session, 1)
        products = {}
        for sku, cost in (("COSTED", 40_000), ("FREE", None)):
            products[sku] = session.execute(
                insert(Product).values(
                    sku=sku,
                    name=sku,
                    price_minor=90_000,
                    cost_minor=cost,
                    currency="VND",
                    active=True,
                    created_at=now,
                    updated_at=now,
                    version=1,
                )
            ).inserted_primary_key[0]
        lines = []  # (order placed, status, product)
        for days_ago, status, product in (
            (10, "delivered", products["COSTED"]),
            (20, "delivered", products["FREE"]),
            (30, "paid", products["FREE"]),
            (40, "delivered", None),  # a line without a product has no cost either
            (50, "cancelled", products["FREE"]),  # not counted
            (400, "delivered", products["FREE"]),  # older than 12 months
        ):
            oid = _order(session, cid, now - dt.timedelta(days=days_ago), status)
            session.execute(
                insert(OrderLine).values(
                    order_id=oid,
                    product_id=product,
                    quantity=1,
                    unit_price_minor=90_000,
                    amount_minor=90_000,
                )
            )
            lines.append((days_ago, status, product))
    recent = [line for line in lines if line[0] < 365 and line[1] != "cancelled"]
    missing = sum(1 for line in recent if line[2] != products["COSTED"])
    status, detail = _status(an_crm, "analytical.W002")
    assert status == "open" and f"{missing} of {len(recent)} order lines" in detail
    assert (missing, len(recent)) == (3, 4)
    with an_crm.db.write() as session:
        session.execute(update(Product).values(cost_minor=1_000))
        session.execute(update(OrderLine).values(product_id=products["COSTED"]))
    assert _status(an_crm, "analytical.W002")[0] == "ok"


def test_currency_check_lists_other_currencies(an_crm):
    with an_crm.db.write() as session:
        cid = _customer(session, 1)
        _order(session, cid, _at("2026-01-01"))
    assert _status(an_crm, "analytical.W003")[0] == "ok"
    with an_crm.db.write() as session:
        cid = _customer(session, 2)
        _order(session, cid, _at("2026-01-02"), currency="USD")
        _order(session, cid, _at("2026-01-03"), currency="USD")
        _order(session, cid, _at("2026-01-04"), currency="EUR")
        _order(session, cid, _at("2026-01-05"), "cancelled", currency="JPY")  # not counted
    status, detail = _status(an_crm, "analytical.W003")
    assert status == "open" and "(EUR: 1, USD: 2)" in detail and "JPY" not in detail


def test_review_is_an_attestation_through_crm_check(an_crm, cli):
    done = cli("check", "--module", "analytical", "--format", "json", **ENV)
    results = {r["id"]: r for r in json.loads(done.output)}
    assert results["analytical.W004"]["status"] == "open"
    assert results["analytical.W004"]["attestation"] is True
    assert done.exit_code == 0  # only warnings are open: the default fail level is error
    ack = cli(
        "check",
        "--ack",
        "analytical.W004",
        "--by",
        "admin@example.com",
        "--note",
        "Lan reviews segments and campaign uplift every month",
        **ENV,
    )
    assert ack.exit_code == 0, ack.output
    assert _status(an_crm, "analytical.W004")[0] == "attested"


def test_snapshot_freshness_names_missing_and_stale_kinds(an_crm):
    status, detail = _status(an_crm, "analytical.W005")
    assert status == "open" and f"never computed: {', '.join(step_names())}" in detail
    assert "crm analytics refresh" in detail
    now = utcnow()
    with an_crm.db.write() as session:
        for kind in step_names():
            session.add(Run(kind=kind, as_of=now.date(), rows=0, computed_at=now))
    assert _status(an_crm, "analytical.W005")[0] == "ok"
    with an_crm.db.write() as session:  # default max age 36 hours
        session.execute(
            update(Run)
            .where(Run.kind.in_(("profit", "kpi")))
            .values(computed_at=now - dt.timedelta(hours=37))
        )
        session.add(Run(kind="clv", as_of=dt.date(2020, 1, 1), rows=0, computed_at=now))
    status, detail = _status(an_crm, "analytical.W005")
    assert status == "open" and "older than 36 hours: profit, kpi" in detail
    assert "never computed" not in detail and "clv" not in detail
    with an_crm.db.write() as session:  # a newer run of the kind makes it fresh again
        session.add(Run(kind="profit", as_of=now.date(), rows=0, computed_at=now))
        session.add(Run(kind="kpi", as_of=now.date(), rows=0, computed_at=now))
    assert _status(an_crm, "analytical.W005")[0] == "ok"


def test_invalid_settings_are_an_error_that_fails_crm_check(an_crm, make_crm, cli):
    assert _status(an_crm, "analytical.E006")[0] == "ok"
    broken = make_crm(load_plugins="operational,analytical", analytical_clv_unit="month")
    status, detail = _status(broken, "analytical.E006")
    assert status == "open" and "CRM_ANALYTICAL_CLV_UNIT" in detail and "month" in detail
    done = cli(
        "check",
        "--module",
        "analytical",
        "--format",
        "json",
        CRM_ANALYTICAL_CLV_UNIT="month",
        **ENV,
    )
    assert done.exit_code == 1
    results = {r["id"]: r for r in json.loads(done.output)}
    assert results["analytical.E006"]["status"] == "open"
    assert "day, week" in results["analytical.E006"]["detail"]
