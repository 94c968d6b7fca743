"""Conversion: an order with the suggested product within ``conversion_days`` after the alert
converts it and credits the product's line amounts (churn: any order, what the offers left of
its total, so that the order's money counts once); expired alerts convert, dismissed ones do
not, only the latest alert raised before the order may convert, only in the order's currency,
crediting the same order twice credits once, and a concurrent change of the alert never fails
the credit."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import text

from plugins.operational import orders
from plugins.operational.models import Order
from plugins.smart_sales import alerts, performance
from plugins.smart_sales.models import Alert
from tests.plugins.smart_sales.conftest import SMART, _crm
from tests.plugins.smart_sales.helpers import (
    ADMIN,
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


# --- one order, its money once -------------------------------------------------------------------


def _churn(crm, customer_id: int, *, days: float = 5, **values) -> int:
    with crm.db.write() as session:
        return add_alert(
            session,
            customer_id=customer_id,
            kind="churn",
            raised_at=days_ago(days),
            currency="VND",
            **values,
        )


def test_an_offer_and_a_churn_alert_share_the_orders_money(ss_crm, shop):
    """The offer gets its product's lines, the churn alert the rest: the order counts once."""
    churn = _churn(ss_crm, shop["hoa"], owner_id=ss_crm.people[AN])
    payload = _place(ss_crm, shop["hoa"], {shop["xay"]: 1, shop["noi"]: 2})
    assert payload["total_minor"] == 2_300_000
    assert _credit(ss_crm, payload) == [shop["alert"], churn]
    assert _alert(ss_crm, shop["alert"]).credited_minor == 500_000
    assert _alert(ss_crm, churn).credited_minor == 1_800_000  # not 2,300,000 again
    assert _credit(ss_crm, payload) == []
    with ss_crm.db.session() as session:
        figures = performance.alert_performance(
            ss_crm,
            session,
            user(ss_crm, ADMIN),
            start=days_ago(40).date(),
            end=now().date(),
        )
    assert figures["totals"]["converted"] == 2
    assert figures["totals"]["credited_minor"] == payload["total_minor"]


def test_a_churn_alert_converts_with_nothing_left_to_credit(ss_crm, shop):
    """Hoa came back (the churn alert converts), but the offer already holds all the money."""
    churn = _churn(ss_crm, shop["hoa"])
    payload = _place(ss_crm, shop["hoa"], {shop["xay"]: 3})
    assert _credit(ss_crm, payload) == [shop["alert"], churn]
    assert _alert(ss_crm, shop["alert"]).credited_minor == 1_500_000
    churned = _alert(ss_crm, churn)
    assert (churned.state, churned.credited_minor) == ("converted", 0)


# --- only the latest alert ----------------------------------------------------------------------


def test_an_older_alert_never_converts_after_a_newer_one(ss_crm, shop):
    """Raised again after it expired: the new alert converts, and a second order does not
    convert the old one in its place."""
    with ss_crm.db.write() as session:
        older = add_alert(
            session,
            customer_id=shop["hoa"],
            product_id=shop["xay"],
            state="expired",
            raised_at=days_ago(20),
        )
    assert _credit(ss_crm, _place(ss_crm, shop["hoa"], [shop["xay"]])) == [shop["alert"]]
    assert _credit(ss_crm, _place(ss_crm, shop["hoa"], [shop["xay"]])) == []
    old = _alert(ss_crm, older)
    assert (old.state, old.converted_order_id, old.credited_minor) == ("expired", None, 0)


def test_a_dismissed_newer_alert_keeps_the_older_one_from_converting(ss_crm, shop):
    with ss_crm.db.write() as session:
        older = add_alert(
            session,
            customer_id=shop["hoa"],
            product_id=shop["xay"],
            state="expired",
            raised_at=days_ago(20),
        )
        alerts.dismiss(session, session.get(Alert, shop["alert"]), user(ss_crm, AN), "other")
    older_churn = _churn(ss_crm, shop["hoa"], days=25, state="expired")
    _churn(ss_crm, shop["hoa"], days=3, state="dismissed")
    assert _credit(ss_crm, _place(ss_crm, shop["hoa"], [shop["xay"], shop["noi"]])) == []
    assert _alert(ss_crm, older).state == "expired"
    assert _alert(ss_crm, older_churn).state == "expired"


def test_a_conversion_window_longer_than_the_alerts_life(make_crm):
    """conversion_days 60, alert_days 30: the alert raised 45 days ago expired, the one raised
    again 5 days ago converts; the old one never does, even for a later order."""
    crm = _crm(lambda **kw: make_crm(**kw, smart_sales_conversion_days="60"), SMART)
    with crm.db.write() as session:
        xay = product(session, crm, "MAY-XAY", name="Máy xay", price=500_000)
        hoa = customer(session, "Nguyễn Thị Hoa", crm.people[AN])
        old = add_alert(session, customer_id=hoa, product_id=xay, raised_at=days_ago(45))
    with crm.db.write() as session:
        assert alerts.expire(crm, session) == 1
        new = add_alert(session, customer_id=hoa, product_id=xay, raised_at=days_ago(5))
    assert _credit(crm, _place(crm, hoa, [xay])) == [new]
    assert _credit(crm, _place(crm, hoa, [xay])) == []
    assert _alert(crm, old).state == "expired"


def test_the_latest_alert_raised_before_the_order_converts(ss_crm, shop):
    """An order placed (back-dated) between two alerts converts the older; the newer one was
    raised after it and stays open."""
    with ss_crm.db.write() as session:
        older = add_alert(
            session,
            customer_id=shop["hoa"],
            product_id=shop["noi"],
            state="expired",
            raised_at=days_ago(20),
        )
        newer = add_alert(
            session, customer_id=shop["hoa"], product_id=shop["noi"], raised_at=days_ago(2)
        )
    payload = _place(ss_crm, shop["hoa"], [shop["noi"]], at=days_ago(5))
    assert _credit(ss_crm, payload) == [older]
    assert _alert(ss_crm, newer).state == "new"


# --- currency -------------------------------------------------------------------------------------


def _place_in(crm, customer_id: int, currency: str, lines) -> dict:
    """Place an order in ``currency`` (no hooks) and return its ``order_placed`` payload."""
    with crm.db.write() as session:
        queued = list(session.info.get("crm_events", []))
        made = orders.create_order(
            session, crm, customer_id=customer_id, lines=lines, currency_code=currency
        )
        session.info["crm_events"] = queued
        return orders.placed_payload(made, orders.lines_of(session, made.id))


def test_an_order_converts_only_alerts_in_its_currency(ss_crm, shop):
    churn = _churn(ss_crm, shop["hoa"])
    dollars = _place_in(
        ss_crm, shop["hoa"], "USD", [orders.LineInput(shop["xay"], unit_price_minor=2_000)]
    )
    assert dollars["currency"] == "USD"
    assert _credit(ss_crm, dollars) == []
    assert (_alert(ss_crm, shop["alert"]).state, _alert(ss_crm, churn).state) == ("new", "new")
    dong = _place_in(ss_crm, shop["hoa"], "VND", [orders.LineInput(shop["xay"])])
    assert _credit(ss_crm, dong) == [shop["alert"], churn]
    converted = _alert(ss_crm, shop["alert"])
    assert (converted.currency, converted.credited_minor) == ("VND", 500_000)


# --- concurrent changes -----------------------------------------------------------------------


def test_a_stale_copy_of_the_alert_does_not_fail_the_credit(ss_crm, shop):
    """The session holds the alert as it was (new, version 1) when expiry closes it behind
    the ORM's back: the credit still converts it, and the copy reads the truth afterwards."""
    future = now() + dt.timedelta(days=21)
    payload = _place(ss_crm, shop["hoa"], [shop["xay"]], at=future - dt.timedelta(days=2))
    with ss_crm.db.write() as session:
        held = session.get(Alert, shop["alert"])
        assert (held.state, held.version) == ("new", 1)
        assert alerts.expire(ss_crm, session, now=future) == 1
        assert alerts.credit_order(ss_crm, session, payload) == [shop["alert"]]
        assert (held.state, held.version, held.credited_minor) == ("converted", 3, 500_000)
    alert = _alert(ss_crm, shop["alert"])
    assert (alert.state, alert.version, alert.converted_order_id) == ("converted", 3, payload["id"])


def _wait_until_blocked(crm, seconds: float = 10) -> None:
    """Wait until another transaction waits for a lock (PostgreSQL); SQLite's writers queue
    on ``BEGIN IMMEDIATE``, which cannot be observed, so give the thread a moment there."""
    if crm.db.dialect != "postgresql":
        time.sleep(0.3)
        return
    deadline = time.monotonic() + seconds
    with crm.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        while time.monotonic() < deadline:
            if conn.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar():
                return
            time.sleep(0.02)
    raise AssertionError("the second transaction never waited for the first")


def _in_thread(target, results: dict, name: str) -> threading.Thread:
    def run() -> None:
        try:
            results[name] = target()
        except Exception as exc:  # the test asserts on it
            results[name] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_dismissal_committed_first_wins_over_the_order(ss_crm, shop):
    """The owner dismisses while the order is credited: the dismissal holds its transaction
    open until the credit waits for it. The credit then converts nothing and raises nothing."""
    payload = _place(ss_crm, shop["hoa"], [shop["xay"]])
    an = user(ss_crm, AN)
    flushed, commit = threading.Event(), threading.Event()
    results: dict = {}

    def dismiss() -> str:
        with ss_crm.db.write() as session:
            alerts.dismiss(session, session.get(Alert, shop["alert"]), an, "customer_declined")
            flushed.set()
            assert commit.wait(20)
        return "dismissed"

    def credit() -> list[int]:
        return _credit(ss_crm, payload)

    first = _in_thread(dismiss, results, "dismiss")
    assert flushed.wait(20)
    second = _in_thread(credit, results, "credit")
    _wait_until_blocked(ss_crm)
    commit.set()
    first.join(30)
    second.join(30)
    assert results == {"dismiss": "dismissed", "credit": []}
    alert = _alert(ss_crm, shop["alert"])
    assert (alert.state, alert.converted_order_id, alert.credited_minor) == ("dismissed", None, 0)


def test_an_order_committed_first_wins_over_a_dismissal(ss_crm, shop):
    """The other way round: the credit commits first, the late dismissal is refused (its
    version is stale, or it finds the alert closed) and the alert stays converted."""
    payload = _place(ss_crm, shop["hoa"], [shop["xay"]])
    an = user(ss_crm, AN)
    converted, commit = threading.Event(), threading.Event()
    results: dict = {}

    def credit() -> list[int]:
        with ss_crm.db.write() as session:
            made = alerts.credit_order(ss_crm, session, payload)
            converted.set()
            assert commit.wait(20)
        return made

    def dismiss() -> str:
        with ss_crm.db.write() as session:
            alerts.dismiss(session, session.get(Alert, shop["alert"]), an, "other")
        return "dismissed"

    first = _in_thread(credit, results, "credit")
    assert converted.wait(20)
    second = _in_thread(dismiss, results, "dismiss")
    _wait_until_blocked(ss_crm)
    commit.set()
    first.join(30)
    second.join(30)
    assert results["credit"] == [shop["alert"]]
    # refused: AlertError (closed) where writers queue, a version conflict where they meet
    assert isinstance(results["dismiss"], alerts.StaleAlert | alerts.AlertError)
    if isinstance(results["dismiss"], alerts.StaleAlert):
        assert results["dismiss"].current == 2  # the version the credit wrote
    alert = _alert(ss_crm, shop["alert"])
    assert (alert.state, alert.credited_minor) == ("converted", 500_000)
