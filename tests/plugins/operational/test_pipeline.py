"""The sales pipeline, activities and the timeline, through the generated screens."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.models import AuditLog
from core.web.app import create_app
from plugins.operational.models import Activity, Interaction, LostReason, Opportunity
from tests.plugins.operational.conftest import PASSWORD
from tests.web.conftest import Browser


@pytest.fixture
def browser(ops_crm):
    app = create_app(ops_crm)

    def make(email: str, password: str = PASSWORD) -> Browser:
        client = Browser(TestClient(app, base_url="http://testserver"))
        assert client.login(email, password).status_code == 303
        return client

    return make


def _created(response, resource: str) -> int:
    assert response.status_code == 303, response.text[-2000:]
    return int(re.search(rf"/ui/{resource}/(\d+)", response.headers["location"]).group(1))


def _customer(user: Browser, name: str) -> int:
    return _created(
        user.post("/ui/customer/new", {"kind": "person", "display_name": name}), "customer"
    )


def test_opportunity_moves_through_the_stages_and_every_move_is_audited(browser, ops_crm):
    an = browser("an@example.com")
    customer = _customer(an, "Công ty Hoa Sen")
    deal = _created(
        an.post(
            "/ui/opportunity/new",
            {
                "title": "Hợp đồng in ấn",
                "customer_id": str(customer),
                "stage": "new",
                "expected_revenue_minor": "50,000,000",
            },
        ),
        "opportunity",
    )
    with ops_crm.db.session() as session:
        opportunity = session.get(Opportunity, deal)
        assert (opportunity.probability, opportunity.owner_id is not None) == (10, True)
        assert opportunity.team_id is not None  # the owner's team
    board = an.get("/ui/opportunity/kanban").text
    assert f'id="card-{deal}"' in board and "₫50,000,000" in board
    assert (
        an.post(f"/ui/opportunity/{deal}/move", {"group": "proposal", "version": "1"}).status_code
        == 303
    )
    lost = an.post(f"/ui/opportunity/{deal}/move", {"group": "lost", "version": "2"})
    assert lost.status_code == 422 and "say why" in lost.text
    with ops_crm.db.session() as session:
        reason = session.scalar(select(LostReason.id).where(LostReason.name == "price"))
        opportunity = session.get(Opportunity, deal)
        assert (opportunity.stage, opportunity.probability) == ("proposal", 50)
    saved = an.post(
        f"/ui/opportunity/{deal}/edit",
        {
            "title": "Hợp đồng in ấn",
            "customer_id": str(customer),
            "stage": "lost",
            "lost_reason_id": str(reason),
            "version": "2",
            "expected_revenue_minor": "50,000,000",
        },
    )
    assert saved.status_code == 303, saved.text[-1500:]
    with ops_crm.db.session() as session:
        opportunity = session.get(Opportunity, deal)
        assert (opportunity.stage, opportunity.probability, opportunity.closed_at is not None) == (
            "lost",
            0,
            True,
        )
        moves = session.scalars(
            select(AuditLog).where(
                AuditLog.model == "operational.opportunity", AuditLog.action == "update"
            )
        ).all()
        assert [m.after.get("stage") for m in moves] == ["proposal", "lost"]
        assert all(m.actor == "an@example.com" for m in moves)
    chi = browser("chi@example.com")  # another team
    assert f'id="card-{deal}"' not in chi.get("/ui/opportunity/kanban").text
    assert chi.get(f"/ui/opportunity/{deal}").status_code == 404


def test_completing_an_activity_logs_it_on_the_timeline(browser, ops_crm):
    an = browser("an@example.com")
    customer = _customer(an, "Lý Thu Hà")
    activity = _created(
        an.post(
            "/ui/activity/new",
            {
                "kind": "call",
                "subject": "Gọi lại về báo giá",
                "due_at": "2020-01-02T09:00",
                "customer_id": str(customer),
            },
        ),
        "activity",
    )
    overdue = an.get("/ui/activity", params={"state": "overdue"}).text
    assert "Gọi lại về báo giá" in overdue
    assert 'data-value="1"' in an.get("/ui/widgets/operational.overdue").text
    done = an.post("/ui/activity/actions/complete", {"ids": str(activity)})
    assert done.status_code == 200
    with ops_crm.db.session() as session:
        row = session.get(Activity, activity)
        logged = session.get(Interaction, row.interaction_id)
        assert (logged.kind, logged.channel, logged.source) == ("call", "phone", "activity")
    timeline = an.get(f"/ui/slots/operational.timeline/{customer}").text
    assert "Gọi lại về báo giá" in timeline
    assert (
        "Gọi lại về báo giá"
        not in an.get(f"/ui/slots/operational.timeline/{customer}?channel=email").text
    )
    summary = an.get(f"/ui/slots/operational.summary/{customer}").text
    assert "Last contact" in summary


def test_interactions_logged_from_the_ui_show_on_the_timeline(browser, ops_crm):
    an = browser("an@example.com")
    customer = _customer(an, "Đặng Văn Lâm")
    bad = an.post(
        "/ui/interaction/new",
        {"customer_id": str(customer), "kind": "fax", "channel": "zalo", "subject": "x"},
    )
    assert bad.status_code == 422
    _created(
        an.post(
            "/ui/interaction/new",
            {
                "customer_id": str(customer),
                "kind": "chat",
                "channel": "zalo",
                "direction": "inbound",
                "subject": "Hỏi giá áo dài",
                "body": "size M",
            },
        ),
        "interaction",
    )
    assert (
        "Hỏi giá áo dài" in an.get(f"/ui/slots/operational.timeline/{customer}?channel=zalo").text
    )
    detail = an.get(f"/ui/customer/{customer}").text
    for slot in ("operational.summary", "operational.timeline", "operational.pipeline"):
        assert f'hx-get="/ui/slots/{slot}/{customer}"' in detail


def test_tickets_through_the_screens_keep_the_service_rules(browser, ops_crm):
    from plugins.operational.models import Survey, Ticket

    dung = browser("dung@example.com")  # service
    admin = browser("admin@example.com", "Admin-pass-123")
    customer = _customer(admin, "Bà Tư")
    ticket = _created(
        dung.post(
            "/ui/ticket/new",
            {"customer_id": str(customer), "subject": "Hàng bị vỡ", "priority": "urgent"},
        ),
        "ticket",
    )
    with ops_crm.db.session() as session:
        row = session.get(Ticket, ticket)
        assert row.first_response_due is not None and row.status == "new"
    moved = dung.post(f"/ui/ticket/{ticket}/move", {"group": "resolved", "version": "1"})
    assert moved.status_code == 422 and "resolve" in moved.text.lower()
    assert (
        dung.post(f"/ui/ticket/{ticket}/move", {"group": "open", "version": "1"}).status_code == 303
    )
    resolved = dung.post("/ui/ticket/actions/resolve", {"ids": str(ticket)})
    assert resolved.status_code == 200 and "/operational/survey/" in resolved.text
    with ops_crm.db.session() as session:
        assert session.get(Ticket, ticket).status == "resolved"
        assert session.scalar(select(Survey.ticket_id)) == ticket
    summary = admin.get(f"/ui/slots/operational.summary/{customer}").text
    assert "Satisfaction" in summary


def test_mailings_from_the_screens(browser, ops_crm):
    from plugins.operational.models import MailingRecipient

    mai = browser("mai@example.com")  # marketing
    admin = browser("admin@example.com", "Admin-pass-123")
    for name in ("Cô Ba", "Chú Tư"):
        created = admin.post(
            "/ui/customer/new",
            {
                "kind": "person",
                "display_name": name,
                "email": f"{len(name)}{name[-1]}@example.vn".replace(" ", ""),
                "tags": "vip",
            },
        )
        assert created.status_code == 303
    broken = mai.post(
        "/ui/mail_template/new", {"name": "Tết", "subject": "Chúc {{ given_name", "body": "x"}
    )
    assert broken.status_code == 422 and "line 1" in broken.text
    template = _created(
        mai.post(
            "/ui/mail_template/new",
            {
                "name": "Tết",
                "subject": "Chúc mừng năm mới {{ display_name }}",
                "body": "Xin chào {{ display_name }}\n{{ unsubscribe_url }}",
            },
        ),
        "mail_template",
    )
    mailing = _created(
        mai.post(
            "/ui/mailing/new",
            {"name": "Tết 2027", "template_id": str(template), "audience_tag": "vip"},
        ),
        "mailing",
    )
    scheduled = mai.post("/ui/mailing/actions/schedule", {"ids": str(mailing)})
    assert scheduled.status_code == 200 and "2 recipients queued" in scheduled.text
    detail = mai.get(f"/ui/mailing/{mailing}").text
    assert 'data-field="queued">2<' in detail
    with ops_crm.db.session() as session:
        assert len(session.scalars(select(MailingRecipient)).all()) == 2


def test_my_agenda_lists_my_open_activities_by_due_time(browser, ops_crm):
    an = browser("an@example.com")
    for subject, due in (("Sau", "2031-01-01T09:00"), ("Trước", "2030-01-01T09:00")):
        _created(
            an.post("/ui/activity/new", {"kind": "todo", "subject": subject, "due_at": due}),
            "activity",
        )
    chi = browser("chi@example.com")
    _created(
        chi.post(
            "/ui/activity/new", {"kind": "todo", "subject": "Của Chi", "due_at": "2029-01-01T09:00"}
        ),
        "activity",
    )
    redirect = an.get("/operational/agenda", follow_redirects=False)
    assert redirect.status_code == 303
    page = an.get(redirect.headers["location"]).text
    assert page.index("Trước") < page.index("Sau") and "Của Chi" not in page
