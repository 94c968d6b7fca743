"""Alerts and the rest of the CRM: ``order_placed`` (credit, then raise), notifications through
the collaborative inbox (without importing it), the record type, the timeline, and merges."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from core import records, timeline
from core.customers import identify
from core.customers.models import Customer
from plugins.operational.models import Order
from plugins.smart_sales import alerts
from plugins.smart_sales.models import Alert
from tests.plugins.smart_sales.conftest import SMART, _crm
from tests.plugins.smart_sales.helpers import (
    AN,
    CHI,
    add_alert,
    add_run,
    alerts_of,
    customer,
    days_ago,
    order,
    product,
    user,
)


def _shop(crm) -> dict[str, int]:
    """Products A, B, C, D; rules {A, B} -> C (42 %) and C -> D (50 %); Hoa (An's) bought A
    and B."""
    with crm.db.write() as session:
        ids = {
            "A": product(session, crm, "NOI-COM", name="Nồi cơm điện", price=900_000),
            "B": product(session, crm, "CHAO", name="Chảo chống dính", price=150_000),
            "C": product(session, crm, "MAY-XAY", name="Máy xay", price=500_000, cost=300_000),
            "D": product(session, crm, "BEP", name="Bếp từ", price=1_200_000, cost=1_000_000),
            "hoa": customer(session, "Nguyễn Thị Hoa", crm.people[AN]),
        }
        order(session, crm, ids["hoa"], [ids["A"], ids["B"]], at=days_ago(40))
        add_run(
            session,
            [
                ([ids["A"], ids["B"]], [ids["C"]], 0.05, 0.42, 3.1),
                ([ids["C"]], [ids["D"]], 0.05, 0.5, 2.0),
            ],
        )
    return ids


def _generate(crm, **kwargs) -> int:
    with crm.db.write() as session:
        return alerts.generate(crm, session, **kwargs)


def test_an_order_converts_its_alert_then_raises_the_next(ss_crm):
    shop = _shop(ss_crm)
    assert _generate(ss_crm) == 1
    with ss_crm.db.write() as session:
        order_id = order(session, ss_crm, shop["hoa"], {shop["C"]: 2}, notify=True)
        # nothing happens before the commit
        assert [a.state for a in alerts_of(session, shop["hoa"])] == ["new"]
    with ss_crm.db.session() as session:
        found = alerts_of(session, shop["hoa"])
    assert [(a.product_id, a.state, a.source) for a in found] == [
        (shop["C"], "converted", "generate"),
        (shop["D"], "new", "order"),
    ]
    assert (found[0].converted_order_id, found[0].credited_minor) == (order_id, 1_000_000)
    # D's alert: 50 % of a 200,000 margin
    assert found[1].expected_value_minor == 100_000


def test_an_order_counts_its_money_once_across_its_alerts(ss_crm):
    """Placed through the operational module: the offer gets its product's line, the churn
    alert what is left of the total, and the two credits add up to the order's total."""
    shop = _shop(ss_crm)
    assert _generate(ss_crm, kinds=["cross_sell"]) == 1
    with ss_crm.db.write() as session:
        churn = add_alert(
            session,
            customer_id=shop["hoa"],
            kind="churn",
            owner_id=ss_crm.people[AN],
            raised_at=days_ago(2),
        )
        order_id = order(session, ss_crm, shop["hoa"], {shop["C"]: 1, shop["A"]: 1}, notify=True)
    with ss_crm.db.session() as session:
        total = session.get(Order, order_id).total_minor
        credited = {
            a.kind: a.credited_minor for a in alerts_of(session, converted_order_id=order_id)
        }
        assert session.get(Alert, churn).state == "converted"
    assert total == 1_400_000
    assert credited == {"cross_sell": 500_000, "churn": 900_000}
    assert sum(credited.values()) == total


def test_an_order_raises_alerts_for_its_customer_only(ss_crm):
    shop = _shop(ss_crm)
    with ss_crm.db.write() as session:
        other = customer(session, "Trần Văn Hùng")
        order(session, ss_crm, other, [shop["A"], shop["B"]], at=days_ago(3))
    with ss_crm.db.write() as session:
        order(session, ss_crm, shop["hoa"], [shop["A"]], notify=True)
    with ss_crm.db.session() as session:
        assert [a.customer_id for a in alerts_of(session)] == [shop["hoa"]]


def test_a_failure_in_the_hook_does_not_undo_the_order(make_crm, caplog):
    crm = _crm(lambda **kw: make_crm(**kw, smart_sales_conversion_days="0"), SMART)
    shop = _shop(crm)
    with caplog.at_level(logging.ERROR), crm.db.write() as session:
        order_id = order(session, crm, shop["hoa"], [shop["C"]], notify=True)
    with crm.db.session() as session:
        assert session.get(Order, order_id) is not None
        assert alerts_of(session) == []
    assert "alerts for order" in caplog.text
    assert "conversion_days" in caplog.text


def _notifications(crm, email: str) -> list:
    from plugins.collaborative.models import Notification

    with crm.db.session() as session:
        return list(
            session.scalars(
                select(Notification)
                .where(Notification.user_id == crm.people[email])
                .order_by(Notification.id)
            )
        )


def test_new_alerts_reach_the_owners_inbox_top_five_only(every_crm):
    crm = every_crm
    with crm.db.write() as session:
        item = product(session, crm, "TRA", name="Trà Ô Long", price=1_000_000)
        ids = []
        for i in range(7):
            cid = customer(session, f"Khách {i}", crm.people[AN])
            ids.append(cid)
            add_alert(
                session,
                customer_id=cid,
                product_id=item,
                owner_id=crm.people[AN],
                state="dismissed",
                closed_at=days_ago(200),
            )
    with crm.db.write() as session:
        lan = customer(session, "Lê Thị Lan", crm.people[CHI])
        other = product(session, crm, "BANH", name="Bánh", price=10_000)
        for i, cid in enumerate([*ids, lan]):
            order(session, crm, cid, {other: i + 1})
        add_run(session, [([other], [item], 0.1, 0.5, 2.0)])
    # the same expected value for all: ties go to the first raised
    assert _generate(crm, kinds=["cross_sell"]) == 8
    with crm.db.session() as session:
        raised = {a.customer_id: a.id for a in alerts_of(session, state="new")}
    told = _notifications(crm, AN)
    assert len(told) == 5
    assert [n.record_id for n in told] == sorted(raised[cid] for cid in ids)[:5]
    first = told[0]
    assert (first.record_type, first.label) == ("smart_sales.alert", "Sales alert")
    assert first.title == "Trà Ô Long · Khách 0"
    assert first.url == f"/smart_sales/alerts/{first.record_id}"
    assert [n.record_id for n in _notifications(crm, CHI)] == [raised[lan]]


def test_a_conversion_reaches_the_owner(every_crm):
    crm = every_crm
    shop = _shop(crm)
    _generate(crm)
    with crm.db.write() as session:
        order(session, crm, shop["hoa"], [shop["C"]], notify=True)
    labels = [(n.label, n.title) for n in _notifications(crm, AN)]
    assert ("Sales alert converted", "Máy xay · Nguyễn Thị Hoa") in labels
    assert ("Sales alert", "Máy xay · Nguyễn Thị Hoa") in labels
    assert ("Sales alert", "Bếp từ · Nguyễn Thị Hoa") in labels


def test_smart_sales_does_not_import_collaborative():
    import pathlib

    folder = pathlib.Path(alerts.__file__).parent
    for source in folder.glob("*.py"):
        assert "plugins.collaborative" not in source.read_text(), source.name


def test_the_alert_is_a_record_type(ss_crm):
    shop = _shop(ss_crm)
    _generate(ss_crm)
    kind = records.record_types(ss_crm)["smart_sales.alert"]
    assert (kind.label, kind.customer_column, kind.resource) == (
        "Sales alert",
        "customer_id",
        "alert",
    )
    with ss_crm.db.session() as session:
        [alert] = alerts_of(session)
        assert kind.link(alert.id) == f"/smart_sales/alerts/{alert.id}"
        assert records.can_see(ss_crm, session, user(ss_crm, AN), kind, alert.id)
        assert not records.can_see(ss_crm, session, user(ss_crm, CHI), kind, alert.id)
        assert shop["hoa"] == alert.customer_id


def test_the_timeline_shows_alerts_raised_and_converted(ss_crm):
    shop = _shop(ss_crm)
    _generate(ss_crm)
    with ss_crm.db.write() as session:
        order(session, ss_crm, shop["hoa"], [shop["C"]], notify=True)
    customers = select(Customer.id)
    with ss_crm.db.session() as session:
        entries = timeline.merge(
            ss_crm, session, user(ss_crm, AN), customers, kinds=["alert"], limit=10
        )
        hidden = timeline.merge(ss_crm, session, user(ss_crm, CHI), customers, kinds=["alert"])
    # converted first, then the next alert raised in the same transaction
    assert [(e.label, e.title) for e in entries] == [
        ("Sales alert raised", "Offer Bếp từ"),
        ("Sales alert converted", "Offer Máy xay"),
        ("Sales alert raised", "Offer Máy xay"),
    ]
    converted = next(e for e in entries if e.label == "Sales alert converted")
    assert converted.detail == "₫500,000"  # An reads English
    raised = [e for e in entries if e.label == "Sales alert raised"][-1]
    assert raised.detail.startswith("42% of customers who bought")
    assert raised.record_type == "smart_sales.alert" and raised.customer_id == shop["hoa"]
    assert hidden == []


def test_merging_customers_moves_their_alerts(ss_crm):
    with ss_crm.db.write() as session:
        c = product(session, ss_crm, "C")
        d = product(session, ss_crm, "D")
        survivor = customer(session, "Nguyễn Thị Hoa")
        merged = customer(session, "Nguyen Thi Hoa")
        kept = add_alert(session, customer_id=survivor, product_id=c)
        twin = add_alert(session, customer_id=merged, product_id=c)
        moved = add_alert(session, customer_id=merged, product_id=d, state="acted")
        churn = add_alert(session, customer_id=merged, kind="churn")
        closed = add_alert(session, customer_id=merged, product_id=c, state="expired")
    with ss_crm.db.write() as session:
        identify.merge(
            session, ss_crm, session.get(Customer, survivor), session.get(Customer, merged)
        )
    with ss_crm.db.session() as session:
        found = {a.id: a for a in alerts_of(session)}
    assert {a.customer_id for a in found.values()} == {survivor}
    assert found[kept].open_key == f"{survivor}:{c}" and found[kept].state == "new"
    assert (found[twin].state, found[twin].open_key) == ("dismissed", None)
    assert (found[twin].dismiss_reason, found[twin].dismiss_note) == ("other", "merged")
    assert (found[moved].state, found[moved].open_key) == ("acted", f"{survivor}:{d}")
    assert found[churn].open_key == f"{survivor}:churn"
    assert (found[closed].state, found[closed].open_key) == ("expired", None)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_alert_rows_carry_no_dangling_keys(ss_crm):
    """An open alert's key names its own customer and product (checked over a generation)."""
    _shop(ss_crm)
    _generate(ss_crm)
    with ss_crm.db.session() as session:
        for alert in session.scalars(select(Alert)):
            assert alert.open_key == alerts.alert_key(alert.customer_id, alert.product_id)
