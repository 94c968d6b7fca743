"""Conversion: an order with the suggested product within ``conversion_days`` after the alert
converts it and credits the product's line amounts (churn: any order, its total); expired
alerts convert, dismissed ones do not, and crediting the same order twice credits once."""

from __future__ import annotations

import datetime as dt

import pytest

from plugins.operational import orders
from plugins.operational.models import Order
from plugins.smart_sales import alerts
from plugins.smart_sales.models import Alert
from tests.plugins.smart_sales.helpers import (
    AN,
    add_alert,
    customer,
    days_ago,
    now,
    order,
    product,
    user,
)


@pytest.fixture
def shop(ss_crm):
    """Hoa (An's) with an alert for Máy xay raised 10 days ago; products priced in VND."""
    with ss_crm.db.write() as session:
        ids = {
            "xay": product(session, ss_crm, "MAY-XAY", name="Máy xay", price=500_000),
            "noi": product(session, ss_crm, "NOI", name="Nồi", price=900_000),
            "hoa": customer(session, "Nguyễn Thị Hoa", ss_crm.people[AN]),
        }
        ids["alert"] = add_alert(
            session,
            customer_id=ids["hoa"],
            product_id=ids["xay"],
            owner_id=ss_crm.people[AN],
            raised_at=days_ago(10),
        )
    return ids


def _place(crm, customer_id: int, lines, *, at=None, status="placed") -> dict:
    """Place an order (no hooks) and return its ``order_placed`` payload."""
    with crm.db.write() as session:
        order_id = order(session, crm, customer_id, lines, at=at, status=status)
        made = session.get(Order, order_id)
        return orders.placed_payload(made, orders.lines_of(session, order_id))


def _credit(crm, payload: dict) -> list[int]:
    with crm.db.write() as session:
        return alerts.credit_order(crm, session, payload)


def _alert(crm, alert_id: int) -> Alert:
    with crm.db.session() as session:
        return session.get(Alert, alert_id)


def test_an_order_with_the_product_converts_and_credits(ss_crm, shop):
    lines = [
        orders.LineInput(shop["xay"], quantity=2, discount_minor=100_000),
        orders.LineInput(shop["noi"]),
        orders.LineInput(shop["xay"], quantity=1, unit_price_minor=450_000),
    ]
    payload = _place(ss_crm, shop["hoa"], lines)
    assert _credit(ss_crm, payload) == [shop["alert"]]
    alert = _alert(ss_crm, shop["alert"])
    assert (alert.state, alert.converted_order_id) == ("converted", payload["id"])
    # 2 x 500,000 - 100,000 + 450,000: the product's lines only, not the pan
    assert alert.credited_minor == 1_350_000
    assert alert.open_key is None and alert.closed_at is not None
    assert alert.version == 2
    # the same order again credits nothing more
    assert _credit(ss_crm, payload) == []
    assert _alert(ss_crm, shop["alert"]).credited_minor == 1_350_000
    # a second order does not convert it again either
    assert _credit(ss_crm, _place(ss_crm, shop["hoa"], [shop["xay"]])) == []


def test_an_order_without_the_product_converts_nothing(ss_crm, shop):
    assert _credit(ss_crm, _place(ss_crm, shop["hoa"], [shop["noi"]])) == []
    assert _alert(ss_crm, shop["alert"]).state == "new"


def test_only_within_the_window(ss_crm, shop):
    # placed 31 days after the alert was raised (10 days ago): too late
    late = _place(ss_crm, shop["hoa"], [shop["xay"]], at=now() + dt.timedelta(days=21))
    assert _credit(ss_crm, late) == []
    # placed before the alert was raised: not its doing
    early = _place(ss_crm, shop["hoa"], [shop["xay"]], at=days_ago(11))
    assert _credit(ss_crm, early) == []
    # 29 days after: converts
    inside = _place(ss_crm, shop["hoa"], [shop["xay"]], at=now() + dt.timedelta(days=19))
    assert _credit(ss_crm, inside) == [shop["alert"]]


def test_an_expired_alert_still_converts(ss_crm, shop):
    with ss_crm.db.write() as session:
        assert alerts.expire(ss_crm, session, now=now() + dt.timedelta(days=21)) == 1
    assert _alert(ss_crm, shop["alert"]).state == "expired"
    payload = _place(ss_crm, shop["hoa"], [shop["xay"]], at=now() + dt.timedelta(days=19))
    assert _credit(ss_crm, payload) == [shop["alert"]]
    assert _alert(ss_crm, shop["alert"]).state == "converted"


def test_a_dismissed_alert_does_not_convert(ss_crm, shop):
    with ss_crm.db.write() as session:
        alerts.dismiss(session, session.get(Alert, shop["alert"]), user(ss_crm, AN), "other")
    assert _credit(ss_crm, _place(ss_crm, shop["hoa"], [shop["xay"]])) == []
    alert = _alert(ss_crm, shop["alert"])
    assert (alert.state, alert.credited_minor, alert.converted_order_id) == ("dismissed", 0, None)


def test_an_acted_alert_converts(ss_crm, shop):
    with ss_crm.db.write() as session:
        alerts.act(session, session.get(Alert, shop["alert"]), user(ss_crm, AN))
    assert _credit(ss_crm, _place(ss_crm, shop["hoa"], [shop["xay"]])) == [shop["alert"]]


def test_cancelled_orders_convert_nothing(ss_crm, shop):
    payload = _place(ss_crm, shop["hoa"], [shop["xay"]], status="cancelled")
    assert _credit(ss_crm, payload) == []


def test_another_customers_order_converts_nothing(ss_crm, shop):
    with ss_crm.db.write() as session:
        other = customer(session, "Trần Văn Hùng")
    assert _credit(ss_crm, _place(ss_crm, other, [shop["xay"]])) == []


def test_a_churn_alert_converts_on_any_order_with_its_total(ss_crm, shop):
    with ss_crm.db.write() as session:
        churn = add_alert(
            session, customer_id=shop["hoa"], kind="churn", raised_at=days_ago(5), currency="VND"
        )
    payload = _place(ss_crm, shop["hoa"], {shop["noi"]: 2})
    assert _credit(ss_crm, payload) == [churn]
    alert = _alert(ss_crm, churn)
    assert (alert.state, alert.credited_minor) == ("converted", 1_800_000)


def test_each_order_converts_one_alert_per_product(ss_crm, shop):
    """An expired alert and the newer open one for the same product: the newer converts."""
    with ss_crm.db.write() as session:
        older = add_alert(
            session,
            customer_id=shop["hoa"],
            product_id=shop["xay"],
            state="expired",
            raised_at=days_ago(20),
        )
    assert _credit(ss_crm, _place(ss_crm, shop["hoa"], [shop["xay"]])) == [shop["alert"]]
    assert _alert(ss_crm, older).state == "expired"
