"""The operational checklist: real SMTP reachability, the reply token, data, attestations."""

from __future__ import annotations

import socket

from core import auth, checks, users


def _status(crm, item_id: str) -> tuple[str, str]:
    result = next(r for r in checks.run(crm, deploy=True) if r.id == item_id)
    return result.status, result.detail


def test_smtp_is_checked_against_a_real_server(make_crm, ops_crm, smtp):
    status, detail = _status(ops_crm, "operational.E101")
    assert status == "open" and "CRM_SMTP_URL" in detail  # not configured
    reachable = make_crm(load_plugins="operational", smtp_url=smtp.url)
    assert _status(reachable, "operational.E101")[0] == "ok"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    unreachable = make_crm(load_plugins="operational", smtp_url=f"smtp://127.0.0.1:{closed}")
    status, detail = _status(unreachable, "operational.E101")
    assert status == "open" and f"127.0.0.1:{closed}" in detail


def test_data_checks_and_the_reply_token(ops_crm):
    assert _status(ops_crm, "operational.E104")[0] == "ok"  # default stages
    assert _status(ops_crm, "operational.W105")[0] == "ok"
    assert _status(ops_crm, "operational.W103")[0] == "open"  # no products yet
    assert _status(ops_crm, "operational.W102")[0] == "open"
    with ops_crm.db.write() as session:
        gateway = users.create_user(
            session, "gateway@example.com", "Gateway", "Password-123!", ["admin"]
        )
        auth.create_token(session, gateway, "mail-gateway")
    assert _status(ops_crm, "operational.W102")[0] == "ok"


def test_training_items_are_attestations(ops_crm):
    for item_id in ("operational.W110", "operational.W111", "operational.W112"):
        assert _status(ops_crm, item_id)[0] == "open"
    checks.attest(
        ops_crm, "operational.W110", "admin@example.com", "trained 12 people on 2026-11-20"
    )
    assert _status(ops_crm, "operational.W110")[0] == "attested"
