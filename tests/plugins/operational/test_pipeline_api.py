"""The pipeline, activities and interactions through the REST API."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core import auth, users
from core.customers import service
from core.web.app import create_app
from plugins.operational.models import Interaction, LostReason


@pytest.fixture
def api(ops_crm):
    app = TestClient(create_app(ops_crm), base_url="http://testserver")

    def as_user(email: str) -> TestClient:
        with ops_crm.db.write() as session:
            secret = auth.create_token(session, users.get_user(session, email), "test").secret
        client = TestClient(app.app, base_url="http://testserver")
        client.headers["Authorization"] = f"Bearer {secret}"
        return client

    return as_user


def _customer(crm, name: str, owner_email: str) -> int:
    with crm.db.write() as session:
        owner = users.get_user(session, owner_email)
        return service.create(session, crm, {"display_name": name, "owner_id": owner.id}).id


def test_opportunity_lifecycle_with_versions_and_reasons(ops_crm, api):
    an = api("an@example.com")
    customer = _customer(ops_crm, "Nhà sách Phương Nam", "an@example.com")
    created = an.post(
        "/api/operational/opportunities",
        json={
            "customer_id": customer,
            "title": "Sách giáo khoa 2027",
            "expected_revenue_minor": 80_000_000,
        },
    )
    assert created.status_code == 201, created.text
    deal = created.json()
    assert (deal["stage"], deal["probability"], deal["weighted_minor"]) == ("new", 10, 8_000_000)
    moved = an.patch(
        f"/api/operational/opportunities/{deal['id']}", json={"version": 1, "stage": "negotiation"}
    )
    assert moved.json()["probability"] == 75 and moved.json()["version"] == 2
    stale = an.patch(
        f"/api/operational/opportunities/{deal['id']}", json={"version": 1, "title": "x"}
    )
    assert stale.status_code == 409 and stale.json()["current"]["stage"] == "negotiation"
    no_reason = an.patch(
        f"/api/operational/opportunities/{deal['id']}", json={"version": 2, "stage": "lost"}
    )
    assert no_reason.status_code == 422 and no_reason.json()["detail"][0]["loc"] == [
        "body",
        "lost_reason_id",
    ]
    unknown = an.patch(
        f"/api/operational/opportunities/{deal['id']}", json={"version": 2, "stage": "heaven"}
    )
    assert unknown.status_code == 422 and "negotiation" in unknown.json()["detail"][0]["msg"]
    with ops_crm.db.session() as session:
        reason = session.scalar(select(LostReason.id).where(LostReason.name == "competitor"))
    lost = an.patch(
        f"/api/operational/opportunities/{deal['id']}",
        json={"version": 2, "stage": "lost", "lost_reason_id": reason},
    )
    assert lost.status_code == 200 and lost.json()["closed_at"] and lost.json()["probability"] == 0
    listed = an.get("/api/operational/opportunities", params={"open_only": True}).json()
    assert listed["items"] == []


def test_other_teams_cannot_see_or_use_a_customer_or_its_deals(ops_crm, api):
    customer = _customer(ops_crm, "Khách của An", "an@example.com")
    deal = (
        api("an@example.com")
        .post("/api/operational/opportunities", json={"customer_id": customer, "title": "Bí mật"})
        .json()
    )
    chi = api("chi@example.com")
    assert chi.get(f"/api/operational/opportunities/{deal['id']}").status_code == 404
    assert chi.get("/api/operational/opportunities").json()["items"] == []
    refused = chi.post(
        "/api/operational/opportunities", json={"customer_id": customer, "title": "x"}
    )
    assert refused.status_code == 422
    assert chi.get(f"/api/operational/customers/{customer}/timeline").status_code == 404
    assert (
        api("mai@example.com")
        .post("/api/operational/opportunities", json={"customer_id": customer, "title": "x"})
        .status_code
        == 403
    )  # marketing may read deals but not open them


def test_agenda_overdue_and_completion_log_the_interaction(ops_crm, api):
    an = api("an@example.com")
    customer = _customer(ops_crm, "Chị Hương", "an@example.com")
    bad = an.post(
        "/api/operational/activities",
        json={"kind": "fax", "subject": "x", "due_at": "2030-01-01T00:00:00Z"},
    )
    assert bad.status_code == 422
    late = an.post(
        "/api/operational/activities",
        json={
            "kind": "call",
            "subject": "Gọi chốt đơn",
            "due_at": "2020-01-01T09:00:00Z",
            "customer_id": customer,
        },
    ).json()
    later = an.post(
        "/api/operational/activities",
        json={
            "kind": "meeting",
            "subject": "Gặp ở quán",
            "due_at": "2099-01-01T09:00:00Z",
            "customer_id": customer,
        },
    ).json()
    assert [a["id"] for a in an.get("/api/operational/activities").json()] == [
        late["id"],
        later["id"],
    ]
    assert [
        a["id"] for a in an.get("/api/operational/activities", params={"overdue": True}).json()
    ] == [late["id"]]
    done = an.post(
        f"/api/operational/activities/{late['id']}/complete", json={"outcome": "Khách đồng ý"}
    )
    assert done.status_code == 200 and done.json()["interaction_id"]
    again = an.post(f"/api/operational/activities/{late['id']}/complete", json={})
    assert again.status_code == 409
    timeline = an.get(f"/api/operational/customers/{customer}/timeline").json()
    assert timeline[0]["subject"] == "Gọi chốt đơn" and "Khách đồng ý" in timeline[0]["body"]
    assert (
        an.get(
            f"/api/operational/customers/{customer}/timeline", params={"channel": "email"}
        ).json()
        == []
    )
    with ops_crm.db.session() as session:
        assert session.scalar(select(Interaction.source)) == "activity"


def test_interactions_from_the_api_are_validated(ops_crm, api):
    an = api("an@example.com")
    customer = _customer(ops_crm, "Anh Tuấn", "an@example.com")
    wrong = an.post(
        "/api/operational/interactions",
        json={"customer_id": customer, "kind": "chat", "channel": "telegram", "subject": "x"},
    )
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"][-1] == "channel"
    made = an.post(
        "/api/operational/interactions",
        json={
            "customer_id": customer,
            "kind": "chat",
            "channel": "zalo",
            "direction": "inbound",
            "subject": "Hỏi ship",
        },
    )
    assert made.status_code == 201 and made.json()["source"] == "api"


def test_reminders_are_mailed_once_through_smtp(make_crm, ops_crm, api, smtp):
    from plugins.operational import reminders

    an = api("an@example.com")
    made = an.post(
        "/api/operational/activities",
        json={
            "kind": "call",
            "subject": "Gọi chị Lan",
            "due_at": "2030-01-01T09:00:00Z",
            "remind_at": "2020-01-01T08:00:00Z",
        },
    )
    assert made.status_code == 201
    later = an.post(
        "/api/operational/activities",
        json={
            "kind": "todo",
            "subject": "Sau",
            "due_at": "2099-01-02T09:00:00Z",
            "remind_at": "2099-01-01T09:00:00Z",
        },
    )
    assert later.status_code == 201
    sending = make_crm(load_plugins="operational", smtp_url=smtp.url)
    assert reminders.send_due(sending).sent == 1
    assert reminders.send_due(sending).sent == 0  # never twice
    assert smtp.handler.recipients() == ["an@example.com"]
    assert "Gọi chị Lan" in smtp.handler.messages[0]["Subject"]
    bad = an.post(
        "/api/operational/activities",
        json={
            "kind": "call",
            "subject": "x",
            "due_at": "2030-01-01T09:00:00Z",
            "remind_at": "2031-01-01T09:00:00Z",
        },
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "remind_at"


def test_a_team_gets_its_own_stages_from_the_command_line(ops_crm, api, cli):
    env = {"CRM_LOAD_PLUGINS": "operational"}
    bad = cli("pipeline", "set-stages", "--team", "north", "new:Mới:10", "won:Thắng:100:won", **env)
    assert bad.exit_code == 1 and "lost stage" in bad.output
    done = cli(
        "pipeline",
        "set-stages",
        "--team",
        "north",
        "new:Mới:10",
        "demo:Trình diễn:40",
        "won:Thắng:100:won",
        "lost:Thua:0:lost",
        **env,
    )
    assert done.exit_code == 0, done.output
    listed = cli("pipeline", "stages", "--team", "north", "--format", "json", **env)
    assert [s["name"] for s in json.loads(listed.output)] == ["new", "demo", "won", "lost"]
    an = api("an@example.com")  # north
    customer = _customer(ops_crm, "Khách mới", "an@example.com")
    deal = an.post(
        "/api/operational/opportunities", json={"customer_id": customer, "title": "x"}
    ).json()
    moved = an.patch(
        f"/api/operational/opportunities/{deal['id']}", json={"version": 1, "stage": "demo"}
    )
    assert moved.status_code == 200 and moved.json()["probability"] == 40
    refused = cli(
        "pipeline",
        "set-stages",
        "--team",
        "north",
        "new:Mới:10",
        "won:W:100:won",
        "lost:L:0:lost",
        **env,
    )
    assert refused.exit_code == 1 and "move it first" in refused.output
    south = api("chi@example.com").get("/api/operational/stages").json()
    assert "proposal" in [s["name"] for s in south]  # other teams keep the default pipeline
    assert cli("pipeline", "add-lost-reason", "slow", "Giao hàng chậm", **env).exit_code == 0
