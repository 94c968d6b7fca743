"""``crm demo`` with the smart-selling module: products bought together, rules, alerts in every
state for the demo salespeople, and nothing duplicated when loaded twice."""

from __future__ import annotations

import html

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core.customers import demo_data
from core.customers.models import Customer
from core.models import User
from core.web.app import create_app
from plugins.operational import demo as operational_demo
from plugins.operational.models import Order, OrderLine, Product
from plugins.smart_sales import demo
from plugins.smart_sales.alerts import tier_rank
from plugins.smart_sales.models import DISMISS_REASONS, OPEN_STATES, Alert, MiningRun, Rule
from tests.web.conftest import Browser

SEED = 7


def _fingerprint(crm) -> tuple:
    with crm.db.session() as session:
        counts = [
            session.scalar(select(func.count()).select_from(model))
            for model in (Product, Order, OrderLine, MiningRun, Rule, Alert)
        ]
        states = session.execute(select(Alert.state, func.count()).group_by(Alert.state))
        return (*counts, tuple(states.all()))


def test_demo_mines_rules_and_leaves_alerts_in_every_state_once(ss_crm):
    demo_data.load(ss_crm, 150, seed=SEED)
    operational_demo.load(ss_crm, seed=SEED)
    said = demo.load(ss_crm, seed=SEED)
    assert said.startswith("10 products, ")
    assert "mining run #1: " in said and "alerts (new " in said

    with ss_crm.db.session() as session:
        products = {p.sku: p for p in session.scalars(select(Product))}
        assert products["PHIN-INOX"].upgrade_to_id == products["PHIN-QUA"].id
        assert products["AM-TRA-BT"].name == "Ấm trà gốm Bát Tràng"
        assert {products[f"MAT-ONG-{s}"].category for s in ("250", "500", "1L")} == {"Mật ong"}
        assert all(p.cost_minor for p in products.values())  # margins are known

        run = session.scalars(select(MiningRun)).one()
        assert run.status == "ok" and run.rules > 0 and run.alerts_raised > 0
        rules = list(session.scalars(select(Rule).where(Rule.run_id == run.id)))
        sides = {(tuple(r.antecedent), tuple(r.consequent)) for r in rules}
        assert (("AM-TRA-BT",), ("CHEN-MEN-LAM",)) in sides  # the planted tea set
        assert (("PHIN-INOX",), ("SUA-DAC",)) in sides  # filter and condensed milk

        alerts = list(session.scalars(select(Alert)))
        kinds = {a.kind for a in alerts}
        assert {"cross_sell", "up_sell"} <= kinds
        assert all(a.currency == "VND" for a in alerts)
        open_pairs = [(a.customer_id, a.product_id) for a in alerts if a.state in OPEN_STATES]
        assert len(open_pairs) == len(set(open_pairs))  # one open alert per customer+product

        sellers = dict(
            session.execute(
                select(User.email, User.id).where(
                    User.email.in_(("sales1@demo.example", "sales2@demo.example"))
                )
            ).all()
        )
        assert len(sellers) == 2
        for email, seller in sellers.items():
            states = {a.state for a in alerts if a.owner_id == seller}
            assert states == {"new", "seen", "acted", "dismissed", "expired", "converted"}, email
            won = [a for a in alerts if a.owner_id == seller and a.state == "converted"]
            assert any(a.acted_at and a.acted_by == seller and a.product_id for a in won)

        dismissed = [a for a in alerts if a.state == "dismissed"]
        assert all(a.dismiss_reason in DISMISS_REASONS and a.dismiss_note for a in dismissed)
        assert all(a.open_key is None and a.closed_at for a in dismissed)
        for alert in (a for a in alerts if a.state == "converted"):
            assert alert.closed_at is not None
            order = session.get(Order, alert.converted_order_id)
            assert order.customer_id == alert.customer_id
            if alert.kind == "churn":  # any order wins them back: what offers did not take
                offers = session.scalar(
                    select(func.coalesce(func.sum(Alert.credited_minor), 0)).where(
                        Alert.converted_order_id == order.id, Alert.kind != "churn"
                    )
                )
                assert alert.credited_minor == max(order.total_minor - offers, 0)
                continue
            assert alert.credited_minor > 0
            lines = session.scalars(
                select(OrderLine.amount_minor).where(
                    OrderLine.order_id == order.id, OrderLine.product_id == alert.product_id
                )
            ).all()
            assert alert.credited_minor == sum(lines)
        expired = [a for a in alerts if a.state == "expired"]
        assert all(a.expires_at < a.closed_at for a in expired)

    first = _fingerprint(ss_crm)
    assert demo.load(ss_crm, seed=SEED) == "already loaded"
    assert operational_demo.load(ss_crm, seed=SEED) == "already loaded"
    assert _fingerprint(ss_crm) == first

    # the demo login of a salesperson shows an inbox and alert figures with something in them
    client = Browser(TestClient(create_app(ss_crm), base_url="http://testserver"))
    assert client.login("sales1@demo.example", demo_data.DEMO_PASSWORD).status_code == 303
    mine = Alert.owner_id == sellers["sales1@demo.example"]
    with ss_crm.db.session() as session:
        waiting = session.scalar(
            select(func.count()).select_from(Alert).where(mine, Alert.state.in_(("new", "seen")))
        )
        top = session.scalar(
            select(Customer.display_name)
            .join(Alert, Alert.customer_id == Customer.id)
            .where(mine, Alert.state.in_(OPEN_STATES))
            .order_by(tier_rank(), Alert.expected_value_minor.desc(), Alert.id)
            .limit(1)
        )
    assert client.client.get("/smart_sales/inbox/count").json() == {"count": waiting}
    inbox = client.get("/smart_sales/inbox")
    assert inbox.status_code == 200 and html.escape(top) in inbox.text
    figures = client.client.get("/api/smart_sales/performance/alerts?by=owner").json()
    assert figures["rows"] and sum(r["converted"] for r in figures["rows"]) >= 1


def test_demo_on_its_own_loads_the_core_demo_customers_it_needs(ss_crm):
    said = demo.load(ss_crm, seed=3)  # no customers, no operational demo
    assert "mining run #1" in said
    with ss_crm.db.session() as session:
        assert session.scalar(select(Product.id).where(Product.sku == "CF-500")) is None
        rules = list(session.scalars(select(Rule)))
        named = {sku for r in rules for sku in (*r.antecedent, *r.consequent)}
        assert rules and named <= {p[0] for p in demo.PRODUCTS}
        owners = set(session.scalars(select(Alert.owner_id)))
        demo_staff = set(session.scalars(select(User.id).where(User.email.like("%@demo.example"))))
        assert owners and owners <= demo_staff
    first = _fingerprint(ss_crm)
    assert demo.load(ss_crm, seed=3) == "already loaded"
    assert _fingerprint(ss_crm) == first
