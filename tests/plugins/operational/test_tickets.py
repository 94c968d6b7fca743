"""Tickets: SLA due times and breaches on a controlled clock, status transitions, responses,
the REST API (permissions, record rules, keyset pages, 409/422) and ``crm tickets check-sla``."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, get_args

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.customers import service as customers
from core.models import AuditLog, User
from core.web.app import create_app
from plugins.operational import models, tickets
from plugins.operational.defaults import DEFAULT_SLA
from plugins.operational.models import Interaction, SlaPolicy, Ticket
from tests.plugins.operational.conftest import PASSWORD

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)
ORIGIN = {"Origin": "http://testserver"}


class Api:
    """A client signed in through ``POST /api/auth/login`` (session cookie, own origin)."""

    def __init__(self, app: Any, email: str, password: str = PASSWORD) -> None:
        self.client = TestClient(app)
        response = self.client.post(
            "/api/auth/login", json={"email": email, "password": password}, headers=ORIGIN
        )
        assert response.status_code == 200, response.text

    def __getattr__(self, method: str):
        call = getattr(self.client, method)
        return lambda url, **kw: call(url, headers={**ORIGIN, **kw.pop("headers", {})}, **kw)


@pytest.fixture
def app(ops_crm):
    """The web app of the operational CRM."""
    return create_app(ops_crm)


@pytest.fixture
def api(app):
    """``api("dung@example.com")``: a signed-in API client (``admin`` for the administrator)."""

    def sign_in(email: str) -> Api:
        if email == "admin@example.com":
            return Api(app, email, "Admin-pass-123")
        return Api(app, email)

    return sign_in


def user_id(crm, email: str) -> int:
    """The id of the user with ``email``."""
    with crm.db.session() as session:
        return session.scalar(select(User.id).where(User.email == email))


def new_customer(crm, name: str = "Nguyễn Văn An", owner: str | None = None, **extra: Any) -> int:
    """Create a customer (owned by ``owner``'s e-mail if given); return its id."""
    data = {"display_name": name, "owner_id": user_id(crm, owner) if owner else None, **extra}
    with crm.db.write() as session:
        return customers.create(session, crm, data).id


def new_ticket(crm, customer_id: int, now: dt.datetime = T0, **values: Any) -> int:
    """Create a ticket through the service at ``now``; return its id."""
    values.setdefault("subject", "Máy không lên nguồn")
    with crm.db.write() as session:
        return tickets.create(session, customer_id, now=now, **values).id


def load(crm, ticket_id: int) -> Ticket:
    """The ticket as stored now."""
    with crm.db.session() as session:
        return session.get(Ticket, ticket_id)


def run(crm, ticket_id: int, action, *args: Any, **kwargs: Any) -> Any:
    """Call ``action(session, ticket, ...)`` or ``action(ticket, ...)`` in one transaction."""
    with crm.db.write() as session:
        ticket = session.get(Ticket, ticket_id)
        if action in (tickets.change_status, tickets.mark_responded):
            return action(ticket, *args, **kwargs)
        return action(session, ticket, *args, **kwargs)


# --- SLA due times and breaches ------------------------------------------------------------


@pytest.mark.parametrize("priority", ["low", "normal", "high", "urgent"])
def test_due_times_follow_the_policy_of_the_priority(ops_crm, priority):
    ticket = load(ops_crm, new_ticket(ops_crm, new_customer(ops_crm), priority=priority))
    first, resolution = DEFAULT_SLA[priority]
    assert ticket.status == "new"
    assert ticket.created_at == T0
    assert ticket.first_response_due == T0 + first * MINUTE
    assert ticket.resolution_due == T0 + resolution * MINUTE


def test_a_priority_change_recomputes_the_due_times_from_creation(ops_crm):
    ticket_id = new_ticket(ops_crm, new_customer(ops_crm), priority="low")
    run(ops_crm, ticket_id, tickets.update, {"priority": "urgent"}, 1)
    ticket = load(ops_crm, ticket_id)
    assert ticket.first_response_due == T0 + 30 * MINUTE
    assert ticket.resolution_due == T0 + 4 * 60 * MINUTE
    assert ticket.version == 2


def test_a_priority_without_policy_has_no_sla(ops_crm):
    with ops_crm.db.write() as session:
        session.delete(session.scalar(select(SlaPolicy).where(SlaPolicy.priority == "low")))
    ticket = load(ops_crm, new_ticket(ops_crm, new_customer(ops_crm), priority="low"))
    assert ticket.first_response_due is None and ticket.resolution_due is None
    assert tickets.breaches(ticket, T0 + dt.timedelta(days=365)) == []


def breached_ids(crm, now: dt.datetime, **kwargs: Any) -> list[int]:
    """What the SQL rule finds at ``now``."""
    with crm.db.session() as session:
        return [t.id for t in tickets.breached(session, now, **kwargs)]


def test_breaches_on_a_controlled_clock(ops_crm):
    customer = new_customer(ops_crm)
    urgent = new_ticket(ops_crm, customer, priority="urgent")  # 30 min / 4 h
    assert tickets.breaches(load(ops_crm, urgent), T0 + 30 * MINUTE) == []
    assert breached_ids(ops_crm, T0 + 30 * MINUTE) == []
    late = T0 + 31 * MINUTE
    assert tickets.breaches(load(ops_crm, urgent), late) == ["first_response"]
    assert breached_ids(ops_crm, late) == [urgent]
    after_resolution_due = T0 + 4 * 60 * MINUTE + MINUTE
    assert tickets.breaches(load(ops_crm, urgent), after_resolution_due) == [
        "first_response",
        "resolution",
    ]


def test_a_late_response_stays_a_breach_and_an_early_one_stops_the_clock(ops_crm):
    customer = new_customer(ops_crm)
    on_time = new_ticket(ops_crm, customer, priority="urgent")
    late = new_ticket(ops_crm, customer, priority="urgent")
    run(ops_crm, on_time, tickets.respond, "On it", user_id=None, now=T0 + 10 * MINUTE)
    run(ops_crm, late, tickets.respond, "Sorry", user_id=None, now=T0 + 45 * MINUTE)
    later = T0 + 3 * 60 * MINUTE
    assert tickets.breaches(load(ops_crm, on_time), later) == []
    assert tickets.breaches(load(ops_crm, late), later) == ["first_response"]
    assert breached_ids(ops_crm, later) == [late]


def test_resolution_stops_both_clocks_and_reopening_restarts_them(ops_crm):
    customer = new_customer(ops_crm)
    silent = new_ticket(ops_crm, customer, priority="urgent")
    answered = new_ticket(ops_crm, customer, priority="urgent")
    run(ops_crm, answered, tickets.respond, "Hi", user_id=None, now=T0 + 10 * MINUTE)
    for ticket_id in (silent, answered):
        run(ops_crm, ticket_id, tickets.resolve, now=T0 + 20 * MINUTE)
    much_later = T0 + dt.timedelta(days=30)
    assert tickets.breaches(load(ops_crm, silent), much_later) == []  # nobody responded
    assert breached_ids(ops_crm, much_later) == []
    for ticket_id in (silent, answered):
        run(ops_crm, ticket_id, tickets.change_status, "open", now=T0 + 60 * MINUTE)
    assert load(ops_crm, answered).resolved_at is None
    assert tickets.breaches(load(ops_crm, answered), much_later) == ["resolution"]
    # Still nobody responded to the customer of the reopened ticket: both clocks run again.
    assert tickets.breaches(load(ops_crm, silent), much_later) == ["first_response", "resolution"]
    assert breached_ids(ops_crm, much_later) == [silent, answered]


def test_a_pending_ticket_keeps_its_clock(ops_crm):
    ticket_id = new_ticket(ops_crm, new_customer(ops_crm), priority="high")  # 2 h / 24 h
    run(ops_crm, ticket_id, tickets.respond, "Which model?", user_id=None, now=T0 + MINUTE)
    run(ops_crm, ticket_id, tickets.change_status, "pending", now=T0 + 2 * MINUTE)
    ticket = load(ops_crm, ticket_id)
    assert ticket.status == "pending"
    assert tickets.breaches(ticket, T0 + 25 * 60 * MINUTE) == ["resolution"]


def test_the_sql_rule_agrees_with_the_python_rule(ops_crm):
    customer = new_customer(ops_crm)
    ids = [new_ticket(ops_crm, customer, priority=p) for p in ("urgent", "high", "normal", "low")]
    run(ops_crm, ids[0], tickets.respond, "Hi", user_id=None, now=T0 + 5 * MINUTE)
    run(ops_crm, ids[1], tickets.respond, "Hi", user_id=None, now=T0 + 3 * 60 * MINUTE)
    run(ops_crm, ids[2], tickets.change_status, "closed", now=T0 + 60 * MINUTE)
    run(ops_crm, ids[3], tickets.resolve, now=T0 + 8 * 24 * 60 * MINUTE)
    for hours in (0, 1, 3, 5, 30, 24 * 10):
        now = T0 + dt.timedelta(hours=hours)
        expected = [i for i in ids if tickets.breaches(load(ops_crm, i), now)]
        assert breached_ids(ops_crm, now) == expected, hours
    open_now = breached_ids(ops_crm, T0 + dt.timedelta(days=10), open_only=True)
    assert open_now == ids[:2]  # ids[2] closed on time, ids[3] resolved late: not open


# --- status transitions and responses ------------------------------------------------------


def test_allowed_transitions_set_their_timestamps(ops_crm):
    ticket_id = new_ticket(ops_crm, new_customer(ops_crm))
    run(ops_crm, ticket_id, tickets.change_status, "open", now=T0 + MINUTE)
    run(ops_crm, ticket_id, tickets.change_status, "pending", now=T0 + 2 * MINUTE)
    run(ops_crm, ticket_id, tickets.resolve, now=T0 + 3 * MINUTE)
    assert load(ops_crm, ticket_id).resolved_at == T0 + 3 * MINUTE
    run(ops_crm, ticket_id, tickets.change_status, "closed", now=T0 + 4 * MINUTE)
    ticket = load(ops_crm, ticket_id)
    assert (ticket.status, ticket.resolved_at, ticket.closed_at) == (
        "closed",
        T0 + 3 * MINUTE,
        T0 + 4 * MINUTE,
    )


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ([], "new"),
        (["open"], "new"),
        (["closed"], "open"),
        (["closed"], "resolved"),
        (["resolve"], "pending"),
        (["open", "pending"], "pending"),
        ([], "archived"),
    ],
)
def test_transitions_not_allowed_are_refused(ops_crm, path, target):
    ticket_id = new_ticket(ops_crm, new_customer(ops_crm))
    for step in path:
        if step == "resolve":
            run(ops_crm, ticket_id, tickets.resolve)
        else:
            run(ops_crm, ticket_id, tickets.change_status, step)
    before = load(ops_crm, ticket_id)
    with pytest.raises(tickets.TicketError) as refused:
        if target == "resolved":
            run(ops_crm, ticket_id, tickets.resolve)
        else:
            run(ops_crm, ticket_id, tickets.change_status, target)
    assert refused.value.field == "status"
    after = load(ops_crm, ticket_id)
    assert (after.status, after.version) == (before.status, before.version)


def test_change_status_does_not_resolve_without_a_survey(ops_crm):
    ticket_id = new_ticket(ops_crm, new_customer(ops_crm))
    with pytest.raises(tickets.TicketError, match="resolve"):
        run(ops_crm, ticket_id, tickets.change_status, "resolved")


def test_the_first_response_is_stamped_once_and_logged_on_the_timeline(ops_crm):
    ticket_id = new_ticket(ops_crm, new_customer(ops_crm))
    dung = user_id(ops_crm, "dung@example.com")
    run(ops_crm, ticket_id, tickets.respond, "Hello", user_id=dung, now=T0 + 5 * MINUTE)
    run(ops_crm, ticket_id, tickets.respond, "Again", user_id=dung, now=T0 + 9 * MINUTE)
    ticket = load(ops_crm, ticket_id)
    assert ticket.first_responded_at == T0 + 5 * MINUTE
    assert ticket.status == "open"  # a new ticket opens with its first response
    with ops_crm.db.session() as session:
        logged = session.scalars(
            select(Interaction).where(Interaction.ticket_id == ticket_id).order_by(Interaction.id)
        ).all()
    assert [(i.direction, i.body, i.user_id, i.customer_id) for i in logged] == [
        ("outbound", "Hello", dung, ticket.customer_id),
        ("outbound", "Again", dung, ticket.customer_id),
    ]
    assert logged[0].subject == "Re: Máy không lên nguồn"


def test_a_closed_ticket_takes_no_response(ops_crm):
    ticket_id = new_ticket(ops_crm, new_customer(ops_crm))
    run(ops_crm, ticket_id, tickets.change_status, "closed")
    with pytest.raises(tickets.TicketError):
        run(ops_crm, ticket_id, tickets.respond, "Hello", user_id=None)


def test_the_service_validates_fields(ops_crm):
    customer = new_customer(ops_crm)
    cases = [
        ({"customer_id": 999_999}, "customer_id"),
        ({"subject": "   "}, "subject"),
        ({"priority": "critical"}, "priority"),
        ({"assignee_id": 999_999}, "assignee_id"),
        ({"team_id": 999_999}, "team_id"),
    ]
    for values, field in cases:
        arguments = {"customer_id": customer, "subject": "Broken", **values}
        with ops_crm.db.write() as session, pytest.raises(tickets.TicketError) as refused:
            tickets.create(session, **arguments)
        assert refused.value.field == field


def test_api_literals_match_the_model():
    from plugins.operational import tickets_api

    assert get_args(tickets_api.Priority) == models.TICKET_PRIORITIES
    assert get_args(tickets_api.Status) == models.TICKET_STATUSES
    assert get_args(tickets_api.Channel) == models.CHANNELS
    assert get_args(tickets_api.Kind) == models.INTERACTION_KINDS
    assert set(tickets.TRANSITIONS) == set(models.TICKET_STATUSES)


# --- REST API ------------------------------------------------------------------------------


def test_create_read_and_audit_through_the_api(ops_crm, api):
    customer = new_customer(ops_crm, owner="an@example.com")
    dung = api("dung@example.com")
    an_id = user_id(ops_crm, "an@example.com")
    created = dung.post(
        "/api/operational/tickets",
        json={
            "customer_id": customer,
            "subject": "  Giao hàng trễ ",
            "priority": "high",
            "assignee_id": an_id,
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["subject"] == "Giao hàng trễ"
    assert (body["status"], body["priority"], body["version"]) == ("new", "high", 1)
    created_at = dt.datetime.fromisoformat(body["created_at"])
    assert dt.datetime.fromisoformat(body["first_response_due"]) == created_at + 120 * MINUTE
    assert dt.datetime.fromisoformat(body["resolution_due"]) == created_at + 24 * 60 * MINUTE
    assert (body["breached"], body["breaches"], body["satisfaction"]) == (False, [], None)
    assert dung.get(f"/api/operational/tickets/{body['id']}").json() == body
    with ops_crm.db.session() as session:
        row = session.scalar(
            select(AuditLog).where(
                AuditLog.model == "operational.ticket", AuditLog.record_id == str(body["id"])
            )
        )
    assert (row.action, row.actor) == ("create", "dung@example.com")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"subject": ""}, "subject"),
        ({"priority": "critical"}, "priority"),
        ({"status": "open"}, "status"),  # not settable at creation
        ({"version": 3}, "version"),
        ({"id": 5}, "id"),
        ({"first_response_due": "2030-01-01T00:00:00Z"}, "first_response_due"),
        ({"customer_id": 999_999}, "customer_id"),
        ({"assignee_id": 999_999}, "assignee_id"),
    ],
)
def test_create_refuses_bad_fields_one_entry_per_field(ops_crm, api, payload, field):
    customer = new_customer(ops_crm)
    response = api("dung@example.com").post(
        "/api/operational/tickets", json={"customer_id": customer, "subject": "X", **payload}
    )
    assert response.status_code == 422, response.text
    assert [e["loc"][-1] for e in response.json()["detail"]] == [field]
    assert load_all(ops_crm) == []


def load_all(crm) -> list[int]:
    """Every ticket id."""
    with crm.db.session() as session:
        return list(session.scalars(select(Ticket.id).order_by(Ticket.id)))


def test_patch_with_a_stale_version_gets_409_with_the_current_ticket(ops_crm, api):
    ticket_id = new_ticket(ops_crm, new_customer(ops_crm))
    dung = api("dung@example.com")
    url = f"/api/operational/tickets/{ticket_id}"
    first = dung.patch(url, json={"version": 1, "priority": "urgent", "status": "open"})
    assert first.status_code == 200, first.text
    assert (first.json()["version"], first.json()["status"]) == (2, "open")
    assert dt.datetime.fromisoformat(first.json()["first_response_due"]) == T0 + 30 * MINUTE
    stale = dung.patch(url, json={"version": 1, "subject": "Mine"})
    assert stale.status_code == 409
    assert stale.json()["current"]["version"] == 2
    assert stale.json()["current"]["priority"] == "urgent"
    assert load(ops_crm, ticket_id).subject == "Máy không lên nguồn"


def test_patch_refuses_bad_changes_per_field_and_writes_nothing(ops_crm, api):
    ticket_id = new_ticket(ops_crm, new_customer(ops_crm))
    run(ops_crm, ticket_id, tickets.change_status, "closed")
    dung = api("dung@example.com")
    url = f"/api/operational/tickets/{ticket_id}"
    cases = [
        ({"version": 2, "subject": "New", "status": "open"}, "status"),  # closed is final
        ({"version": 2, "status": "resolved"}, "status"),  # through /resolve only
        ({"version": 2, "priority": None}, "priority"),
        ({"version": 2, "subject": None}, "subject"),
        ({"version": 2, "customer_id": 1}, "customer_id"),
        ({"subject": "No version"}, "version"),
    ]
    for payload, field in cases:
        response = dung.patch(url, json=payload)
        assert response.status_code == 422, (payload, response.text)
        assert [e["loc"] for e in response.json()["detail"]] == [["body", field]], payload
    ticket = load(ops_crm, ticket_id)
    assert (ticket.subject, ticket.status, ticket.version) == ("Máy không lên nguồn", "closed", 2)


def test_respond_and_resolve_through_the_api(ops_crm, api):
    ticket_id = new_ticket(ops_crm, new_customer(ops_crm), now=dt.datetime.now(dt.UTC))
    dung = api("dung@example.com")
    url = f"/api/operational/tickets/{ticket_id}"
    responded = dung.post(f"{url}/respond", json={"body": "Chúng tôi đang kiểm tra."})
    assert responded.status_code == 201, responded.text
    body = responded.json()
    assert body["ticket"]["first_responded_at"] is not None
    assert body["ticket"]["status"] == "open"
    assert body["interaction"]["ticket_id"] == ticket_id
    assert body["interaction"]["direction"] == "outbound"
    assert body["interaction"]["user_id"] == user_id(ops_crm, "dung@example.com")
    assert dung.post(f"{url}/respond", json={"body": "  "}).status_code == 422
    assert dung.post(f"{url}/respond", json={"body": "x", "channel": "pigeon"}).status_code == 422
    assert dung.post(f"{url}/resolve", json={"version": 1}).status_code == 409  # stale
    assert dung.post(f"{url}/resolve", json={"survey_days": 0}).status_code == 422
    resolved = dung.post(f"{url}/resolve", json={"version": 2, "survey_days": 3})
    assert resolved.status_code == 200, resolved.text
    expires = dt.datetime.fromisoformat(resolved.json()["survey_expires_at"])
    resolved_at = dt.datetime.fromisoformat(resolved.json()["ticket"]["resolved_at"])
    assert expires == resolved_at + dt.timedelta(days=3)
    assert resolved.headers["cache-control"] == "no-store"
    assert resolved.json()["ticket"]["status"] == "resolved"
    assert resolved.json()["survey_url"].startswith(
        f"{ops_crm.settings.public_url}/operational/survey/"
    )
    again = dung.post(f"{url}/resolve")
    assert again.status_code == 409 and "resolved" in again.json()["detail"]
    assert dung.get(url).json()["status"] == "resolved"


def test_list_filters_and_keyset_pages(ops_crm, api):
    customer = new_customer(ops_crm)
    an_id = user_id(ops_crm, "an@example.com")
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    urgent_late = new_ticket(ops_crm, customer, now=long_ago, priority="urgent")
    fresh = [new_ticket(ops_crm, customer, now=dt.datetime.now(dt.UTC)) for _ in range(4)]
    assigned = new_ticket(
        ops_crm, customer, now=dt.datetime.now(dt.UTC), priority="high", assignee_id=an_id
    )
    run(ops_crm, fresh[0], tickets.change_status, "pending")
    dung = api("dung@example.com")

    def ids(query: str) -> list[int]:
        response = dung.get(f"/api/operational/tickets?{query}")
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()["items"]]

    assert ids("") == [assigned, *reversed(fresh), urgent_late]
    assert ids("status=pending") == [fresh[0]]
    assert ids("priority=urgent") == [urgent_late]
    assert ids(f"assignee_id={an_id}") == [assigned]
    assert ids("breached=true") == [urgent_late]
    assert ids("breached=false") == [assigned, *reversed(fresh)]
    assert ids(f"customer_id={customer}&priority=high") == [assigned]
    seen, cursor = [], None
    while True:
        page = dung.get(
            "/api/operational/tickets?limit=2" + (f"&cursor={cursor}" if cursor else "")
        ).json()
        assert page["total"] == 6 and page["total_capped"] is False
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids("")
    for bad in ("cursor=nope", "status=archived", "breached=maybe", "limit=0"):
        response = dung.get(f"/api/operational/tickets?{bad}")
        assert response.status_code == 422, bad
        assert response.json()["detail"][0]["loc"][0] == "query"


def test_permissions(ops_crm, app, api):
    customer = new_customer(ops_crm)
    ticket_id = new_ticket(ops_crm, customer)
    anonymous = TestClient(app)
    assert anonymous.get("/api/operational/tickets").status_code == 401
    mai = api("mai@example.com")  # marketing: may read tickets, not change them
    assert mai.get(f"/api/operational/tickets/{ticket_id}").status_code == 200
    new = {"customer_id": customer, "subject": "X"}
    assert mai.post("/api/operational/tickets", json=new).status_code == 403
    url = f"/api/operational/tickets/{ticket_id}"
    assert mai.patch(url, json={"version": 1, "subject": "Y"}).status_code == 403
    assert mai.post(f"{url}/respond", json={"body": "Hi"}).status_code == 403
    assert mai.post(f"{url}/resolve").status_code == 403
    assert load(ops_crm, ticket_id).version == 1


def test_record_rules_hide_other_teams_tickets(ops_crm, api):
    an_id = user_id(ops_crm, "an@example.com")
    north_customer = new_customer(ops_crm, "Công ty Hà Nội", owner="an@example.com")
    south_customer = new_customer(ops_crm, "Công ty Sài Gòn", owner="chi@example.com")
    north = new_ticket(ops_crm, north_customer, assignee_id=an_id)
    south = new_ticket(ops_crm, south_customer, assignee_id=user_id(ops_crm, "chi@example.com"))
    an, chi = api("an@example.com"), api("chi@example.com")
    assert an.get(f"/api/operational/tickets/{north}").status_code == 200
    assert chi.get(f"/api/operational/tickets/{north}").status_code == 404
    assert chi.get(f"/api/operational/tickets/{north + 1000}").status_code == 404
    assert [t["id"] for t in chi.get("/api/operational/tickets").json()["items"]] == [south]
    assert [t["id"] for t in an.get("/api/operational/tickets").json()["items"]] == [north]
    # Even with the permission to change tickets, the rule still hides them.
    with ops_crm.db.write() as session:
        from core import users

        users.set_roles(session, users.get_user(session, "chi@example.com"), ["sales", "service"])
        users.set_role_scope(session, "service", "team")
    chi = api("chi@example.com")
    url = f"/api/operational/tickets/{north}"
    assert chi.patch(url, json={"version": 1, "subject": "Mine"}).status_code == 404
    assert chi.post(f"{url}/respond", json={"body": "Hi"}).status_code == 404
    assert chi.post(f"{url}/resolve").status_code == 404
    created = chi.post(
        "/api/operational/tickets", json={"customer_id": north_customer, "subject": "Peek"}
    )
    assert created.status_code == 422
    assert created.json()["detail"][0]["loc"] == ["body", "customer_id"]
    assert load(ops_crm, north).version == 1


def test_sla_policies_read_by_staff_and_set_by_managers(ops_crm, api):
    dung, admin = api("dung@example.com"), api("admin@example.com")
    listed = dung.get("/api/operational/sla-policies").json()
    assert [p["priority"] for p in listed] == ["urgent", "high", "normal", "low"]
    assert listed[0] == {
        "priority": "urgent",
        "first_response_minutes": 30,
        "resolution_minutes": 240,
    }
    change = {"first_response_minutes": 15, "resolution_minutes": 120}
    assert dung.put("/api/operational/sla-policies/urgent", json=change).status_code == 403
    assert admin.put("/api/operational/sla-policies/urgent", json=change).status_code == 200
    for payload, field in (
        ({"first_response_minutes": 60, "resolution_minutes": 30}, "resolution_minutes"),
        ({"first_response_minutes": 0, "resolution_minutes": 30}, "first_response_minutes"),
        ({**change, "priority": "low"}, "priority"),
    ):
        response = admin.put("/api/operational/sla-policies/urgent", json=payload)
        assert response.status_code == 422
        assert [e["loc"][-1] for e in response.json()["detail"]] == [field]
    assert admin.put("/api/operational/sla-policies/critical", json=change).status_code == 422
    created = dung.post(
        "/api/operational/tickets",
        json={"customer_id": new_customer(ops_crm), "subject": "X", "priority": "urgent"},
    ).json()
    start = dt.datetime.fromisoformat(created["created_at"])
    assert dt.datetime.fromisoformat(created["first_response_due"]) == start + 15 * MINUTE
    with ops_crm.db.session() as session:
        row = session.scalar(select(AuditLog).where(AuditLog.model == "operational.sla_policy"))
    assert (row.action, row.actor, row.after["first_response_minutes"]) == (
        "update",
        "admin@example.com",
        15,
    )


# --- crm tickets check-sla -----------------------------------------------------------------


def test_check_sla_lists_breaches_and_exits_0(ops_crm, cli):
    customer = new_customer(ops_crm)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    late = new_ticket(ops_crm, customer, now=long_ago, priority="urgent", subject="Late one")
    new_ticket(ops_crm, customer, now=dt.datetime.now(dt.UTC), subject="Fresh one")
    done = new_ticket(ops_crm, customer, now=long_ago, priority="urgent")
    run(ops_crm, done, tickets.resolve, now=long_ago + dt.timedelta(days=1))
    env = {"CRM_LOAD_PLUGINS": "operational"}
    result = cli("tickets", "check-sla", "--format", "json", **env)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["id"], r["breaches"]) for r in rows] == [
        (late, ["first_response", "resolution"]),
        (done, ["first_response", "resolution"]),
    ]
    assert rows[0]["subject"] == "Late one"
    assert dt.datetime.fromisoformat(rows[0]["first_response_due"]) == long_ago + 30 * MINUTE
    open_only = cli("tickets", "check-sla", "--format", "json", "--open-only", **env)
    assert [r["id"] for r in json.loads(open_only.output)] == [late]
    table = cli("tickets", "check-sla", **env)
    assert table.exit_code == 0 and "Late one" in table.output


def test_check_sla_without_breaches(ops_crm, cli):
    new_ticket(ops_crm, new_customer(ops_crm), now=dt.datetime.now(dt.UTC))
    result = cli("tickets", "check-sla", CRM_LOAD_PLUGINS="operational")
    assert result.exit_code == 0 and "No SLA breaches" in result.output
