"""The webhook admin pages: admins only, registering (errors next to the field, nothing stored
on error, the secret shown once), a test event delivered to a real receiver on loopback and
signed, deliveries listed, redelivery, disabling, rotating the secret, deleting."""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

from core import modules, users
from core.bootstrap import initialise
from core.customers import service
from core.webhooks.models import WebhookDelivery, WebhookEndpoint
from core.webhooks.signing import SIGNATURE_HEADER, verify_signature
from tests.web.conftest import PASSWORD

ADMIN = ("admin@example.com", "Admin-pass-123")


@pytest.fixture
def ui_crm(make_crm):
    """The web tests' CRM (``uiext`` enabled; sales an, manager dung) with private webhook
    targets allowed, so that endpoints may point at a receiver on loopback."""
    crm = make_crm(load_plugins="uiext", webhooks_allow_private="true")
    initialise(crm, *ADMIN)
    modules.enable(crm, ["uiext"])
    crm.refresh()
    with crm.db.write() as session:
        users.create_user(session, "an@example.com", "An", PASSWORD, ["sales"])
        users.create_user(session, "dung@example.com", "Dung", PASSWORD, ["manager"])
    return crm


class _Handler(BaseHTTPRequestHandler):
    """Records each POST's headers and body on the server; answers ``server.answer``."""

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        server: Any = self.server
        server.received.append((dict(self.headers), self.rfile.read(length)))
        self.send_response(server.answer)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A real HTTP server on loopback: records each request; answers ``receiver.answer``."""
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.received, server.answer = [], 204
    server.url = f"http://127.0.0.1:{server.server_address[1]}/crm-hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def admin(browser):
    """A browser signed in as the administrator."""
    client = browser()
    assert client.login(*ADMIN).status_code == 303
    return client


def _count(crm: Any, model: Any) -> int:
    with crm.db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def _register(admin: Any, url: str, events: list[str], description: str = "") -> tuple[int, str]:
    """Register through the form; returns the endpoint's id and the secret shown once."""
    page = admin.post("/admin/webhooks", {"url": url, "events": events, "description": description})
    assert page.status_code == 200, page.text
    assert page.headers["Cache-Control"] == "no-store"  # the secret stays out of caches
    secret = re.search(r'<code id="new-secret">([^<]+)</code>', page.text).group(1)
    endpoint_id = int(re.search(r'action="/admin/webhooks/(\d+)/ping"', page.text).group(1))
    return endpoint_id, secret


def _flash(admin: Any, response: Any) -> str:
    """The page a redirect leads to, after an action."""
    assert response.status_code == 303, response.text
    return admin.get(response.headers["location"]).text


def test_only_administrators_reach_the_webhook_pages(browser, admin, ui_crm):
    endpoint_id, _ = _register(admin, "http://127.0.0.1:9/x", ["customer.created"])
    assert 'href="/admin/webhooks"' in admin.get("/").text  # the admin menu's link
    for email in ("an@example.com", "dung@example.com"):
        other = browser()
        other.login(email)
        assert 'href="/admin/webhooks"' not in other.get("/").text
        for path in ("/admin/webhooks", f"/admin/webhooks/{endpoint_id}"):
            assert other.get(path).status_code == 403, (email, path)
        for path in (
            "/admin/webhooks",
            f"/admin/webhooks/{endpoint_id}/ping",
            f"/admin/webhooks/{endpoint_id}/rotate",
            f"/admin/webhooks/{endpoint_id}/delete",
        ):
            refused = other.post(path, {"url": "http://127.0.0.1:9/y", "events": ["*"]})
            assert refused.status_code == 403, (email, path)
    assert _count(ui_crm, WebhookEndpoint) == 1
    anonymous = browser().get("/admin/webhooks", follow_redirects=False)
    assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]


def test_a_bad_registration_shows_the_errors_and_stores_nothing(admin, ui_crm):
    page = admin.get("/admin/webhooks").text
    for name in ("customer.created", "customer.merged", "customers.imported", "ping", "*"):
        assert f'name="events" value="{name}"' in page
    bad = admin.post(
        "/admin/webhooks",
        {"url": "ftp://example.com/hook", "description": "<b>Kế toán</b>", "events": []},
    )
    assert bad.status_code == 422
    url_error = re.search(r'id="new-url-error">([^<]+)<', bad.text).group(1)
    assert "ftp://example.com/hook" in html.unescape(url_error)
    assert 'id="new-events-error">Choose at least one event.<' in bad.text
    assert 'value="ftp://example.com/hook"' in bad.text  # what was typed is kept
    assert "&lt;b&gt;Kế toán&lt;/b&gt;" in bad.text and "<b>Kế toán</b>" not in bad.text
    unknown = admin.post(
        "/admin/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["order.shipped"]}
    )
    assert unknown.status_code == 422
    assert "order.shipped" in re.search(r'id="new-events-error">([^<]+)<', unknown.text).group(1)
    assert 'value="customer.created"' in unknown.text
    link_local = admin.post(
        "/admin/webhooks", {"url": "http://169.254.169.254/latest", "events": ["*"]}
    )
    assert link_local.status_code == 422 and 'id="new-url-error"' in link_local.text
    assert _count(ui_crm, WebhookEndpoint) == 0


def test_register_ping_list_redeliver_and_verify_the_signature(admin, ui_crm, receiver):
    endpoint_id, secret = _register(
        admin, receiver.url, ["customer.created", "customer.updated"], "Kế toán"
    )
    with ui_crm.db.session() as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint.events == ["customer.created", "customer.updated"]
        assert endpoint.description == "Kế toán"
    listing = admin.get("/admin/webhooks").text
    assert receiver.url in listing and secret not in listing  # shown once only
    assert secret not in admin.get(f"/admin/webhooks/{endpoint_id}").text

    page = _flash(admin, admin.post(f"/admin/webhooks/{endpoint_id}/ping"))
    assert "Delivered: the endpoint answered HTTP 204." in page
    [(headers, body)] = receiver.received
    assert verify_signature(secret, headers[SIGNATURE_HEADER], body)
    ping = json.loads(body)
    assert ping["type"] == "ping" and ping["data"] == {"endpoint_id": endpoint_id}
    [delivery_id] = [int(i) for i in re.findall(r'<tr id="delivery-(\d+)"', page)]
    assert f'id="delivery-{delivery_id}" data-status="delivered"' in page
    assert "HTTP 204" in page

    again = _flash(admin, admin.post(f"/admin/webhooks/deliveries/{delivery_id}/redeliver"))
    assert "Delivered" in again
    assert len(receiver.received) == 2
    assert json.loads(receiver.received[1][1])["id"] == ping["id"]  # the same event again
    assert len(re.findall(r'<tr id="delivery-\d+" data-status="delivered"', again)) == 2
    filtered = admin.get(f"/admin/webhooks/{endpoint_id}", params={"status": "failed"}).text
    assert '<tr id="delivery-' not in filtered
    assert admin.get(f"/admin/webhooks/{endpoint_id}", params={"status": "x"}).status_code == 422


def test_a_refusing_receiver_leaves_the_delivery_waiting(admin, ui_crm, receiver):
    receiver.answer = 500
    endpoint_id, _ = _register(admin, receiver.url, ["*"])
    page = _flash(admin, admin.post(f"/admin/webhooks/{endpoint_id}/ping"))
    assert "Not delivered (HTTP 500)" in page
    row = re.search(r'<tr id="delivery-(\d+)" data-status="pending">(.*?)</tr>', page, re.S)
    assert row is not None and "HTTP 500" in row.group(2)
    with ui_crm.db.session() as session:
        delivery = session.get(WebhookDelivery, int(row.group(1)))
        assert delivery.attempts == 1 and delivery.next_attempt_at is not None
    listing = admin.get("/admin/webhooks").text
    assert re.search(rf'<tr id="endpoint-{endpoint_id}">.*?<td>1</td>', listing, re.S)
    receiver.answer = 200
    fixed = _flash(admin, admin.post(f"/admin/webhooks/deliveries/{row.group(1)}/redeliver"))
    assert "Delivered: the endpoint answered HTTP 200." in fixed


def test_disable_edit_rotate_and_delete(admin, ui_crm, receiver):
    endpoint_id, secret = _register(admin, receiver.url, ["customer.created"])
    here = f"/admin/webhooks/{endpoint_id}"

    assert "Endpoint disabled." in _flash(admin, admin.post(f"{here}/active", {"active": "0"}))
    with ui_crm.db.write() as session:
        service.create(session, ui_crm, {"display_name": "Không ai nghe"})
    assert _count(ui_crm, WebhookDelivery) == 0  # a disabled endpoint is sent nothing
    refused = _flash(admin, admin.post(f"{here}/ping"))
    assert "inactive" in refused and receiver.received == []
    assert 'id="endpoint-state">disabled<' in refused
    assert "Endpoint enabled." in _flash(admin, admin.post(f"{here}/active", {"active": "1"}))
    assert admin.post(f"{here}/active", {"active": "maybe"}).status_code == 422

    bad = admin.post(here, {"url": receiver.url, "events": ["nope"]})
    assert bad.status_code == 422 and 'id="edit-events-error"' in bad.text
    saved = admin.post(
        here, {"url": receiver.url, "events": ["customer.deleted"], "description": "x"}
    )
    assert "Saved." in _flash(admin, saved)
    with ui_crm.db.session() as session:
        assert session.get(WebhookEndpoint, endpoint_id).events == ["customer.deleted"]

    rotated = admin.post(f"{here}/rotate")
    assert rotated.status_code == 200 and rotated.headers["Cache-Control"] == "no-store"
    new_secret = re.search(r'<code id="new-secret">([^<]+)</code>', rotated.text).group(1)
    assert new_secret != secret
    _flash(admin, admin.post(f"{here}/ping"))
    headers, body = receiver.received[-1]
    assert verify_signature(new_secret, headers[SIGNATURE_HEADER], body)
    assert not verify_signature(secret, headers[SIGNATURE_HEADER], body)

    page = admin.get(here).text
    assert 'data-confirm="Delete this endpoint and its deliveries?"' in page
    gone = _flash(admin, admin.post(f"{here}/delete"))
    assert f"Deleted the endpoint {receiver.url}." in gone
    assert _count(ui_crm, WebhookEndpoint) == 0 and _count(ui_crm, WebhookDelivery) == 0
    assert admin.get(here).status_code == 404
    assert admin.post(f"{here}/ping").status_code == 404
    assert admin.post("/admin/webhooks/deliveries/999/redeliver").status_code == 404
