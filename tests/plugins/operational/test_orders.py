"""Products and orders: services (money, totals, statuses, order_placed) and the REST API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core import auth, hookimpl, users
from core.customers import service as customers
from core.models import AuditLog, User
from core.money import Money
from core.web.app import create_app
from plugins.operational import importer, orders
from plugins.operational.models import Order, OrderLine, Product

# --- fixtures --------------------------------------------------------------------------------


class Observer:
    """A plugin that records the ``order_placed`` calls it gets."""

    def __init__(self) -> None:
        self.orders: list[dict] = []

    @hookimpl
    def order_placed(self, crm, order):
        self.orders.append(order)


@pytest.fixture
def placed(ops_crm, monkeypatch) -> list[dict]:
    """The payloads of ``order_placed`` calls, as an enabled module would receive them."""
    observer = Observer()
    ops_crm.registry.pm.register(observer, name="observer")
    active = type(ops_crm).active
    monkeypatch.setattr(ops_crm, "active", lambda: [*active(ops_crm), "observer"])
    return observer.orders


def user_id(crm, email: str) -> int:
    with crm.db.session() as session:
        return session.scalar(select(User.id).where(User.email == email))


@pytest.fixture
def shop(ops_crm):
    """Customers of an (north) and chi (south), a shared one, and two VND products."""
    with ops_crm.db.write() as session:
        ids = {
            name: customers.create(
                session,
                ops_crm,
                {"display_name": name, "owner_id": user_id(ops_crm, owner) if owner else None},
            ).id
            for name, owner in (
                ("Lan", "an@example.com"),
                ("Minh", "chi@example.com"),
                ("Shared", None),
            )
        }
        coffee = orders.create_product(
            session,
            ops_crm,
            {"sku": "CF-1", "name": "Cà phê", "price_minor": 45_000, "cost_minor": 20_000},
        )
        cup = orders.create_product(
            session, ops_crm, {"sku": "CUP", "name": "Ly sứ", "price_minor": 120_000}
        )
        ids.update(coffee=coffee.id, cup=cup.id)
    return ids


class Api:
    """A test client that sends one user's bearer token."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    def __getattr__(self, method: str):
        call = getattr(self.client, method)
        return lambda url, **kw: call(
            f"/api/operational{url}", headers={**self.headers, **kw.pop("headers", {})}, **kw
        )


@pytest.fixture
def client(ops_crm):
    """A test client of the app."""
    return TestClient(create_app(ops_crm))


@pytest.fixture
def api(ops_crm, shop, client):
    """``api("an@example.com")`` is an Api acting as that user (``boss@…`` is a manager)."""

    def build(email: str) -> Api:
        with ops_crm.db.write() as session:
            user = session.scalar(select(User).where(User.email == email))
            if user is None:
                user = users.create_user(session, email, "Boss", "Password-123!", ["manager"])
            return Api(client, auth.create_token(session, user, "test").secret)

    return build


# --- services --------------------------------------------------------------------------------


def test_products_take_the_default_currency_and_unique_skus(ops_crm, shop):
    with ops_crm.db.write() as session:
        product = session.get(Product, shop["coffee"])
        assert (product.currency, product.price_minor, product.active) == ("VND", 45_000, True)
        with pytest.raises(orders.SkuTaken) as taken:
            orders.create_product(session, ops_crm, {"sku": "CF-1", "name": "Again"})
        assert taken.value.product_id == shop["coffee"]
        with pytest.raises(orders.InvalidField) as floats:
            orders.create_product(session, ops_crm, {"sku": "X", "name": "X", "price_minor": 1.5})
        assert floats.value.field == "price_minor"
        with pytest.raises(orders.InvalidField) as currency:
            orders.create_product(session, ops_crm, {"sku": "X", "name": "X", "currency": "ABC"})
        assert currency.value.field == "currency"
        usd = orders.create_product(
            session,
            ops_crm,
            {"sku": "TEA", "name": "Tea", "price_minor": 1250, "currency": "usd"},
        )
        assert usd.currency == "USD"
        with pytest.raises(orders.InvalidField, match="itself"):
            orders.update_product(session, ops_crm, usd, {"upgrade_to_id": usd.id}, usd.version)


def test_order_totals_are_integer_minor_units(ops_crm, shop, placed):
    with ops_crm.db.write() as session:
        order = orders.create_order(
            session,
            ops_crm,
            customer_id=shop["Lan"],
            lines=[
                orders.LineInput(shop["coffee"], quantity=3, discount_minor=5_000),
                orders.LineInput(shop["cup"], quantity=2, unit_price_minor=99_000),
            ],
            channel="shop",
        )
    assert order.total_minor == 3 * 45_000 - 5_000 + 2 * 99_000 == 328_000
    assert isinstance(order.total_minor, int) and order.currency == "VND"
    assert order.cost_minor is None  # the cup has no cost
    assert order.owner_id == user_id(ops_crm, "an@example.com")  # the customer's owner
    with ops_crm.db.session() as session:
        amounts = session.scalars(
            select(OrderLine.amount_minor).where(OrderLine.order_id == order.id)
        ).all()
    assert sorted(amounts) == [130_000, 198_000]
    assert Money(order.total_minor, order.currency).format("vi") == "328.000\xa0₫"


def test_cost_comes_from_product_costs_when_all_are_known(ops_crm, shop):
    with ops_crm.db.write() as session:
        order = orders.create_order(
            session,
            ops_crm,
            customer_id=shop["Lan"],
            lines=[orders.LineInput(shop["coffee"], quantity=4)],
        )
    assert (order.total_minor, order.cost_minor) == (180_000, 80_000)


def test_an_order_level_amount_stands_for_unknown_lines(ops_crm, shop):
    with ops_crm.db.write() as session:
        order = orders.create_order(
            session, ops_crm, customer_id=shop["Shared"], total_minor=1_250_000
        )
        assert orders.lines_of(session, order.id) == []
    assert (order.total_minor, order.cost_minor, order.owner_id) == (1_250_000, None, None)
    with ops_crm.db.write() as session, pytest.raises(orders.InvalidField) as missing:
        orders.create_order(session, ops_crm, customer_id=shop["Shared"])
    assert missing.value.field == "total_minor"


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (orders.LineInput(999), "product_id"),
        (orders.LineInput(0, quantity=0), "product_id"),
        ("coffee-0", "quantity"),
        ("coffee-discount", "discount_minor"),
        ("coffee-float", "unit_price_minor"),
    ],
)
def test_bad_lines_are_named_with_their_position(ops_crm, shop, line, field):
    if isinstance(line, str):
        line = {
            "coffee-0": orders.LineInput(shop["coffee"], quantity=0),
            "coffee-discount": orders.LineInput(shop["coffee"], discount_minor=50_000),
            "coffee-float": orders.LineInput(shop["coffee"], unit_price_minor=1.5),
        }[line]
    with ops_crm.db.write() as session, pytest.raises(orders.InvalidField) as bad:
        orders.create_order(
            session,
            ops_crm,
            customer_id=shop["Lan"],
            lines=[orders.LineInput(shop["cup"]), line],
        )
    assert (bad.value.line, bad.value.field) == (1, field)


def test_a_product_in_another_currency_needs_a_unit_price(ops_crm, shop):
    with ops_crm.db.write() as session:
        tea = orders.create_product(
            session, ops_crm, {"sku": "TEA", "name": "Tea", "price_minor": 1250, "currency": "USD"}
        )
        with pytest.raises(orders.InvalidField, match="priced in USD"):
            orders.create_order(
                session, ops_crm, customer_id=shop["Lan"], lines=[orders.LineInput(tea.id)]
            )
        order = orders.create_order(
            session,
            ops_crm,
            customer_id=shop["Lan"],
            currency_code="USD",
            lines=[orders.LineInput(tea.id, quantity=2)],
        )
    assert (order.currency, order.total_minor) == ("USD", 2500)
    assert Money(order.total_minor, "USD").to_decimal() == Decimal("25.00")


def test_status_moves_only_along_the_allowed_transitions(ops_crm, shop):
    with ops_crm.db.write() as session:
        order = orders.create_order(session, ops_crm, customer_id=shop["Lan"], total_minor=10)
        for step in ("paid", "shipped", "delivered", "returned"):
            assert orders.set_status(session, ops_crm, order, step, order.version)
        assert order.version == 5
        with pytest.raises(orders.InvalidField, match="final"):
            orders.set_status(session, ops_crm, order, "placed", order.version)
        with pytest.raises(orders.StaleVersion):
            orders.set_status(session, ops_crm, order, "returned", 1)
        assert not orders.set_status(session, ops_crm, order, "returned", order.version)
        other = orders.create_order(session, ops_crm, customer_id=shop["Lan"], total_minor=10)
        with pytest.raises(orders.InvalidField, match="paid, shipped, cancelled"):
            orders.set_status(session, ops_crm, other, "delivered", other.version)
        with pytest.raises(orders.InvalidField):
            orders.set_status(session, ops_crm, other, "lost", other.version)


def test_order_placed_is_emitted_after_commit_only(ops_crm, shop, placed):
    with pytest.raises(RuntimeError), ops_crm.db.write() as session:
        orders.create_order(session, ops_crm, customer_id=shop["Lan"], total_minor=1)
        assert placed == []  # not before the commit
        raise RuntimeError("rolled back")
    assert placed == []  # never for a rolled-back order
    with ops_crm.db.write() as session:
        order = orders.create_order(
            session,
            ops_crm,
            customer_id=shop["Lan"],
            ref="SO-1",
            lines=[orders.LineInput(shop["coffee"], quantity=2)],
            placed_at=dt.datetime(2026, 1, 15, 10, 30, tzinfo=dt.UTC),
            channel="zalo",
        )
        assert placed == []
    assert placed == [
        {
            "id": order.id,
            "ref": "SO-1",
            "customer_id": shop["Lan"],
            "placed_at": dt.datetime(2026, 1, 15, 10, 30, tzinfo=dt.UTC),
            "currency": "VND",
            "total_minor": 90_000,
            "channel": "zalo",
            "status": "placed",
            "lines": [
                {
                    "product_id": shop["coffee"],
                    "sku": "CF-1",
                    "quantity": 2,
                    "unit_price_minor": 45_000,
                    "discount_minor": 0,
                    "amount_minor": 90_000,
                }
            ],
        }
    ]


def test_naive_times_are_read_in_the_configured_time_zone(ops_crm, shop):
    with ops_crm.db.write() as session:
        order = orders.create_order(
            session,
            ops_crm,
            customer_id=shop["Lan"],
            total_minor=1,
            placed_at=dt.datetime(2026, 1, 15, 7, 0),
        )
    assert order.placed_at == dt.datetime(2026, 1, 15, 0, 0, tzinfo=dt.UTC)  # UTC+7


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("125000", "VND"),
        ("0", "VND"),
        ("007", "VND"),
        ("12.50", "USD"),
        ("12.5", "USD"),
        ("12", "USD"),
        ("0.99", "USD"),
        ("1,250.75", "USD"),
        (" 42 ", "VND"),
        ("1.250", "KWD"),
        ("1_000", "VND"),
        ("12.", "USD"),
        (".5", "USD"),
    ],
)
def test_the_importers_fast_amounts_are_money_parse(text, code):
    assert importer.parse_minor(text, code, "amount") == Money.parse(text, code).amount


@pytest.mark.parametrize("text", ["-5", "12.345", "abc", "1e3x", "125.000"])
def test_bad_amounts_are_refused(text):
    with pytest.raises(importer.RowError) as bad:
        importer.parse_minor(text, "USD" if text == "12.345" else "VND", "unit_price")
    assert bad.value.field == "unit_price"


# --- API: products ---------------------------------------------------------------------------


def test_products_api_create_read_list_and_update(api, ops_crm):
    boss = api("boss@example.com")
    created = boss.post(
        "/products",
        json={"sku": "TV-55", "name": "TV 55 inch", "category": "TV", "price_minor": 12_990_000},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["currency"], body["version"], body["cost_minor"]) == ("VND", 1, None)
    pid = body["id"]
    assert boss.get(f"/products/{pid}").json()["sku"] == "TV-55"
    page = boss.get("/products", params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_cursor"] is not None
    rest = boss.get("/products", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [p["sku"] for p in rest["items"]] == ["TV-55"] and rest["next_cursor"] is None
    assert [p["sku"] for p in boss.get("/products", params={"category": "TV"}).json()["items"]] == [
        "TV-55"
    ]
    changed = boss.patch(f"/products/{pid}", json={"version": 1, "price_minor": 11_990_000})
    assert changed.status_code == 200 and changed.json()["version"] == 2
    stale = boss.patch(f"/products/{pid}", json={"version": 1, "active": False})
    assert stale.status_code == 409
    assert stale.json()["current"]["price_minor"] == 11_990_000
    duplicate = boss.post("/products", json={"sku": "TV-55", "name": "Again"})
    assert duplicate.status_code == 409 and duplicate.json()["product_id"] == pid
    assert boss.get("/products/999999").status_code == 404
    with ops_crm.db.session() as session:
        actions = session.scalars(
            select(AuditLog.action).where(
                AuditLog.model == "operational.product", AuditLog.record_id == str(pid)
            )
        ).all()
    assert actions == ["create", "update"]


def test_products_api_validates_each_field(api):
    boss = api("boss@example.com")
    bad = boss.post(
        "/products",
        json={"sku": "", "name": "X", "price_minor": 12.5, "cost_minor": "3", "id": 7},
    )
    assert bad.status_code == 422
    fields = {tuple(e["loc"]) for e in bad.json()["detail"]}
    assert {("body", "sku"), ("body", "price_minor"), ("body", "cost_minor"), ("body", "id")} <= (
        fields
    )
    currency = boss.post("/products", json={"sku": "X", "name": "X", "currency": "ABC"})
    assert currency.status_code == 422
    assert currency.json()["detail"][0]["loc"] == ["body", "currency"]
    upgrade = boss.post("/products", json={"sku": "X", "name": "X", "upgrade_to_id": 999})
    assert upgrade.json()["detail"][0]["loc"] == ["body", "upgrade_to_id"]


def test_product_permissions(api, shop):
    sales = api("an@example.com")
    assert sales.get(f"/products/{shop['coffee']}").status_code == 200
    assert sales.post("/products", json={"sku": "Z", "name": "Z"}).status_code == 403
    assert sales.patch(f"/products/{shop['coffee']}", json={"version": 1}).status_code == 403


# --- API: orders -----------------------------------------------------------------------------


def test_orders_api_creates_an_order_with_lines(api, shop, placed, ops_crm):
    an = api("an@example.com")
    created = an.post(
        "/orders",
        json={
            "customer_id": shop["Lan"],
            "ref": "WEB-1001",
            "placed_at": "2026-01-15T10:30:00+07:00",
            "channel": "website",
            "lines": [
                {"product_id": shop["coffee"], "quantity": 2, "discount_minor": 10_000},
                {"product_id": shop["cup"], "unit_price_minor": 100_000},
            ],
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["total_minor"] == 2 * 45_000 - 10_000 + 100_000
    assert body["placed_at"].startswith("2026-01-15T03:30:00")
    assert [(x["sku"], x["amount_minor"]) for x in body["lines"]] == [
        ("CF-1", 80_000),
        ("CUP", 100_000),
    ]
    assert [p["ref"] for p in placed] == ["WEB-1001"]
    read = an.get(f"/orders/{body['id']}").json()
    assert read == body
    again = an.post(
        "/orders", json={"customer_id": shop["Lan"], "ref": "WEB-1001", "total_minor": 1}
    )
    assert again.status_code == 409 and again.json()["order_id"] == body["id"]
    with ops_crm.db.session() as session:
        audit = session.scalar(
            select(AuditLog).where(
                AuditLog.model == "operational.order", AuditLog.record_id == str(body["id"])
            )
        )
    assert audit.action == "create" and audit.actor == "an@example.com"


def test_orders_api_validates_each_field(api, shop):
    an = api("an@example.com")
    bad = an.post(
        "/orders",
        json={
            "customer_id": shop["Lan"],
            "status": "lost",
            "lines": [{"product_id": shop["coffee"], "quantity": 0, "unit_price_minor": 1.5}],
            "is_admin": True,
        },
    )
    assert bad.status_code == 422
    fields = {tuple(e["loc"]) for e in bad.json()["detail"]}
    assert {
        ("body", "status"),
        ("body", "lines", 0, "quantity"),
        ("body", "lines", 0, "unit_price_minor"),
        ("body", "is_admin"),
    } <= fields
    line = an.post(
        "/orders",
        json={
            "customer_id": shop["Lan"],
            "lines": [{"product_id": shop["cup"]}, {"product_id": 999}],
        },
    )
    assert line.status_code == 422
    assert line.json()["detail"][0]["loc"] == ["body", "lines", 1, "product_id"]
    nothing = an.post("/orders", json={"customer_id": shop["Lan"]})
    assert nothing.json()["detail"][0]["loc"] == ["body", "total_minor"]
    unknown = an.post("/orders", json={"customer_id": 999_999, "total_minor": 5})
    assert unknown.json()["detail"][0]["loc"] == ["body", "customer_id"]


def test_list_orders_pages_by_cursor_and_filters(api, shop, ops_crm):
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    with ops_crm.db.write() as session:
        for day in range(7):
            orders.create_order(
                session,
                ops_crm,
                customer_id=shop["Lan"] if day % 2 else shop["Shared"],
                ref=f"R{day}",
                total_minor=day,
                placed_at=start + dt.timedelta(days=day % 4),  # equal times on purpose
                order_status="paid" if day == 3 else "placed",
            )
    an = api("an@example.com")
    seen, cursor = [], None
    while True:
        page = an.get("/orders", params={"limit": 3, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [(o["placed_at"], o["id"]) for o in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and body["total"] == 7
    assert seen == sorted(seen, reverse=True)
    by_id = an.get("/orders", params={"sort": "-id", "limit": 4}).json()
    ids = [o["id"] for o in by_id["items"]]
    more = an.get("/orders", params={"sort": "-id", "cursor": by_id["next_cursor"]}).json()
    assert (
        ids + [o["id"] for o in more["items"]]
        == sorted(ids + [o["id"] for o in more["items"]])[::-1]
    )
    paid = an.get("/orders", params={"status": "paid"}).json()["items"]
    assert [o["ref"] for o in paid] == ["R3"]
    lan = an.get("/orders", params={"customer_id": shop["Lan"]}).json()["items"]
    assert {o["ref"] for o in lan} == {"R1", "R3", "R5"}
    window = an.get(
        "/orders", params={"since": "2026-03-02T00:00:00Z", "until": "2026-03-03T00:00:00Z"}
    ).json()["items"]
    assert {o["ref"] for o in window} == {"R1", "R5"}
    bad = an.get("/orders", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "cursor"]


def test_another_teams_customers_orders_answer_404(api, shop, ops_crm):
    with ops_crm.db.write() as session:
        hidden = orders.create_order(
            session, ops_crm, customer_id=shop["Minh"], ref="SOUTH-1", total_minor=5
        )
        shared = orders.create_order(
            session, ops_crm, customer_id=shop["Shared"], ref="POOL-1", total_minor=5
        )
    an, chi = api("an@example.com"), api("chi@example.com")
    assert an.get(f"/orders/{hidden.id}").status_code == 404
    assert an.patch(f"/orders/{hidden.id}", json={"version": 1, "status": "paid"}).status_code == (
        404
    )
    assert [o["ref"] for o in an.get("/orders").json()["items"]] == ["POOL-1"]
    assert an.get("/orders", params={"customer_id": shop["Minh"]}).json()["total"] == 0
    refused = an.post("/orders", json={"customer_id": shop["Minh"], "total_minor": 1})
    assert refused.status_code == 422
    assert chi.get(f"/orders/{hidden.id}").status_code == 200
    assert an.get(f"/orders/{shared.id}").status_code == 200
    assert api("dung@example.com").get(f"/orders/{hidden.id}").status_code == 200  # scope all


def test_order_status_changes_with_version_and_409_when_stale(api, shop, ops_crm):
    an = api("an@example.com")
    order = an.post("/orders", json={"customer_id": shop["Lan"], "total_minor": 500}).json()
    paid = an.patch(f"/orders/{order['id']}", json={"version": 1, "status": "paid"})
    assert paid.status_code == 200 and paid.json()["version"] == 2
    stale = an.patch(f"/orders/{order['id']}", json={"version": 1, "status": "shipped"})
    assert stale.status_code == 409 and stale.json()["current"]["status"] == "paid"
    wrong = an.patch(f"/orders/{order['id']}", json={"version": 2, "status": "returned"})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "status"]
    extra = an.patch(f"/orders/{order['id']}", json={"version": 2, "status": "shipped", "total": 1})
    assert extra.status_code == 422
    with ops_crm.db.session() as session:
        update = session.scalar(
            select(AuditLog).where(
                AuditLog.model == "operational.order",
                AuditLog.record_id == str(order["id"]),
                AuditLog.action == "update",
            )
        )
    assert update.before["status"] == "placed" and update.after["status"] == "paid"


def test_order_permissions(api, shop, client):
    order = api("an@example.com").post(
        "/orders", json={"customer_id": shop["Lan"], "total_minor": 5}
    )
    service, marketing = api("dung@example.com"), api("mai@example.com")
    assert service.get("/orders").status_code == 200
    assert service.post("/orders", json={"customer_id": shop["Lan"]}).status_code == 403
    assert (
        marketing.patch(
            f"/orders/{order.json()['id']}", json={"version": 1, "status": "paid"}
        ).status_code
        == 403
    )
    assert client.get("/api/operational/orders").status_code == 401


def test_orders_are_stored_with_the_customers_owner(ops_crm, shop):
    with ops_crm.db.write() as session:
        order = orders.create_order(session, ops_crm, customer_id=shop["Minh"], total_minor=7)
    with ops_crm.db.session() as session:
        stored = session.get(Order, order.id)
    assert stored.owner_id == user_id(ops_crm, "chi@example.com")
