"""``crm webhooks``: registering, listing, delivering, and refusing bad input with a clear
message, a non-zero exit and nothing stored; the worker loop and ``crm serve`` deliver too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from core.webhooks.signing import verify_signature
from tests.conftest import FIXTURES, ROOT
from tests.core.webhook_receiver import Receiver, free_port

#: The module that publishes ``hooked.thing_done``, and loopback targets allowed.
ENV = {"CRM_LOAD_PLUGINS": "hooked", "CRM_WEBHOOKS_ALLOW_PRIVATE": "true"}
EVENT = "hooked.thing_done"
WORKER = ("webhooks", "deliver", "--loop", "--interval", "0.2")


@pytest.fixture
def receiver():
    """A receiver on loopback."""
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def run(crm, cli):
    """``crm`` in-process with the ``hooked`` module enabled."""

    def invoke(*args: str, **env: str):
        return cli(*args, **{**ENV, **env})

    assert invoke("modules", "enable", "hooked").exit_code == 0
    return invoke


def _secret(output: str) -> str:
    return output.strip().splitlines()[-1].rsplit(": ", 1)[1]


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_register_publish_deliver_and_manage_from_the_command_line(run, receiver):
    events = {e["name"]: e for e in _json(run("webhooks", "events", "--format", "json"))}
    assert events[EVENT]["module"] == "hooked" and events["ping"]["module"] == "core"
    assert "Thing done" in run("webhooks", "events").output

    added = run("webhooks", "add", receiver.url, "--event", EVENT, "--description", "ERP")
    assert added.exit_code == 0, added.output
    assert f"Added webhook endpoint 1: {receiver.url} ({EVENT})" in added.output
    secret = _secret(added.output)
    [listed] = _json(run("webhooks", "list", "--format", "json"))
    assert listed["url"] == receiver.url and listed["events"] == [EVENT]
    assert "secret" not in listed and secret not in run("webhooks", "list").output

    assert run("hooked", "done", "widget", "--amount", "5000").exit_code == 0
    failed = run("hooked", "done", "broken", "--fail")
    assert failed.exit_code == 1 and "broken failed after publishing" in failed.output
    [queued] = _json(run("webhooks", "deliveries", "--format", "json"))
    assert (queued["event"], queued["status"], queued["attempts"]) == (EVENT, "pending", 0)
    assert _json(run("webhooks", "list", "--format", "json"))[0]["pending"] == 1

    delivered = run("webhooks", "deliver")
    assert delivered.exit_code == 0
    assert "Delivered 1, retrying 0, failed 0, skipped 0" in delivered.output
    [request] = receiver.requests
    assert verify_signature(secret, request.headers["X-CRM-Signature"], request.body)
    assert json.loads(request.body)["data"] == {
        "name": "widget",
        "amount": {"minor": 5000, "currency": "VND"},
    }
    done = _json(run("webhooks", "deliveries", "--status", "delivered", "--format", "json"))
    assert [d["id"] for d in done] == [queued["id"]] and done[0]["response_status"] == 200

    pinged = run("webhooks", "ping", "1")
    assert pinged.exit_code == 0 and "(ping): delivered, HTTP 200" in pinged.output
    assert receiver.requests[-1].headers["X-CRM-Event"] == "ping"

    again = run("webhooks", "redeliver", str(queued["id"]))
    assert again.exit_code == 0, again.output
    copy = max(d["id"] for d in _json(run("webhooks", "deliveries", "--format", "json")))
    assert f"Delivery {queued['id']} queued again as delivery {copy}" in again.output
    assert receiver.requests[-1].body == request.body

    rotated = run("webhooks", "rotate-secret", "1")
    new_secret = _secret(rotated.output)
    assert rotated.exit_code == 0 and new_secret != secret
    run("hooked", "done", "after rotation")
    run("webhooks", "deliver")
    last = receiver.requests[-1]
    assert verify_signature(new_secret, last.headers["X-CRM-Signature"], last.body)
    assert not verify_signature(secret, last.headers["X-CRM-Signature"], last.body)

    paused = run("webhooks", "update", "1", "--inactive", "--event", "*")
    assert paused.exit_code == 0 and "(*), inactive" in paused.output
    assert run("webhooks", "remove", "1").output.strip() == "Removed webhook endpoint 1"
    assert _json(run("webhooks", "list", "--format", "json")) == []
    assert _json(run("webhooks", "deliveries", "--format", "json")) == []


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ("http://127.0.0.1:9/hook", "--event", EVENT),
            {"CRM_WEBHOOKS_ALLOW_PRIVATE": "false"},
            "Error: url: http://127.0.0.1:9/hook is 127.0.0.1, a loopback address;"
            " set CRM_WEBHOOKS_ALLOW_PRIVATE=true for on-premise targets",
        ),
        (
            ("http://2130706433/hook", "--event", EVENT),
            {},
            "Error: url: http://2130706433/hook writes the host '2130706433' as a decimal",
        ),
        (
            ("https://user:pw@8.8.8.8/hook", "--event", EVENT),
            {},
            "contains a user name or password",
        ),
        (
            ("http://127.0.0.1:9/hook", "--event", "order.nope"),
            {},
            "Error: events: unknown event 'order.nope'; declared: ",
        ),
        (
            ("http://127.0.0.1:9/hook", "--event", EVENT, "--description", "x" * 201),
            {},
            "Error: description: at most 200 characters",
        ),
    ],
)
def test_a_refused_endpoint_exits_1_with_the_reason_and_stores_nothing(run, args, env, message):
    result = run("webhooks", "add", *args, **env)
    assert result.exit_code == 1
    assert message in result.output
    assert _json(run("webhooks", "list", "--format", "json")) == []


def test_misuse_is_reported_without_changing_anything(run, receiver):
    assert run("webhooks", "add", receiver.url).exit_code == 2  # --event is required
    assert run("webhooks", "add", receiver.url, "--event", EVENT).exit_code == 0
    for args in (
        ("update", "99", "--inactive"),
        ("remove", "99"),
        ("rotate-secret", "99"),
        ("ping", "99"),
        ("deliveries", "--endpoint", "99"),
    ):
        result = run("webhooks", *args)
        assert result.exit_code == 1 and "webhook endpoint 99 does not exist" in result.output
    redeliver = run("webhooks", "redeliver", "99")
    assert redeliver.exit_code == 1 and "webhook delivery 99 does not exist" in redeliver.output
    nothing = run("webhooks", "update", "1")
    assert nothing.exit_code == 2 and "give at least one of" in nothing.output
    bad_url = run("webhooks", "update", "1", "--url", "http://0x7f.0.0.1/")
    assert bad_url.exit_code == 1 and "four decimal numbers" in bad_url.output
    assert run("webhooks", "deliveries", "--status", "lost").exit_code == 2
    [endpoint] = _json(run("webhooks", "list", "--format", "json"))
    assert (endpoint["url"], endpoint["active"]) == (receiver.url, True)
    paused = run("webhooks", "update", "1", "--inactive")
    assert paused.exit_code == 0
    ping = run("webhooks", "ping", "1")
    assert ping.exit_code == 1 and "is inactive; activate it first" in ping.output
    assert _json(run("webhooks", "deliveries", "--format", "json")) == []


def test_a_ping_to_a_receiver_that_is_down_says_why_and_when_it_is_tried_again(run):
    url = f"http://127.0.0.1:{free_port()}/hook"
    assert run("webhooks", "add", url, "--event", "ping").exit_code == 0
    result = run("webhooks", "ping", "1")
    assert result.exit_code == 1
    assert "Error: delivery 1 (ping) not delivered: 127.0.0.1: cannot connect" in result.output
    assert "(pending, 1 attempt(s); next attempt at " in result.output
    [row] = _json(run("webhooks", "deliveries", "--status", "pending", "--format", "json"))
    assert row["attempts"] == 1 and "cannot connect" in row["error"]


def test_the_settings_are_listed_and_checked(cli):
    rows = {r["name"]: r for r in _json(cli("settings", "--module", "core", "--format", "json"))}
    assert rows["webhooks_allow_private"]["value"] is False
    assert rows["webhooks_allow_private"]["variable"] == "CRM_WEBHOOKS_ALLOW_PRIVATE"
    assert rows["webhooks_in_server"]["value"] is True
    assert rows["webhooks_max_attempts"]["value"] == 10
    assert rows["webhooks_keep_days"]["value"] == 30
    assert rows["webhooks_timeout_seconds"]["value"] == 10
    bad = cli("settings", CRM_WEBHOOKS_MAX_ATTEMPTS="0")
    assert bad.exit_code == 1 and "CRM_WEBHOOKS_MAX_ATTEMPTS: must be at least 1" in bad.output


def test_the_worker_loop_delivers_until_interrupted(run, cli, receiver):
    assert run("webhooks", "add", receiver.url, "--event", EVENT).exit_code == 0
    env = {
        **os.environ,
        **cli.env,
        **ENV,
        "PYTHONPATH": os.pathsep.join([str(FIXTURES), str(cli.site), str(ROOT)]),
        "PYTHONUNBUFFERED": "1",
    }
    worker = subprocess.Popen(
        [sys.executable, "-c", "import cli; cli.main()", *WORKER],
        env=env,
        cwd=cli.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert run("hooked", "done", "by the worker").exit_code == 0
        [request] = receiver.wait_for(1, timeout=60)
        assert json.loads(request.body)["data"]["name"] == "by the worker"
        assert worker.stdout is not None
        reported = worker.stdout.readline()  # once the delivery is recorded
    finally:
        worker.send_signal(signal.SIGINT)
        output = worker.communicate(timeout=30)[0]
    assert reported.startswith("Delivered 1, retrying 0, failed 0"), reported + output
    assert worker.returncode == 0 and output.strip() == "Stopped"


def test_crm_serve_delivers_what_is_due_when_it_starts(run, cli, serve, receiver):
    assert run("webhooks", "add", receiver.url, "--event", EVENT).exit_code == 0
    assert run("hooked", "done", "before the server").exit_code == 0
    cli.env.update(ENV)
    server = serve()
    try:
        [request] = receiver.wait_for(1, timeout=60)
    finally:
        server.stop()
    assert json.loads(request.body)["data"]["name"] == "before the server"
    [row] = _json(run("webhooks", "deliveries", "--format", "json"))
    assert row["status"] == "delivered"
