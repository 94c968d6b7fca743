"""Hand-offs between teams: create, accept, return, cancel, escalate; the API's answers, the
history on the record, the notifications, the pages (htmx) and the CLI."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select, update

from core.db import utcnow
from core.models import AuditLog
from plugins.collaborative import departments, handoffs
from plugins.collaborative.models import AccountTeam, Follower, Handoff, Message, Notification
from tests.plugins.collaborative.helpers import add_customer

HANDOFFS = "/api/collaborative/handoffs"


def _customer(crm, name: str = "Công ty Sao Mai", owner: str = "chi@example.com") -> int:
    with crm.db.write() as session:
        return add_customer(session, name, owner=crm.people[owner])


def _hand(client, record_id: int, team: int, record_type: str = "customer", **extra):
    body = {
        "record_type": record_type,
        "record_id": record_id,
        "to_team_id": team,
        "message": "Khách muốn mở chi nhánh ở Hà Nội",
        **extra,
    }
    return client.post(HANDOFFS, json=body)


def _notified(crm, email: str, kind: str) -> list[Notification]:
    with crm.db.session() as session:
        return list(
            session.scalars(
                select(Notification).where(
                    Notification.user_id == crm.people[email], Notification.kind == kind
                )
            )
        )


def _history(crm, record_type: str, record_id: int) -> list[str]:
    with crm.db.session() as session:
        return list(
            session.scalars(
                select(Message.body)
                .where(
                    Message.record_type == record_type,
                    Message.record_id == record_id,
                    Message.kind == "event",
                )
                .order_by(Message.id)
            )
        )


def test_customer_handoff_is_accepted_by_the_receiving_team(co_crm, api):
    north = co_crm.people["team:north"]
    customer = _customer(co_crm)
    chi, binh, an = (api(co_crm, f"{n}@example.com") for n in ("chi", "binh", "an"))
    assert binh.get(f"/api/customers/{customer}").status_code == 404

    made = _hand(chi, customer, north)
    assert made.status_code == 201, made.text
    h = made.json()
    assert (h["status"], h["from_team"], h["to_team"]) == (
        "pending",
        "Kinh doanh miền Nam",
        "Kinh doanh miền Bắc",
    )
    assert h["record_title"] == "Công ty Sao Mai" and not h["overdue"]
    assert dt.datetime.fromisoformat(h["deadline"]) > utcnow() + dt.timedelta(hours=47)

    # the receiving team sees the customer while the hand-off waits, and was told
    assert binh.get(f"/api/customers/{customer}").status_code == 200
    for email in ("an@example.com", "binh@example.com", "mai@example.com"):
        assert [n.label for n in _notified(co_crm, email, "handoff")] == [
            "handed over to your team"
        ]
    assert _notified(co_crm, "dung@example.com", "handoff") == []
    assert [r["id"] for r in binh.get(HANDOFFS).json()["items"]] == [h["id"]]
    assert [r["id"] for r in chi.get(HANDOFFS, params={"box": "sent"}).json()["items"]] == [h["id"]]
    assert chi.get(HANDOFFS).json()["items"] == []
    with co_crm.db.session() as session:
        assert (
            session.scalar(
                select(Follower.reason).where(
                    Follower.record_id == customer,
                    Follower.user_id == co_crm.people["chi@example.com"],
                )
            )
            == "handoff"
        )

    second = _hand(chi, customer, co_crm.people["team:care"])
    assert second.status_code == 409

    # only the receiving team decides; the version must be current
    url = f"{HANDOFFS}/{h['id']}"
    assert chi.post(f"{url}/accept", json={"version": h["version"]}).status_code == 403
    assert (
        api(co_crm, "dung@example.com").post(f"{url}/accept", json={"version": 1}).status_code
        == 403
    )
    stale = an.post(f"{url}/accept", json={"version": h["version"] + 5})
    assert stale.status_code == 409 and stale.json()["current"]["status"] == "pending"

    accepted = binh.post(f"{url}/accept", json={"version": h["version"]})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    again = an.post(f"{url}/accept", json={"version": accepted.json()["version"]})
    assert again.status_code == 409

    with co_crm.db.session() as session:
        assert session.get(AccountTeam, customer).team_id == north
        assert session.scalar(
            select(AuditLog.id).where(
                AuditLog.model == "collaborative_account_team", AuditLog.record_id == str(customer)
            )
        )
    assert [n.label for n in _notified(co_crm, "chi@example.com", "handoff")] == [
        "accepted your hand-off"
    ]
    assert binh.get(f"/api/customers/{customer}").status_code == 200  # now through the account team
    assert _history(co_crm, "customer", customer) == [
        "Handed to Kinh doanh miền Bắc: Khách muốn mở chi nhánh ở Hà Nội",
        "Hand-off accepted by Kinh doanh miền Bắc",
    ]
    assert binh.get(url).json()["decided_by"] == co_crm.people["binh@example.com"]


def test_return_needs_a_reason_and_ends_the_visibility(co_crm, api):
    north = co_crm.people["team:north"]
    customer = _customer(co_crm)
    chi, binh = api(co_crm, "chi@example.com"), api(co_crm, "binh@example.com")
    h = _hand(chi, customer, north).json()
    url = f"{HANDOFFS}/{h['id']}/return"

    missing = binh.post(url, json={"version": h["version"]})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "reason"]
    blank = binh.post(url, json={"version": h["version"], "reason": "   "})
    assert blank.status_code == 422 and blank.json()["detail"][0]["loc"] == ["body", "reason"]
    assert binh.get(f"{HANDOFFS}/{h['id']}").json()["status"] == "pending"

    returned = binh.post(url, json={"version": h["version"], "reason": "Khách ở miền Nam"})
    assert returned.status_code == 200, returned.text
    assert (returned.json()["status"], returned.json()["reason"]) == (
        "returned",
        "Khách ở miền Nam",
    )
    assert [n.body for n in _notified(co_crm, "chi@example.com", "handoff")] == ["Khách ở miền Nam"]
    assert binh.get(f"/api/customers/{customer}").status_code == 404
    assert binh.get(f"{HANDOFFS}/{h['id']}").status_code == 200  # still addressed to binh's team
    assert _history(co_crm, "customer", customer)[-1] == (
        "Hand-off returned by Kinh doanh miền Bắc: Khách ở miền Nam"
    )
    with co_crm.db.session() as session:
        assert session.get(AccountTeam, customer) is None
    assert _hand(chi, customer, north).status_code == 201  # may be handed again


def test_only_the_creator_cancels(co_crm, api):
    customer = _customer(co_crm)
    chi, binh = api(co_crm, "chi@example.com"), api(co_crm, "binh@example.com")
    h = _hand(chi, customer, co_crm.people["team:north"]).json()
    url = f"{HANDOFFS}/{h['id']}/cancel"
    assert binh.post(url, json={"version": h["version"]}).status_code == 403
    cancelled = chi.post(url, json={"version": h["version"]})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert binh.get(f"/api/customers/{customer}").status_code == 404
    assert _history(co_crm, "customer", customer)[-1] == "Hand-off cancelled"


def test_a_cancelled_hand_off_tells_the_members_who_still_see_the_record(co_crm, api):
    customer = _customer(co_crm)
    chi = api(co_crm, "chi@example.com")
    h = _hand(chi, customer, co_crm.people["team:care"]).json()
    assert (
        chi.post(f"{HANDOFFS}/{h['id']}/cancel", json={"version": h["version"]}).status_code == 200
    )
    with co_crm.db.session() as session:
        told = session.execute(
            select(Notification.user_id, Notification.label).where(
                Notification.key == f"handoff:{h['id']}:cancelled"
            )
        ).all()
    # dung (service, sees every customer) is told; nobody else is in the care team
    assert told == [(co_crm.people["dung@example.com"], "cancelled a hand-off to your team")]


def test_bad_hand_offs_are_refused_naming_the_field(co_crm, api):
    people = co_crm.people
    customer = _customer(co_crm)
    chi, binh = api(co_crm, "chi@example.com"), api(co_crm, "binh@example.com")
    with co_crm.db.write() as session:
        departments.set_account_team(session, customer, people["team:south"], None)

    def field(response) -> str:
        assert response.status_code == 422, response.text
        return response.json()["detail"][0]["loc"][-1]

    assert field(_hand(chi, customer, people["team:north"], record_type="nothing")) == "record_type"
    assert field(_hand(chi, customer, people["team:south"])) == "to_team_id"
    assert field(_hand(chi, customer, 9999)) == "to_team_id"
    past = (utcnow() - dt.timedelta(hours=1)).isoformat()
    assert field(_hand(chi, customer, people["team:north"], deadline=past)) == "deadline"
    assert field(_hand(chi, customer, people["team:north"], message="  ")) == "message"
    assert _hand(binh, customer, people["team:care"]).status_code == 404  # not binh's to see
    assert api(co_crm, "zahra@example.com").get(f"{HANDOFFS}/1").status_code == 404
    with co_crm.db.session() as session:
        assert session.scalar(select(Handoff.id)) is None


def test_ticket_handoff_moves_team_and_owner_with_an_audit_row(all_crm, api, browser):
    from plugins.operational import tickets
    from plugins.operational.models import Ticket

    people = all_crm.people
    customer = _customer(all_crm, "Nhà hàng Phố Cổ", owner="an@example.com")
    with all_crm.db.write() as session:
        ticket_id = tickets.create(
            session,
            customer,
            "Máy POS hỏng",
            assignee_id=people["an@example.com"],
            team_id=people["team:north"],
        ).id
    an, chi = api(all_crm, "an@example.com"), api(all_crm, "chi@example.com")
    ticket_url = f"/api/operational/tickets/{ticket_id}"
    assert chi.get(ticket_url).status_code == 404

    h = _hand(an, ticket_id, people["team:south"], record_type="operational.ticket")
    assert h.status_code == 201, h.text
    h = h.json()
    assert h["from_team_id"] == people["team:north"] and h["customer_id"] == customer
    assert chi.get(ticket_url).status_code == 200  # pending hand-off to chi's team
    panel = browser(all_crm, "chi@example.com").get(
        f"/ui/slots/collaborative.handoffs.ticket/{ticket_id}"
    )
    assert panel.status_code == 200 and f"/collaborative/handoffs/{h['id']}/accept" in panel.text
    assert [n.url for n in _notified(all_crm, "chi@example.com", "handoff")] == [
        f"/ui/ticket/{ticket_id}"
    ]

    accepted = chi.post(f"{HANDOFFS}/{h['id']}/accept", json={"version": h["version"]})
    assert accepted.status_code == 200, accepted.text
    with all_crm.db.session() as session:
        ticket = session.get(Ticket, ticket_id)
        assert (ticket.team_id, ticket.assignee_id) == (
            people["team:south"],
            people["chi@example.com"],
        )
        changes = [
            row.after
            for row in session.scalars(
                select(AuditLog).where(
                    AuditLog.model == "operational.ticket",
                    AuditLog.record_id == str(ticket_id),
                    AuditLog.action == "update",
                )
            )
        ]
        actors = session.scalars(
            select(AuditLog.actor).where(
                AuditLog.model == "operational.ticket", AuditLog.action == "update"
            )
        ).all()
    assert {
        "team_id": people["team:south"],
        "assignee_id": people["chi@example.com"],
    }.items() <= changes[-1].items()
    assert actors[-1] == "chi@example.com"
    assert chi.get(ticket_url).status_code == 200
    assert (
        _history(all_crm, "operational.ticket", ticket_id)[-1]
        == "Hand-off accepted by Kinh doanh miền Nam"
    )
    listed = chi.get(
        HANDOFFS, params={"record_type": "operational.ticket", "record_id": ticket_id, "box": "all"}
    )
    assert [r["status"] for r in listed.json()["items"]] == ["accepted"]


def test_overdue_hand_offs_escalate_to_the_lead_once(co_crm, api, cli):
    people = co_crm.people
    customer = _customer(co_crm)
    chi = api(co_crm, "chi@example.com")
    with co_crm.db.write() as session:
        departments.set_profile(
            co_crm, session, people["team:north"], lead_id=people["mai@example.com"]
        )
    start = utcnow()
    deadline = (start + dt.timedelta(hours=2)).isoformat()
    h = _hand(chi, customer, people["team:north"], deadline=deadline).json()

    assert handoffs.escalate_overdue(co_crm, start + dt.timedelta(hours=1)) == []
    later = start + dt.timedelta(hours=3)
    first = handoffs.escalate_overdue(co_crm, later)
    assert [x.id for x in first] == [h["id"]]
    assert handoffs.escalate_overdue(co_crm, later) == []
    assert handoffs.escalate_overdue(co_crm, later + dt.timedelta(days=1)) == []
    assert handoffs._escalate_one(co_crm, h["id"], later) is None  # a concurrent run's claim

    lead = _notified(co_crm, "mai@example.com", "escalation")
    assert [n.label for n in lead] == ["hand-off to your team is overdue"]
    assert [n.label for n in _notified(co_crm, "chi@example.com", "escalation")] == [
        "your hand-off is overdue"
    ]
    assert _notified(co_crm, "binh@example.com", "escalation") == []
    assert (
        _history(co_crm, "customer", customer)[-1]
        == "Hand-off to Kinh doanh miền Bắc overdue: escalated"
    )
    with co_crm.db.session() as session:
        row = session.get(Handoff, h["id"])
        assert row.escalated_at is not None and handoffs.is_overdue(row, later)
        assert not handoffs.is_overdue(row, start)

    # the cron command finds nothing more; the listing shows the hand-off as overdue
    env = {"CRM_LOAD_PLUGINS": "collaborative"}
    again = cli("collaborative", "escalate", "--now", later.isoformat(), **env)
    assert again.exit_code == 0 and "No hand-off to escalate." in again.output
    with co_crm.db.write() as session:
        session.execute(
            update(Handoff).values(deadline=utcnow() - dt.timedelta(minutes=5), escalated_at=None)
        )
    ran = cli("collaborative", "escalate", "--format", "json", **env)
    assert ran.exit_code == 0, ran.output
    assert [(r["id"], r["overdue"]) for r in json.loads(ran.output)] == [(h["id"], True)]
    overdue = cli("collaborative", "handoffs", "--overdue", "--format", "json", **env)
    assert [r["record"] for r in json.loads(overdue.output)] == ["Công ty Sao Mai"]
    assert "1 pending hand-off" in cli("collaborative", "handoffs", **env).output
    bad = cli("collaborative", "escalate", "--now", "yesterday", **env)
    assert bad.exit_code != 0 and "--now" in bad.output
    assert [n.label for n in _notified(co_crm, "mai@example.com", "escalation")] == [
        "hand-off to your team is overdue"
    ]
    assert binh_overdue(co_crm, api) == [h["id"]]


def binh_overdue(crm, api) -> list[int]:
    """Hand-offs binh's API lists as overdue now."""
    rows = api(crm, "binh@example.com").get(HANDOFFS, params={"overdue": "true"}).json()["items"]
    assert all(r["overdue"] for r in rows)
    return [r["id"] for r in rows]


def test_handoffs_page_and_panel_work_with_htmx(co_crm, browser):
    people = co_crm.people
    customer = _customer(co_crm)
    chi = browser(co_crm, "chi@example.com")
    hx = {"HX-Request": "true"}

    panel = chi.get(f"/ui/slots/collaborative.handoffs.customer/{customer}")
    assert panel.status_code == 200 and "Hand to another team" in panel.text
    made = chi.post(
        "/collaborative/handoffs/new",
        {
            "record_type": "customer",
            "record_id": str(customer),
            "to_team_id": str(people["team:north"]),
            "message": "<script>alert(1)</script> nhờ chăm sóc",
            "deadline": "",
        },
        headers=hx,
    )
    assert made.status_code == 200, made.text
    assert (
        "<html" not in made.text and "&lt;script&gt;" in made.text and "<script>" not in made.text
    )
    assert "Hand to another team" not in made.text  # one pending hand-off at a time
    refused = chi.post(
        "/collaborative/handoffs/new",
        {"record_type": "customer", "record_id": str(customer), "to_team_id": "", "message": "x"},
        headers=hx,
    )
    assert refused.status_code == 200 and "error-box" in refused.text
    with co_crm.db.session() as session:
        h = session.scalar(select(Handoff))
        session.execute(update(Handoff).values(deadline=utcnow() - dt.timedelta(hours=1)))
        session.commit()

    binh = browser(co_crm, "binh@example.com")
    listing = binh.get("/collaborative/handoffs")
    assert listing.status_code == 200
    assert f'id="handoff-{h.id}"' in listing.text and "overdue-flag" in listing.text
    assert f"/collaborative/handoffs/{h.id}/accept" in listing.text
    assert f"/collaborative/handoffs/{h.id}/accept" not in chi.get("/collaborative/handoffs").text

    no_reason = binh.post(
        f"/collaborative/handoffs/{h.id}/return",
        {"version": str(h.version), "reason": ""},
        headers=hx,
    )
    assert no_reason.status_code == 200 and "error-box" in no_reason.text
    accepted = binh.post(
        f"/collaborative/handoffs/{h.id}/accept", {"version": str(h.version)}, headers=hx
    )
    assert accepted.status_code == 200
    assert accepted.text.lstrip().startswith("<tr") and "Accepted" in accepted.text
    assert "/accept" not in accepted.text and "overdue-flag" not in accepted.text
    with co_crm.db.session() as session:
        assert session.get(AccountTeam, customer).team_id == people["team:north"]

    dung = browser(co_crm, "dung@example.com")
    assert dung.post(f"/collaborative/handoffs/{h.id}/accept", {"version": "2"}).status_code == 403
    assert binh.get("/collaborative/handoffs?status=accepted&overdue=no").status_code == 200
    generated = binh.get("/ui/handoff")
    assert generated.status_code == 200 and "Kinh doanh miền Bắc" in generated.text
    assert "Hand-offs" in binh.get("/").text
