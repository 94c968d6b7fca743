"""The product's webhook events: each is published with its payload when its action happens
(through the REST API, the CLI and the services), only to the endpoints that subscribe to it,
nothing without an endpoint, nothing from a transaction that rolls back, one summary per
customer import, and a merge as one event."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core import auth, modules, users
from core.bootstrap import initialise
from core.customers import service
from core.customers.models import Customer
from core.models import User
from core.web.app import create_app
from core.webhooks import declared_events, publish
from core.webhooks import service as hooks
from core.webhooks.delivery import deliver_due
from core.webhooks.models import WebhookDelivery
from plugins.operational.models import LostReason

SHOP = ["operational", "analytical", "smart_sales"]
#: Where test endpoints point: nothing is sent there unless a test delivers.
NOWHERE = "http://127.0.0.1:9/hook"
CUSTOMER_EVENTS = [
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "customer.merged",
    "customers.imported",
]


def _crm(make_crm, enable: list[str]) -> Any:
    crm = make_crm(load_plugins=",".join(enable) or "sample", webhooks_allow_private="true")
    initialise(crm, "admin@example.com", "Admin-pass-123")
    if enable:
        modules.enable(crm, enable)
        crm.refresh()
    return crm


@pytest.fixture
def core_crm(make_crm):
    """The core alone, private webhook targets allowed (endpoints on loopback)."""
    return _crm(make_crm, [])


@pytest.fixture
def shop_crm(make_crm):
    """Operational, analytical and smart_sales enabled, private targets allowed."""
    return _crm(make_crm, SHOP)


class Client:
    """A REST client acting as the admin with a bearer token."""

    def __init__(self, crm: Any) -> None:
        with crm.db.write() as session:
            admin = session.scalar(select(User).where(User.email == "admin@example.com"))
            self.user_id = admin.id
            token = auth.create_token(session, admin, "webhook events test").secret
        self.client = TestClient(create_app(crm))
        self.headers = {"Authorization": f"Bearer {token}"}

    def __getattr__(self, method: str):
        call = getattr(self.client, method)
        return lambda url, **kw: call(url, headers=self.headers, **kw)


def _endpoint(crm: Any, events: list[str], *, url: str = NOWHERE, active: bool = True) -> int:
    with crm.db.write() as session:
        endpoint, _ = hooks.add_endpoint(session, crm, url, events)
        if not active:
            hooks.update_endpoint(session, crm, endpoint.id, active=False)
        return endpoint.id


def _sent(crm: Any, event: str | None = None, endpoint_id: int | None = None) -> list[dict]:
    """The bodies queued so far (oldest first), of one event and endpoint when given."""
    query = select(WebhookDelivery).order_by(WebhookDelivery.id)
    if event is not None:
        query = query.where(WebhookDelivery.event == event)
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    with crm.db.session() as session:
        return [json.loads(d.body) for d in session.scalars(query)]


def _deliveries(crm: Any) -> int:
    with crm.db.session() as session:
        return session.scalar(select(func.count()).select_from(WebhookDelivery))


def _data(crm: Any, event: str) -> dict:
    [body] = _sent(crm, event)
    assert body["type"] == event
    return body["data"]


# --- declarations ----------------------------------------------------------------------------


def test_every_event_is_declared_by_the_module_that_publishes_it(shop_crm):
    declared = {name: module for name, (module, _) in declared_events(shop_crm).items()}
    assert declared == {
        "ping": "core",
        **dict.fromkeys(CUSTOMER_EVENTS, "core"),
        **dict.fromkeys(
            ["order.placed", "ticket.opened", "ticket.resolved", "deal.won", "deal.lost"],
            "operational",
        ),
        "alert.raised": "smart_sales",
        "alert.converted": "smart_sales",
    }
    labels = [event.label for _, event in declared_events(shop_crm).values()]
    assert all(labels) and len(set(labels)) == len(labels)


def test_a_disabled_module_s_events_cannot_be_published(core_crm):
    assert "order.placed" not in declared_events(core_crm)
    with core_crm.db.write() as session, pytest.raises(ValueError, match=r"order\.placed"):
        publish(session, core_crm, "order.placed", {})


# --- customers -------------------------------------------------------------------------------


NEW = {
    "given_name": "Hoa",
    "family_name": "Nguyễn Thị",
    "country": "VN",
    "identities": [{"channel": "email", "value": "Hoa@Example.com"}],
    "tags": ["vip"],
}


def test_customer_created_updated_archived_and_deleted(core_crm):
    endpoint = _endpoint(core_crm, CUSTOMER_EVENTS)
    api = Client(core_crm)
    made = api.post("/api/customers", json=NEW)
    assert made.status_code == 201, made.text
    customer_id = made.json()["id"]
    body = _sent(core_crm, "customer.created")[0]
    assert set(body) == {"id", "type", "created_at", "data"}
    created = body["data"]["customer"]
    assert created["id"] == customer_id and created["display_name"] == "Nguyễn Thị Hoa"
    assert created["identities"][0]["value"] == "hoa@example.com"
    assert created["tags"] == ["vip"] and created["version"] == 1
    assert created["created_at"].startswith(made.json()["created_at"][:19])  # ISO 8601
    assert "search_key" not in created

    changed = api.patch(
        f"/api/customers/{customer_id}",
        json={"version": 1, "address": "12 Hàng Bạc", "tags": ["vip", "hanoi"]},
    )
    assert changed.status_code == 200, changed.text
    updated = _data(core_crm, "customer.updated")
    assert updated["changes"] == {
        "address": {"before": None, "after": "12 Hàng Bạc"},
        "tags": {"before": ["vip"], "after": ["hanoi", "vip"]},
    }
    assert updated["customer"]["version"] == 2 and updated["actor_id"] == api.user_id

    assert api.post(f"/api/customers/{customer_id}/archive").status_code == 200
    archived = _sent(core_crm, "customer.updated")[-1]["data"]
    assert archived["changes"] == {"archived": {"before": False, "after": True}}

    assert api.delete(f"/api/customers/{customer_id}").status_code == 204
    deleted = _data(core_crm, "customer.deleted")["customer"]
    assert deleted["id"] == customer_id and deleted["archived"] is True
    assert [b["type"] for b in _sent(core_crm, endpoint_id=endpoint)] == [
        "customer.created",
        "customer.updated",
        "customer.updated",
        "customer.deleted",
    ]


def test_identities_added_and_removed_are_customer_updates(core_crm):
    api = Client(core_crm)
    customer_id = api.post("/api/customers", json=NEW).json()["id"]
    _endpoint(core_crm, ["customer.updated"])
    added = api.post(
        f"/api/customers/{customer_id}/identities",
        json={"channel": "phone", "value": "0912 345 678"},
    )
    assert added.status_code == 201, added.text
    removed = api.delete(f"/api/customers/{customer_id}/identities/{added.json()['id']}")
    assert removed.status_code == 204
    first, second = (b["data"]["changes"]["identities"] for b in _sent(core_crm))
    email = {"channel": "email", "value": "hoa@example.com"}
    phone = {"channel": "phone", "value": "+84912345678"}
    assert first == {"before": [email], "after": [email, phone]}
    assert second == {"before": [email, phone], "after": [email]}


def test_a_merge_is_one_event_with_both_ids(core_crm):
    api = Client(core_crm)
    survivor = api.post("/api/customers", json=NEW).json()["id"]
    other = api.post(
        "/api/customers",
        json={"display_name": "Hoa N.", "address": "5 Lý Thái Tổ", "country": "VN"},
    ).json()["id"]
    _endpoint(core_crm, CUSTOMER_EVENTS)
    merged = api.post(f"/api/customers/{survivor}/merge", json={"other_id": other})
    assert merged.status_code == 200, merged.text
    [body] = _sent(core_crm)  # no customer.deleted or customer.updated besides
    assert body["type"] == "customer.merged"
    assert body["data"]["survivor_id"] == survivor and body["data"]["merged_id"] == other
    assert body["data"]["survivor"]["address"] == "5 Lý Thái Tổ"  # taken from the other
    assert body["data"]["conflicts"]["display_name"]["merged"] == "Hoa N."


def test_an_import_publishes_one_summary(core_crm, cli, tmp_path):
    _endpoint(core_crm, ["customers.imported", "customer.created"])
    rows = ["display_name,email"] + [f"Khách {i},k{i}@example.com" for i in range(30)]
    path = tmp_path / "customers.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert cli("customers", "import", str(path)).exit_code == 0
    [summary] = _sent(core_crm)  # never one event per row
    assert summary["type"] == "customers.imported"
    assert summary["data"] == {
        "source": "customers.csv",
        "created": 30,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
    }
    rows[1] = "Khách Một,k0@example.com"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert cli("customers", "import", str(path), "--dry-run").exit_code == 0
    assert len(_sent(core_crm)) == 1  # a dry run publishes nothing
    assert cli("customers", "import", str(path)).exit_code == 0
    again = _sent(core_crm)[-1]["data"]
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 1, 29)
    path.write_text("display_name,email\nBad,not-an-email\n", encoding="utf-8")
    assert cli("customers", "import", str(path)).exit_code != 0
    assert len(_sent(core_crm)) == 2  # an aborted import publishes nothing


def test_only_active_subscribed_endpoints_get_an_event(core_crm):
    deletions = _endpoint(core_crm, ["customer.deleted"])
    everything = _endpoint(core_crm, ["*"])
    paused = _endpoint(core_crm, ["*"], active=False)
    api = Client(core_crm)
    customer_id = api.post("/api/customers", json=NEW).json()["id"]
    assert api.delete(f"/api/customers/{customer_id}").status_code == 204
    assert [b["type"] for b in _sent(core_crm, endpoint_id=everything)] == [
        "customer.created",
        "customer.deleted",
    ]
    assert [b["type"] for b in _sent(core_crm, endpoint_id=deletions)] == ["customer.deleted"]
    assert _sent(core_crm, endpoint_id=paused) == []
    # one event, one id: every endpoint's copy carries the same event id
    ids = {b["id"] for b in _sent(core_crm, "customer.deleted")}
    assert len(ids) == 1


def test_nothing_is_published_without_an_endpoint(core_crm):
    api = Client(core_crm)
    customer_id = api.post("/api/customers", json=NEW).json()["id"]
    assert api.patch(f"/api/customers/{customer_id}", json={"version": 1, "address": "x"})
    assert api.delete(f"/api/customers/{customer_id}").status_code == 204
    assert _deliveries(core_crm) == 0


def test_a_rolled_back_change_publishes_nothing(core_crm):
    _endpoint(core_crm, ["*"])
    with pytest.raises(RuntimeError), core_crm.db.write() as session:
        service.create(session, core_crm, {"display_name": "Gone"}, [("email", "g@example.com")])
        raise RuntimeError("the caller fails after the change")
    api = Client(core_crm)
    assert api.post("/api/customers", json=NEW).status_code == 201
    conflict = api.post("/api/customers", json={**NEW, "tags": []})  # the same e-mail
    assert conflict.status_code == 409
    with core_crm.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 1
    assert [b["type"] for b in _sent(core_crm)] == ["customer.created"]


class _Receiver(BaseHTTPRequestHandler):
    """Records each POST's headers and body on the server; answers 204."""

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        server: Any = self.server
        server.received.append((dict(self.headers), self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A real HTTP server on loopback recording each request's headers and body."""
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_an_event_reaches_a_real_receiver_as_published(core_crm, receiver):
    port = receiver.server_address[1]
    _endpoint(core_crm, ["customer.created"], url=f"http://127.0.0.1:{port}/crm")
    api = Client(core_crm)
    customer_id = api.post("/api/customers", json=NEW).json()["id"]
    report = deliver_due(core_crm)
    assert report.delivered == 1
    [(headers, raw)] = receiver.received
    body = json.loads(raw)
    assert body["type"] == "customer.created" and body["data"]["customer"]["id"] == customer_id
    assert headers["Content-Type"].startswith("application/json")


# --- operational -----------------------------------------------------------------------------


def _customer(api: Client, name: str = "Nguyễn Thị Hoa") -> int:
    made = api.post("/api/customers", json={"display_name": name, "country": "VN"})
    assert made.status_code == 201, made.text
    return made.json()["id"]


def _product(api: Client, sku: str, price: int, **extra: Any) -> int:
    made = api.post(
        "/api/operational/products",
        json={"sku": sku, "name": sku.title(), "price_minor": price, "currency": "VND", **extra},
    )
    assert made.status_code == 201, made.text
    return made.json()["id"]


def test_order_placed_carries_money_in_minor_units_and_the_lines(shop_crm):
    api = Client(shop_crm)
    customer_id = _customer(api)
    kettle = _product(api, "AM-DIEN", 350_000)
    _endpoint(shop_crm, ["order.placed"])
    placed = api.post(
        "/api/operational/orders",
        json={
            "customer_id": customer_id,
            "ref": "DH-0001",
            "currency": "VND",
            "lines": [{"product_id": kettle, "quantity": 2, "discount_minor": 50_000}],
        },
    )
    assert placed.status_code == 201, placed.text
    order = _data(shop_crm, "order.placed")["order"]
    assert order["id"] == placed.json()["id"] and order["ref"] == "DH-0001"
    assert order["customer_id"] == customer_id and order["currency"] == "VND"
    assert order["total_minor"] == 650_000 and isinstance(order["total_minor"], int)
    assert order["lines"] == [
        {
            "product_id": kettle,
            "sku": "AM-DIEN",
            "quantity": 2,
            "unit_price_minor": 350_000,
            "discount_minor": 50_000,
            "amount_minor": 650_000,
        }
    ]
    assert order["placed_at"].startswith(placed.json()["placed_at"][:19])


def test_tickets_opened_and_resolved_without_the_survey_link(shop_crm):
    api = Client(shop_crm)
    customer_id = _customer(api)
    _endpoint(shop_crm, ["ticket.opened", "ticket.resolved"])
    opened = api.post(
        "/api/operational/tickets",
        json={"customer_id": customer_id, "subject": "Máy không chạy", "priority": "high"},
    )
    assert opened.status_code == 201, opened.text
    ticket_id = opened.json()["id"]
    first = _data(shop_crm, "ticket.opened")
    assert first["ticket"]["id"] == ticket_id and first["ticket"]["priority"] == "high"
    assert first["ticket"]["status"] == "new" and first["ticket"]["resolution_due"]
    assert first["actor_id"] == api.user_id
    resolved = api.post(f"/api/operational/tickets/{ticket_id}/resolve")
    assert resolved.status_code == 200, resolved.text
    done = _data(shop_crm, "ticket.resolved")["ticket"]
    assert done["status"] == "resolved" and done["resolved_at"]
    token = resolved.json()["survey_url"].rsplit("/", 1)[-1]
    assert token not in json.dumps(_sent(shop_crm)) and "survey" not in json.dumps(done)


def test_deals_won_and_lost(shop_crm):
    api = Client(shop_crm)
    customer_id = _customer(api)
    _endpoint(shop_crm, ["deal.won", "deal.lost"])
    ids = []
    for title in ("Máy lọc cho văn phòng", "Bếp từ"):
        made = api.post(
            "/api/operational/opportunities",
            json={"customer_id": customer_id, "title": title, "expected_revenue_minor": 9_000_000},
        )
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    moved = api.patch(
        f"/api/operational/opportunities/{ids[0]}", json={"version": 1, "stage": "proposal"}
    )
    assert moved.status_code == 200 and _sent(shop_crm) == []  # an open stage is no event
    won = api.patch(
        f"/api/operational/opportunities/{ids[0]}",
        json={"version": moved.json()["version"], "stage": "won"},
    )
    assert won.status_code == 200, won.text
    deal = _data(shop_crm, "deal.won")["deal"]
    assert deal["id"] == ids[0] and deal["stage"] == "won" and deal["closed_at"]
    assert deal["expected_revenue_minor"] == 9_000_000 and deal["currency"] == "VND"
    with shop_crm.db.session() as session:
        price = session.scalar(select(LostReason).where(LostReason.name == "price"))
    lost = api.patch(
        f"/api/operational/opportunities/{ids[1]}",
        json={"version": 1, "stage": "lost", "lost_reason_id": price.id},
    )
    assert lost.status_code == 200, lost.text
    deal = _data(shop_crm, "deal.lost")["deal"]
    assert deal["id"] == ids[1] and deal["lost_reason"] == "Price too high"
    assert deal["lost_reason_id"] == price.id


# --- smart selling ---------------------------------------------------------------------------


def _holders(crm: Any, api: Client, count: int) -> tuple[list[int], int, int]:
    """``count`` customers owned by a salesperson who bought the basic model of a product
    whose ``upgrade_to`` is the pro model, their orders' hooks not called (so no alert is
    raised yet); returns (customers, basic, pro)."""
    from tests.plugins.smart_sales.helpers import order

    with crm.db.write() as session:
        owner = users.create_user(session, "an@example.com", "An", "Password-123!", ["sales"])
        session.flush()
        owner_id = owner.id
    pro = _product(api, "LOC-PRO", 5_000_000, cost_minor=3_000_000)
    basic = _product(api, "LOC-CB", 2_000_000, upgrade_to_id=pro)
    customers = []
    with crm.db.write() as session:
        for i in range(count):
            customer = service.create(session, crm, {"display_name": f"Khách {i}"})
            customer.owner_id = owner_id
            session.flush()
            order(session, crm, customer.id, [basic])
            customers.append(customer.id)
    return customers, basic, pro


def test_every_alert_raised_is_published_and_a_conversion_too(shop_crm):
    from plugins.smart_sales import alerts

    api = Client(shop_crm)
    customers, _, pro = _holders(shop_crm, api, 3)
    with shop_crm.db.write() as session:
        assert alerts.generate(shop_crm, session, customer_ids=customers[:1]) == 1
    assert _deliveries(shop_crm) == 0  # no endpoint: nothing written
    _endpoint(shop_crm, ["alert.raised", "alert.converted"])
    with shop_crm.db.write() as session:
        raised = alerts.generate(shop_crm, session, kinds=["up_sell"])  # bulk generation
    assert raised == 2
    bodies = [b["data"]["alert"] for b in _sent(shop_crm, "alert.raised")]
    assert sorted(b["customer_id"] for b in bodies) == customers[1:]
    first = bodies[0]
    assert first["kind"] == "up_sell" and first["product_id"] == pro
    assert first["currency"] == "VND" and first["price_minor"] == 5_000_000
    assert isinstance(first["expected_value_minor"], int) and first["expected_value_minor"] > 0
    assert first["owner_id"] is not None and first["raised_at"] and first["expires_at"]
    assert first["source"] == "generate"

    placed = api.post(
        "/api/operational/orders",
        json={"customer_id": first["customer_id"], "lines": [{"product_id": pro}]},
    )
    assert placed.status_code == 201, placed.text
    converted = _data(shop_crm, "alert.converted")
    assert converted["alert"]["id"] == first["id"]
    assert converted["order_id"] == placed.json()["id"]
    assert converted["credited_minor"] == 5_000_000 and converted["currency"] == "VND"
