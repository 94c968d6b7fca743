"""Outbound webhooks: the transactional outbox, signed delivery to a real receiver, retries with
backoff, leases between concurrent workers, SSRF checks at delivery time, the background
deliverer, and the schema (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import socket
import ssl
import subprocess
import threading
import time
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from core import checks, modules
from core.bootstrap import initialise
from core.db import utcnow
from core.models import AuditLog
from core.webhooks import declared_events, delivery, publish, service, targets
from core.webhooks.errors import WebhookError
from core.webhooks.models import WebhookDelivery, WebhookEndpoint
from core.webhooks.signing import signature_header, verify_signature
from tests.conftest import ROOT
from tests.core.webhook_receiver import Receiver, free_port
from tests.schema_diff import module_diffs

EVENT = "hooked.thing_done"
#: ``openssl`` making a self-signed certificate for ``hooks.example.test``.
SELF_SIGNED = (
    *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
    *("-subj", "/CN=hooks.example.test", "-addext", "subjectAltName=DNS:hooks.example.test"),
)


@pytest.fixture
def receiver():
    """A receiver on loopback, answering 200 unless told otherwise."""
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def hooked_crm(make_crm):
    """A CRM with the ``hooked`` module (it declares ``hooked.thing_done``), loopback targets
    allowed (the receiver runs on 127.0.0.1), and no background deliverer."""

    def build(**overrides: str):
        settings = {"load_plugins": "hooked", "webhooks_allow_private": "true", **overrides}
        crm = make_crm(**settings)
        initialise(crm, "admin@example.com", "Admin-pass-123")
        modules.enable(crm, ["hooked"])
        return crm

    return build


@pytest.fixture
def crm_hooked(hooked_crm):
    """The default ``hooked_crm``."""
    return hooked_crm()


@pytest.fixture
def no_background():
    """Stops a background deliverer a test started, even when the test fails."""
    yield
    delivery.stop()
    assert not delivery.running()


def _endpoint(crm, url: str, events=(EVENT,)) -> tuple[int, str]:
    with crm.db.write() as session:
        endpoint, secret = service.add_endpoint(session, crm, url, list(events), "test")
        return endpoint.id, secret


def _publish(crm, name: str = "a", amount: int = 150_000, event_name: str = EVENT) -> None:
    with crm.db.write() as session:
        publish(
            session, crm, event_name, {"name": name, "amount": {"minor": amount, "currency": "VND"}}
        )


def _rows(crm) -> list[WebhookDelivery]:
    with crm.db.session() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def _row(crm, delivery_id: int) -> WebhookDelivery:
    with crm.db.session() as session:
        return session.get(WebhookDelivery, delivery_id)


# --- the outbox --------------------------------------------------------------------------------


def test_a_published_event_is_signed_and_delivered_to_the_receiver(crm_hooked, receiver):
    endpoint_id, secret = _endpoint(crm_hooked, receiver.url)
    _publish(crm_hooked, "first", 150_000)
    report = delivery.deliver_due(crm_hooked)
    assert (report.delivered, report.retrying, report.failed) == (1, 0, 0)
    [request] = receiver.requests
    body = request.body
    headers = request.headers
    assert verify_signature(secret, headers["X-CRM-Signature"], body)
    payload = json.loads(body)
    assert payload["type"] == EVENT
    assert payload["data"] == {"name": "first", "amount": {"minor": 150_000, "currency": "VND"}}
    assert dt.datetime.fromisoformat(payload["created_at"]).tzinfo is not None
    [row] = _rows(crm_hooked)
    assert headers["X-CRM-Event"] == EVENT
    assert headers["X-CRM-Event-Id"] == payload["id"] == row.event_id
    assert headers["X-CRM-Delivery"] == str(row.id)
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("crm-webhooks/")
    assert headers["X-CRM-Signature"].startswith(f"t={headers['X-CRM-Timestamp']},v1=")
    assert request.path == "/hook"
    assert (row.status, row.attempts, row.response_status, row.error) == ("delivered", 1, 200, None)
    assert row.endpoint_id == endpoint_id and row.delivered_at is not None
    assert row.duration_ms is not None and row.locked_until is None

    # what a receiver checks: the secret, the body as sent, a recent timestamp
    timestamp = int(headers["X-CRM-Timestamp"])
    assert not verify_signature("another-secret", headers["X-CRM-Signature"], body)
    assert not verify_signature(
        secret, headers["X-CRM-Signature"], body.replace(b"first", b"forst")
    )
    assert not verify_signature(secret, headers["X-CRM-Signature"], body, now=timestamp + 301)
    assert verify_signature(secret, headers["X-CRM-Signature"], body, now=timestamp + 299)
    assert not verify_signature(secret, "v1=abc", body)
    assert delivery.deliver_due(crm_hooked).delivered == 0  # sent once


def test_the_receivers_snippet_in_the_guide_verifies_a_real_delivery(crm_hooked, receiver):
    guide = (ROOT / "docs" / "webhooks.md").read_text(encoding="utf-8")
    [snippet] = [
        block
        for block in re.findall(r"```python\n(.*?)```", guide, re.S)
        if "def verify_signature" in block
    ]
    namespace: dict = {}
    exec(snippet, namespace)  # the code receivers copy
    documented = namespace["verify_signature"]
    _, secret = _endpoint(crm_hooked, receiver.url)
    _publish(crm_hooked)
    delivery.deliver_due(crm_hooked)
    [request] = receiver.requests
    header = request.headers["X-CRM-Signature"]
    assert documented(secret, header, request.body)
    assert not documented(secret, header, request.body + b" ")
    assert not documented("wrong", header, request.body)
    now = int(time.time())
    assert documented(secret, signature_header(secret, now - 60, request.body), request.body)
    assert not documented(secret, signature_header(secret, now - 600, request.body), request.body)


def test_one_event_goes_to_each_subscribed_active_endpoint_with_one_event_id(crm_hooked, receiver):
    _endpoint(crm_hooked, receiver.url)
    _endpoint(crm_hooked, receiver.url + "?all", events=("*",))
    _endpoint(crm_hooked, receiver.url + "?ping", events=("ping",))
    paused, _ = _endpoint(crm_hooked, receiver.url + "?paused")
    with crm_hooked.db.write() as session:
        service.update_endpoint(session, crm_hooked, paused, active=False)
    _publish(crm_hooked)
    rows = _rows(crm_hooked)
    assert [r.endpoint_id for r in rows] == [1, 2]
    assert rows[0].event_id == rows[1].event_id and rows[0].body == rows[1].body
    assert delivery.deliver_due(crm_hooked).delivered == 2
    assert sorted(r.path for r in receiver.requests) == ["/hook", "/hook?all"]


def test_a_rolled_back_transaction_sends_nothing(crm_hooked, receiver):
    _endpoint(crm_hooked, receiver.url)
    with pytest.raises(RuntimeError), crm_hooked.db.write() as session:
        publish(session, crm_hooked, EVENT, {"name": "never"})
        assert len(session.scalars(select(WebhookDelivery)).all()) == 1  # in the transaction
        raise RuntimeError("rolled back")
    assert _rows(crm_hooked) == []
    assert delivery.deliver_due(crm_hooked).delivered == 0
    assert receiver.requests == []


def test_endpoints_are_read_once_per_transaction_and_none_means_no_rows(crm_hooked, receiver):
    selects: list[str] = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT") and "core_webhook_endpoint" in statement:
            selects.append(statement)

    event.listen(crm_hooked.db.engine, "before_cursor_execute", count)
    try:
        with crm_hooked.db.write() as session:
            for name in ("a", "b", "c"):
                publish(session, crm_hooked, EVENT, {"name": name})
        assert len(selects) == 1 and _rows(crm_hooked) == []
        _endpoint(crm_hooked, receiver.url)
        _publish(crm_hooked)  # a new transaction sees the new endpoint
        assert len(_rows(crm_hooked)) == 1
    finally:
        event.remove(crm_hooked.db.engine, "before_cursor_execute", count)


def test_unsendable_data_is_refused_even_when_no_endpoint_listens(crm_hooked):
    with crm_hooked.db.write() as session, pytest.raises(ValueError, match="integer minor"):
        publish(session, crm_hooked, EVENT, {"amount": Decimal("1.50")})


def test_an_undeclared_event_or_unsendable_data_is_refused(crm_hooked, receiver):
    _endpoint(crm_hooked, receiver.url)
    with crm_hooked.db.write() as session:
        with pytest.raises(ValueError, match=r"'hooked\.unknown' is not declared"):
            publish(session, crm_hooked, "hooked.unknown", {})
        with pytest.raises(ValueError, match="integer minor units"):
            publish(session, crm_hooked, EVENT, {"amount": Decimal("1.50")})
        with pytest.raises(ValueError, match="not JSON-serialisable"):
            publish(session, crm_hooked, EVENT, {"score": float("nan")})
        with pytest.raises(ValueError, match="must be a mapping"):
            publish(session, crm_hooked, EVENT, ["not", "a", "mapping"])
    assert _rows(crm_hooked) == []
    modules.disable(crm_hooked, "hooked")
    crm_hooked.refresh()
    with pytest.raises(ValueError, match="not declared"), crm_hooked.db.write() as session:
        publish(session, crm_hooked, EVENT, {})


def test_declared_events_keep_the_first_declaration_of_a_name(crm_hooked, caplog):
    caplog.set_level(logging.ERROR, "crm.webhooks")
    declared = declared_events(crm_hooked)
    assert declared["ping"][0] == "core"
    assert declared[EVENT][0] == "hooked" and declared[EVENT][1].label == "Thing done"
    assert any(
        "hooked declares webhook event 'ping', already declared by core" in r.message
        for r in caplog.records
    )


# --- retries -------------------------------------------------------------------------------


def test_a_refusing_receiver_is_retried_after_the_backoff(crm_hooked, receiver):
    _, secret = _endpoint(crm_hooked, receiver.url)
    receiver.replies = [(500, {}, b"database is down " + b"x" * 2000)]
    _publish(crm_hooked)
    start = utcnow()
    report = delivery.deliver_due(crm_hooked, now=start)
    assert (report.delivered, report.retrying) == (0, 1)
    [row] = _rows(crm_hooked)
    assert (row.status, row.attempts, row.response_status) == ("pending", 1, 500)
    assert row.error.startswith("HTTP 500: database is down") and len(row.error) <= 520
    wait = row.next_attempt_at - start
    assert dt.timedelta(seconds=53) < wait < dt.timedelta(seconds=67)  # 1 minute, with jitter
    assert report.next_due == row.next_attempt_at

    assert delivery.deliver_due(crm_hooked, now=start + dt.timedelta(seconds=30)).delivered == 0
    assert len(receiver.requests) == 1  # not due yet
    later = delivery.deliver_due(crm_hooked, now=start + dt.timedelta(minutes=2))
    assert later.delivered == 1 and later.next_due is None
    row = _row(crm_hooked, row.id)
    assert (row.status, row.attempts, row.response_status, row.error) == ("delivered", 2, 200, None)
    first, second = receiver.wait_for(2)
    assert first.body == second.body
    assert first.headers["X-CRM-Delivery"] == second.headers["X-CRM-Delivery"]
    assert verify_signature(secret, second.headers["X-CRM-Signature"], second.body)


def test_a_receiver_that_is_down_keeps_the_delivery_until_it_is_up(crm_hooked):
    port = free_port()
    _endpoint(crm_hooked, f"http://127.0.0.1:{port}/hook")
    _publish(crm_hooked, "one")
    _publish(crm_hooked, "two")
    start = utcnow()
    report = delivery.deliver_due(crm_hooked, now=start)
    # the second is not tried against an endpoint that just failed; it waits as long
    assert (report.retrying, report.skipped) == (1, 1)
    first, second = _rows(crm_hooked)
    assert (first.status, first.attempts) == ("pending", 1)
    assert "cannot connect" in first.error
    assert (second.status, second.attempts) == ("pending", 0)
    assert second.next_attempt_at == first.next_attempt_at

    receiver = Receiver(port).start()
    try:
        later = delivery.deliver_due(crm_hooked, now=start + dt.timedelta(minutes=2))
        assert later.delivered == 2
        assert sorted(json.loads(r.body)["data"]["name"] for r in receiver.requests) == [
            "one",
            "two",
        ]
    finally:
        receiver.stop()
    assert [(r.status, r.error) for r in _rows(crm_hooked)] == [("delivered", None)] * 2


def test_redirects_are_not_followed(crm_hooked, receiver):
    elsewhere = Receiver().start()
    try:
        _endpoint(crm_hooked, receiver.url)
        receiver.replies = [(302, {"Location": elsewhere.url}, b"")]
        _publish(crm_hooked)
        assert delivery.deliver_due(crm_hooked).retrying == 1
        [row] = _rows(crm_hooked)
        assert row.response_status == 302 and "not followed" in row.error
        assert elsewhere.requests == [] and len(receiver.requests) == 1
    finally:
        elsewhere.stop()


def test_after_the_last_attempt_a_delivery_fails_and_can_be_redelivered(hooked_crm, receiver):
    crm = hooked_crm(webhooks_max_attempts="2")
    _endpoint(crm, receiver.url)
    receiver.replies = [503, 503]
    _publish(crm)
    start = utcnow()
    assert delivery.deliver_due(crm, now=start).retrying == 1
    assert delivery.deliver_due(crm, now=start + dt.timedelta(hours=1)).failed == 1
    [failed] = _rows(crm)
    assert (failed.status, failed.attempts, failed.response_status) == ("failed", 2, 503)
    assert delivery.deliver_due(crm, now=start + dt.timedelta(days=30)).delivered == 0
    assert len(receiver.requests) == 2
    lost = {r.id: r for r in checks.run(crm)}["core.W016"]
    assert (lost.status, lost.detail) == (
        "open",
        "1 webhook deliveries gave up and were not redelivered",
    )

    with crm.db.write() as session:
        again = service.redeliver(session, failed.id)
        assert (again.status, again.attempts, again.event_id) == ("pending", 0, failed.event_id)
    assert delivery.deliver_due(crm).delivered == 1
    assert _row(crm, failed.id).status == "failed"  # kept, as it was
    assert _row(crm, again.id).status == "delivered"
    assert receiver.requests[-1].body == receiver.requests[0].body
    assert {r.id: r for r in checks.run(crm)}["core.W016"].status == "ok"

    with crm.db.write() as session, pytest.raises(WebhookError, match="does not exist"):
        service.redeliver(session, 999)


def test_redelivering_a_pending_delivery_makes_it_due_now(crm_hooked, receiver):
    _endpoint(crm_hooked, receiver.url)
    receiver.replies = [500]
    _publish(crm_hooked)
    delivery.deliver_due(crm_hooked)
    [row] = _rows(crm_hooked)
    assert row.next_attempt_at > utcnow()
    with crm_hooked.db.write() as session:
        assert service.redeliver(session, row.id).id == row.id
    assert delivery.deliver_due(crm_hooked).delivered == 1
    assert _row(crm_hooked, row.id).attempts == 2


# --- workers -------------------------------------------------------------------------------


def test_two_concurrent_workers_send_each_delivery_once(hooked_crm, make_crm, receiver):
    crm = hooked_crm()
    other = make_crm(load_plugins="hooked", webhooks_allow_private="true")
    _endpoint(crm, receiver.url)
    for number in range(12):
        _publish(crm, f"n{number}")
    receiver.delay = 0.03
    reports = []
    barrier = threading.Barrier(2)

    def work(instance):
        barrier.wait()
        reports.append(delivery.deliver_due(instance))

    threads = [threading.Thread(target=work, args=(c,)) for c in (crm, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(r.delivered for r in reports) == 12
    sent = [r.headers["X-CRM-Delivery"] for r in receiver.requests]
    assert len(sent) == 12 and len(set(sent)) == 12
    assert {(r.status, r.attempts) for r in _rows(crm)} == {("delivered", 1)}


def test_a_claim_of_a_worker_that_died_is_taken_again_after_its_lease(crm_hooked, receiver):
    _endpoint(crm_hooked, receiver.url)
    _publish(crm_hooked)
    [row] = _rows(crm_hooked)
    start = utcnow()
    held = delivery._claim(crm_hooked, row.id, start, 10)  # the worker then dies
    assert held is not None
    assert delivery.deliver_due(crm_hooked, now=start + dt.timedelta(minutes=1)).skipped == 0
    assert receiver.requests == []  # leased: not due for anyone else
    after = start + delivery.LEASE + dt.timedelta(seconds=1)
    assert delivery.deliver_due(crm_hooked, now=after).delivered == 1
    row = _row(crm_hooked, row.id)
    assert (row.status, row.attempts) == ("delivered", 2)


def test_an_endpoint_out_of_attempts_with_a_dead_worker_fails(hooked_crm, receiver):
    crm = hooked_crm(webhooks_max_attempts="1")
    _endpoint(crm, receiver.url)
    _publish(crm)
    [row] = _rows(crm)
    start = utcnow()
    assert delivery._claim(crm, row.id, start, 1) is not None  # its only attempt, then dies
    report = delivery.deliver_due(crm, now=start + delivery.LEASE + dt.timedelta(seconds=1))
    assert report.failed == 1
    row = _row(crm, row.id)
    assert row.status == "failed" and "gave up after 1 attempts" in row.error
    assert receiver.requests == []


def test_deliveries_of_an_inactive_endpoint_wait_until_it_is_active(crm_hooked, receiver):
    endpoint_id, _ = _endpoint(crm_hooked, receiver.url)
    _publish(crm_hooked)
    with crm_hooked.db.write() as session:
        service.update_endpoint(session, crm_hooked, endpoint_id, active=False)
    assert delivery.deliver_due(crm_hooked).delivered == 0
    assert _rows(crm_hooked)[0].status == "pending"
    with crm_hooked.db.write() as session:
        service.update_endpoint(session, crm_hooked, endpoint_id, active=True)
    assert delivery.deliver_due(crm_hooked).delivered == 1


def test_old_delivered_deliveries_are_pruned_and_undelivered_ones_kept(
    hooked_crm, make_crm, receiver
):
    crm = hooked_crm(webhooks_keep_days="7", webhooks_max_attempts="1")
    _endpoint(crm, receiver.url)
    receiver.replies = [500]
    _publish(crm, "failing")
    _publish(crm, "fine")
    delivery.deliver_due(crm)
    _publish(crm, "waiting")
    assert [r.status for r in _rows(crm)] == ["failed", "delivered", "pending"]
    assert delivery.prune_delivered(crm, now=utcnow() + dt.timedelta(days=6)) == 0
    assert delivery.prune_delivered(crm, now=utcnow() + dt.timedelta(days=8)) == 1
    assert [r.status for r in _rows(crm)] == ["failed", "pending"]
    forever = make_crm(load_plugins="hooked", webhooks_keep_days="0")
    assert delivery.prune_delivered(forever, now=utcnow() + dt.timedelta(days=999)) == 0


# --- SSRF at delivery time -----------------------------------------------------------------


def test_a_name_rebound_to_loopback_after_registration_is_refused(
    hooked_crm, receiver, monkeypatch
):
    crm = hooked_crm(webhooks_allow_private="false")
    answers = {"hooks.example.test": ["93.184.215.14"]}  # public when registered
    monkeypatch.setattr(targets, "resolve", lambda host, port: answers[host])
    _endpoint(crm, f"http://hooks.example.test:{receiver.port}/hook")
    answers["hooks.example.test"] = ["93.184.215.14", "127.0.0.1"]  # rebound before delivery
    _publish(crm)
    assert delivery.deliver_due(crm).retrying == 1
    [row] = _rows(crm)
    assert row.error == (
        "refused: resolves to 127.0.0.1, a loopback address;"
        " set CRM_WEBHOOKS_ALLOW_PRIVATE=true for on-premise targets"
    )
    assert row.response_status is None and receiver.requests == []


def test_the_request_goes_to_the_address_that_was_checked(hooked_crm, receiver, monkeypatch):
    crm = hooked_crm()
    asked: list[str] = []

    def resolve(host, port):
        asked.append(host)
        return ["127.0.0.1"]

    # The name exists nowhere: had the client resolved it again, the connection would fail.
    monkeypatch.setattr(targets, "resolve", resolve)
    _, secret = _endpoint(crm, f"http://hooks.example.test:{receiver.port}/in?x=1")
    _publish(crm)
    assert delivery.deliver_due(crm).delivered == 1
    [request] = receiver.requests
    assert request.headers["Host"] == f"hooks.example.test:{receiver.port}"
    assert request.path == "/in?x=1"
    assert verify_signature(secret, request.headers["X-CRM-Signature"], request.body)
    assert asked == ["hooks.example.test", "hooks.example.test"]  # registration, delivery


def test_https_goes_to_the_checked_address_with_the_name_for_sni_and_verification(
    hooked_crm, receiver, monkeypatch, tmp_path
):
    # A TLS server on loopback with a self-signed certificate for the name: it records the
    # name the client asks for (SNI); the client must refuse the certificate it does not trust.
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [*SELF_SIGNED, "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    asked_for: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: asked_for.append(name)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve_once():
        conn, _ = listener.accept()
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except OSError:  # the client hangs up on the certificate
            pass

    server = threading.Thread(target=serve_once, daemon=True)
    server.start()
    monkeypatch.setattr(targets, "resolve", lambda host, port: ["127.0.0.1"])
    crm = hooked_crm()
    port = listener.getsockname()[1]
    try:
        _endpoint(crm, f"https://hooks.example.test:{port}/hook")
        _publish(crm)
        assert delivery.deliver_due(crm).retrying == 1
        server.join(10)
    finally:
        listener.close()
    assert asked_for == ["hooks.example.test"]
    [row] = _rows(crm)
    assert "127.0.0.1: cannot connect" in row.error
    assert "CERTIFICATE_VERIFY_FAILED" in row.error


def test_a_private_target_is_refused_at_delivery_once_the_setting_is_off(
    hooked_crm, make_crm, receiver
):
    crm = hooked_crm()
    _endpoint(crm, receiver.url)
    _publish(crm)
    strict = make_crm(load_plugins="hooked", webhooks_allow_private="false")
    assert delivery.deliver_due(strict).retrying == 1
    [row] = _rows(crm)
    assert row.error.startswith("refused: is 127.0.0.1, a loopback address")
    assert receiver.requests == []


# --- managing endpoints --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "events", "field", "reason"),
    [
        ("ftp://127.0.0.1/x", [EVENT], "url", "is not an http:// or https:// URL"),
        ("http://user:pw@127.0.0.1/x", [EVENT], "url", "user name or password"),
        ("http://0177.0.0.1/x", [EVENT], "url", "four decimal numbers"),
        ("http://169.254.169.254/latest", [EVENT], "url", "a link-local address"),
        ("http://127.0.0.1/x", [], "events", "choose at least one event"),
        ("http://127.0.0.1/x", ["order.nope"], "events", "unknown event 'order.nope'"),
    ],
)
def test_registration_refuses_bad_input_and_stores_nothing(crm_hooked, url, events, field, reason):
    with pytest.raises(WebhookError) as caught, crm_hooked.db.write() as session:
        service.add_endpoint(session, crm_hooked, url, events)
    assert str(caught.value).startswith(f"{field}: ") and reason in str(caught.value)
    with crm_hooked.db.session() as session:
        assert service.list_endpoints(session) == []


def test_loopback_is_refused_without_the_allow_private_setting(hooked_crm):
    crm = hooked_crm(webhooks_allow_private="false")
    with pytest.raises(WebhookError) as caught, crm.db.write() as session:
        service.add_endpoint(session, crm, "http://localhost:8080/hook", [EVENT])
    assert str(caught.value) == (
        "url: http://localhost:8080/hook resolves to 127.0.0.1, a loopback address;"
        " set CRM_WEBHOOKS_ALLOW_PRIVATE=true for on-premise targets"
    )


def test_update_rotate_and_remove(crm_hooked, receiver):
    endpoint_id, old_secret = _endpoint(crm_hooked, receiver.url)
    with crm_hooked.db.write() as session:
        with pytest.raises(WebhookError, match=r"^url: "):
            service.update_endpoint(session, crm_hooked, endpoint_id, url="http://0x7f.1/")
        with pytest.raises(WebhookError, match=r"^description: "):
            service.update_endpoint(session, crm_hooked, endpoint_id, description="x" * 201)
        updated = service.update_endpoint(
            session, crm_hooked, endpoint_id, events=["ping", EVENT, "ping"], description="ERP"
        )
        assert (updated.events, updated.description, updated.url) == (
            ["ping", EVENT],
            "ERP",
            receiver.url,
        )
        new_secret = service.rotate_secret(session, endpoint_id)
    assert new_secret != old_secret and len(new_secret) >= 40
    _publish(crm_hooked)
    delivery.deliver_due(crm_hooked)
    [request] = receiver.requests
    assert verify_signature(new_secret, request.headers["X-CRM-Signature"], request.body)
    assert not verify_signature(old_secret, request.headers["X-CRM-Signature"], request.body)

    with crm_hooked.db.session() as session:
        trail = session.scalars(
            select(AuditLog).where(AuditLog.model == "core_webhook_endpoint").order_by(AuditLog.id)
        ).all()
    assert [entry.action for entry in trail] == ["create", "update", "rotate_secret"]
    assert all("secret" not in (entry.after or {}) for entry in trail)

    with crm_hooked.db.write() as session:
        service.remove_endpoint(session, endpoint_id)
    assert _rows(crm_hooked) == []
    with crm_hooked.db.write() as session, pytest.raises(WebhookError, match="does not exist"):
        service.remove_endpoint(session, endpoint_id)


def test_a_ping_goes_to_one_endpoint_whatever_it_subscribes_to(crm_hooked, receiver):
    endpoint_id, secret = _endpoint(crm_hooked, receiver.url)
    _endpoint(crm_hooked, receiver.url + "?other", events=("*",))
    with crm_hooked.db.write() as session:
        ping = service.send_ping(session, crm_hooked, endpoint_id)
    assert delivery.deliver_due(crm_hooked, ids=[ping.id]).delivered == 1
    [request] = receiver.requests
    assert request.headers["X-CRM-Event"] == "ping" and request.path == "/hook"
    assert json.loads(request.body)["data"] == {"endpoint_id": endpoint_id}
    assert verify_signature(secret, request.headers["X-CRM-Signature"], request.body)
    with crm_hooked.db.session() as session:
        assert [d.id for d in service.list_deliveries(session, status="delivered")] == [ping.id]
        assert service.list_deliveries(session, endpoint_id=2) == []
        with pytest.raises(WebhookError, match=r"^status: "):
            service.list_deliveries(session, status="lost")


# --- in the server -------------------------------------------------------------------------


def test_the_server_delivers_in_the_background_while_it_runs(hooked_crm, receiver, no_background):
    from core.web.app import create_app

    crm = hooked_crm()
    _endpoint(crm, receiver.url)
    _publish(crm, "queued before the start")
    assert not delivery.running()
    with TestClient(create_app(crm)):
        assert delivery.running()
        receiver.wait_for(1)  # what was due at startup
        _publish(crm, "after a commit")  # the commit wakes the deliverer
        requests = receiver.wait_for(2)
    assert not delivery.running()
    names = [json.loads(r.body)["data"]["name"] for r in requests]
    assert names == ["queued before the start", "after a commit"]


def test_no_background_deliverer_when_the_setting_is_off(hooked_crm, receiver, no_background):
    from core.web.app import create_app

    crm = hooked_crm(webhooks_in_server="false")
    _endpoint(crm, receiver.url)
    with TestClient(create_app(crm)):
        assert not delivery.running()
        _publish(crm)
    assert receiver.requests == [] and _rows(crm)[0].status == "pending"


# --- schema --------------------------------------------------------------------------------


def test_the_webhook_tables_match_their_migration(crm_hooked):
    from core import migrate

    assert module_diffs(crm_hooked.db.engine, "core_webhook") == []
    with crm_hooked.db.engine.connect() as conn:
        [core] = [s for s in migrate.status(crm_hooked, conn, []) if s.module == "core"]
    assert core.current == core.head == "core_0005"
    with crm_hooked.db.session() as session:
        assert session.scalars(select(WebhookEndpoint)).all() == []


class _ScriptedReceiver:
    """A receiver on loopback whose handler runs ``script(delivery_id)`` before answering 200."""

    def __init__(self, script) -> None:
        import http.server

        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                seen.append(self.headers["X-CRM-Delivery"])
                script(self.headers["X-CRM-Delivery"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_lease_runs_from_the_claim_not_from_the_start_of_a_long_run(crm_hooked, monkeypatch):
    monkeypatch.setattr(delivery, "LEASE", dt.timedelta(seconds=2))
    second_worker = []

    def script(delivery_id: str) -> None:
        if len(receiver.seen) == 1:
            time.sleep(2.5)  # the run is now older than a lease
        else:  # another worker runs while the second delivery is in flight
            second_worker.append(delivery.deliver_due(crm_hooked))

    receiver = _ScriptedReceiver(script)
    try:
        _endpoint(crm_hooked, receiver.url)
        _publish(crm_hooked, "first")
        _publish(crm_hooked, "second")
        report = delivery.deliver_due(crm_hooked)
    finally:
        receiver.stop()
    assert report.delivered == 2
    assert len(receiver.seen) == 2 and len(set(receiver.seen)) == 2  # nothing sent twice
    assert (second_worker[0].delivered, second_worker[0].retrying) == (0, 0)
    assert {row.status for row in _rows(crm_hooked)} == {"delivered"}


def test_a_receiver_answering_byte_by_byte_is_cut_off_at_the_timeout(hooked_crm):
    crm = hooked_crm(webhooks_timeout_seconds="1")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def drip() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        try:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                conn.send(bytes([byte]))
                time.sleep(0.3)
        except OSError:
            pass
        finally:
            conn.close()

    threading.Thread(target=drip, daemon=True).start()
    _endpoint(crm, f"http://127.0.0.1:{listener.getsockname()[1]}/")
    _publish(crm)
    started = time.monotonic()
    report = delivery.deliver_due(crm)
    elapsed = time.monotonic() - started
    listener.close()
    assert elapsed < 4, f"a 1 s timeout took {elapsed:.1f} s"
    assert report.retrying == 1
    [row] = _rows(crm)
    assert (row.status, row.error) == ("pending", "no complete answer within 1 s")


def test_dates_and_times_are_sent_as_iso_8601(crm_hooked, receiver):
    _endpoint(crm_hooked, receiver.url)
    moment = dt.datetime(2026, 11, 23, 8, 30, tzinfo=dt.UTC)
    with crm_hooked.db.write() as session:
        publish(session, crm_hooked, EVENT, {"at": moment, "day": moment.date(), "seen": (1, 2)})
    [row] = _rows(crm_hooked)
    assert json.loads(row.body)["data"] == {
        "at": "2026-11-23T08:30:00+00:00",
        "day": "2026-11-23",
        "seen": [1, 2],
    }
