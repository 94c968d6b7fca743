"""Mailings: templates, audiences, scheduling, sending through a real SMTP server (aiosmtpd),
at-most-once delivery under failures and concurrency, unsubscribing, replies, and the API."""

from __future__ import annotations

import datetime as dt
import email
import re
import threading
from email import policy
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from core import auth, hookimpl, users
from core.customers import service as customers
from core.db import utcnow
from core.mail import Mailer, SmtpConfig, parse_smtp_url
from core.models import Team
from plugins.operational import mailings
from plugins.operational.models import (
    Interaction,
    Mailing,
    MailingRecipient,
    Unsubscribe,
)

PUBLIC_URL = "https://crm.example.vn"
MAIL_FROM = "Cửa hàng ABC <shop@example.vn>"
MESSAGE_ID = re.compile(r"^<mailing-(\d+)-recipient-(\d+)\.[0-9a-f]{16}@crm\.example\.vn>$")
ORIGIN = {"Origin": "http://testserver"}


# --- an SMTP server -----------------------------------------------------------------------------


@pytest.fixture
def crm(ops_crm, make_crm, smtp):
    """The operational CRM, sending through the test SMTP server."""
    instance = make_crm(
        load_plugins="operational", smtp_url=smtp.url, public_url=PUBLIC_URL, mail_from=MAIL_FROM
    )
    instance.refresh()
    return instance


# --- helpers ------------------------------------------------------------------------------------


def add_customer(crm, name, mail=None, tags=(), country="VN", owner_email=None, **fields):
    """A customer with an optional e-mail identity; returns its id."""
    with crm.db.write() as session:
        owner = None
        if owner_email:
            owner = session.scalar(select(users.User.id).where(users.User.email == owner_email))
        identities = [("email", mail)] if mail else []
        customer = customers.create(
            session,
            crm,
            {"display_name": name, "country": country, "owner_id": owner, **fields},
            identities,
            list(tags),
        )
        return customer.id


def add_template(crm, subject, body, name=None):
    with crm.db.write() as session:
        return mailings.create_template(session, name or f"t-{subject[:40]}", subject, body).id


def scheduled(crm, audience, template_id, at=None):
    """A mailing of ``audience`` scheduled (now by default): (id, counts)."""
    with crm.db.write() as session:
        mailing = mailings.create_mailing(
            session, {"name": "Khuyến mãi", "template_id": template_id, "audience": audience}, None
        )
        counts = mailings.schedule(session, crm, mailing, mailing.version, at)
        return mailing.id, counts


def recipients(crm, mailing_id):
    with crm.db.session() as session:
        return {
            r.email: r
            for r in session.scalars(
                select(MailingRecipient).where(MailingRecipient.mailing_id == mailing_id)
            )
        }


def token_for(crm, user_email, roles=None):
    with crm.db.write() as session:
        user = session.scalar(select(users.User).where(users.User.email == user_email))
        if user is None:
            user = users.create_user(session, user_email, user_email, "Password-123!", roles)
        return {"Authorization": f"Bearer {auth.create_token(session, user, 'test').secret}"}


@pytest.fixture
def client(crm):
    from core.web.app import create_app

    return TestClient(create_app(crm), base_url="http://testserver")


@pytest.fixture
def vip(crm):
    """Two VIP customers with e-mail, one without, one who unsubscribed earlier; a template."""
    an = add_customer(
        crm, "Nguyễn Văn An", "an.nguyen@example.vn", ["vip"], given_name="An", family_name="Nguyễn"
    )
    binh = add_customer(crm, "Trần Thị Bình", "binh@example.vn", ["vip"], given_name="Bình")
    add_customer(crm, "Lê Văn Cường", None, ["vip"])
    gone = add_customer(crm, "Phạm Dũng", "dung@example.vn", ["vip"])
    add_customer(crm, "Someone Else", "else@example.com", ["other"])
    with crm.db.write() as session:
        session.add(Unsubscribe(email="dung@example.vn", customer_id=gone))
    template = add_template(
        crm,
        "Ưu đãi tháng 5 cho {{ display_name }}",
        "Xin chào {{ given_name or display_name }},\n\nGiảm 20% cho khách hàng thân thiết"
        " ({{ tags|join(', ') }}).\n\nHủy đăng ký: {{ unsubscribe_url }}\n",
    )
    return {"an": an, "binh": binh, "template": template}


# --- templates ----------------------------------------------------------------------------------


def test_template_errors_name_the_field_and_line():
    with pytest.raises(mailings.Invalid) as syntax:
        mailings.check_template("Hi {{ given_name }}", "Line one\nLine {{ two }\n")
    assert syntax.value.errors == {"body": "line 2: unexpected '}'"}
    with pytest.raises(mailings.Invalid) as unknown:
        mailings.check_template("Hi {{ nickname }}", "{{ phone }}")
    assert set(unknown.value.errors) == {"subject", "body"}
    assert "unknown field nickname" in unknown.value.errors["subject"]
    with pytest.raises(mailings.Invalid) as runtime:
        mailings.check_template("Hi", "a\nb\n{{ company.name.upper() }}")
    assert runtime.value.errors["body"].startswith("line 3: ")
    with pytest.raises(mailings.Invalid) as escape:
        mailings.check_template("{{ ''.__class__.__mro__ }}", "x")
    assert "unsafe" in escape.value.errors["subject"]
    mailings.check_template("{{ display_name }}", "{% for t in tags %}{{ t }}{% endfor %}")


# --- sending ------------------------------------------------------------------------------------


def test_smtp_urls():
    assert parse_smtp_url("smtp://mail.local") == SmtpConfig("mail.local", 25, "plain")
    assert parse_smtp_url("smtp+starttls://u%40x.vn:p%3Aw@smtp.x.vn:2525") == SmtpConfig(
        "smtp.x.vn", 2525, "starttls", "u@x.vn", "p:w"
    )
    assert parse_smtp_url("smtps://u:p@smtp.x.vn").port == 465
    with pytest.raises(ValueError, match="not an SMTP URL"):
        parse_smtp_url("http://x")


def test_a_mailing_goes_out_through_smtp_with_headers_and_timeline(crm, smtp, vip):
    mailing_id, counts = scheduled(crm, {"tag": "vip"}, vip["template"])
    assert counts == {"queued": 2, "no_email": 1, "unsubscribed": 1, "not_found": 0}

    report = mailings.send_due(crm)

    assert (report.sent, report.failed, report.retrying) == (2, 0, 0)
    assert report.mailings_finished == [mailing_id]
    assert sorted(smtp.handler.recipients()) == ["an.nguyen@example.vn", "binh@example.vn"]
    by_rcpt = {e.rcpt_tos[0]: e for e in smtp.handler.envelopes}
    raw = by_rcpt["an.nguyen@example.vn"].content
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n")[0]  # RFC 2047: headers stay ASCII on the wire
    message = email.message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == "Ưu đãi tháng 5 cho Nguyễn Văn An"
    assert message["From"] == MAIL_FROM
    assert message["To"].addresses[0].addr_spec == "an.nguyen@example.vn"
    assert by_rcpt["an.nguyen@example.vn"].mail_from == "shop@example.vn"
    body = message.get_content().replace("\r\n", "\n")
    assert body.startswith("Xin chào An,\n\nGiảm 20% cho khách hàng thân thiết (vip).")
    sent = recipients(crm, mailing_id)
    an = sent["an.nguyen@example.vn"]
    assert message["Message-ID"] == an.message_id
    assert MESSAGE_ID.match(an.message_id).groups() == (str(mailing_id), str(an.id))
    unsubscribe = message["List-Unsubscribe"]
    assert unsubscribe.startswith(f"<{PUBLIC_URL}/operational/unsubscribe/")
    assert f"Hủy đăng ký: {unsubscribe[1:-1]}" in body
    assert {r.status for r in sent.values()} == {"sent"}
    assert all(r.attempts == 1 and r.sent_at and r.last_error is None for r in sent.values())
    with crm.db.session() as session:
        assert session.get(Mailing, mailing_id).status == "sent"
        logged = session.scalars(select(Interaction).where(Interaction.customer_id == vip["an"]))
        (interaction,) = list(logged)
    assert (interaction.kind, interaction.channel, interaction.direction, interaction.source) == (
        "email",
        "email",
        "outbound",
        "mailing",
    )
    assert interaction.subject == "Ưu đãi tháng 5 cho Nguyễn Văn An"

    again = mailings.send_due(crm)
    assert again.sent == 0 and len(smtp.handler.envelopes) == 2


def test_a_mailing_waits_for_its_time(crm, smtp, vip):
    later = utcnow() + dt.timedelta(hours=2)
    scheduled(crm, {"tag": "vip"}, vip["template"], at=later)
    assert mailings.send_due(crm).sent == 0
    assert smtp.handler.envelopes == []
    assert mailings.send_due(crm, now=later + dt.timedelta(seconds=1)).sent == 2


def test_limit_sends_part_now_and_the_rest_next_run(crm, smtp, vip):
    mailing_id, _ = scheduled(crm, {"tag": "vip"}, vip["template"])
    assert mailings.send_due(crm, limit=1).sent == 1
    with crm.db.session() as session:
        assert session.get(Mailing, mailing_id).status == "sending"
    assert mailings.send_due(crm, limit=5).sent == 1
    assert sorted(smtp.handler.recipients()) == ["an.nguyen@example.vn", "binh@example.vn"]


@pytest.mark.parametrize("failure", ["server stopped", "451 reply"])
def test_a_failing_server_leaves_recipients_retryable_and_each_is_sent_once(
    crm, smtp, vip, failure
):
    mailing_id, _ = scheduled(crm, {"tag": "vip"}, vip["template"])
    if failure == "server stopped":
        smtp.stop()
    else:
        smtp.handler.reply = "451 4.3.0 Try again later"

    report = mailings.send_due(crm)

    assert report.sent == 0 and smtp.handler.envelopes == []
    waiting = recipients(crm, mailing_id)
    assert {r.status for r in waiting.values()} == {"queued"}
    assert all(r.claimed_at is None and r.sent_at is None for r in waiting.values())
    if failure == "server stopped":
        assert report.stopped and "127.0.0.1" in report.stopped
        assert [r.attempts for r in waiting.values()] == [0, 0]  # the server, not the mail
        smtp.start()
    else:
        assert report.retrying == 2
        assert all(r.attempts == 1 and "451" in r.last_error for r in waiting.values())
        smtp.handler.reply = None

    assert mailings.send_due(crm).sent == 2
    assert mailings.send_due(crm).sent == 0
    assert sorted(smtp.handler.recipients()) == ["an.nguyen@example.vn", "binh@example.vn"]
    assert {r.status for r in recipients(crm, mailing_id).values()} == {"sent"}


def test_temporary_refusals_give_up_after_max_attempts(crm, smtp, vip, monkeypatch):
    monkeypatch.setattr(mailings, "MAX_ATTEMPTS", 2)
    mailing_id, _ = scheduled(crm, {"tag": "vip"}, vip["template"])
    smtp.handler.reply = "421 4.7.0 Slow down"
    assert mailings.send_due(crm).retrying == 2
    assert mailings.send_due(crm).failed == 2
    smtp.handler.reply = None
    assert mailings.send_due(crm).sent == 0
    assert {(r.status, r.attempts) for r in recipients(crm, mailing_id).values()} == {("failed", 2)}


def test_a_permanent_refusal_fails_without_retry(crm, smtp, vip):
    mailing_id, _ = scheduled(crm, {"tag": "vip"}, vip["template"])
    smtp.handler.reply = "550 5.1.1 No such user"
    report = mailings.send_due(crm)
    assert report.failed == 2
    smtp.handler.reply = None
    assert mailings.send_due(crm).sent == 0
    failed = recipients(crm, mailing_id).values()
    assert all(r.status == "failed" and "550" in r.last_error for r in failed)
    with crm.db.session() as session:
        assert session.get(Mailing, mailing_id).status == "sent"  # nothing left to do


def test_a_connection_lost_during_data_is_never_sent_again(crm, smtp, vip):
    mailing_id, _ = scheduled(crm, {"tag": "vip"}, vip["template"])
    smtp.handler.reply = "drop"
    report = mailings.send_due(crm)
    assert report.unknown == 2
    smtp.handler.reply = None
    assert mailings.send_due(crm).sent == 0
    assert smtp.handler.envelopes == []
    unknown = recipients(crm, mailing_id).values()
    assert all(r.status == "failed" and "outcome unknown" in r.last_error for r in unknown)
    with crm.db.write() as session:  # an operator who checked that they did not arrive
        assert mailings.requeue(session, mailing_id) == 0
        assert mailings.requeue(session, mailing_id, include_unknown=True) == 2
    assert mailings.send_due(crm).sent == 2


def test_two_concurrent_senders_never_send_one_recipient_twice(crm, smtp):
    for n in range(24):
        add_customer(crm, f"Khách {n}", f"khach{n}@example.vn", ["mass"])
    template = add_template(crm, "Chào {{ display_name }}", "Nội dung")
    mailing_id, counts = scheduled(crm, {"tag": "mass"}, template)
    assert counts["queued"] == 24
    start = threading.Barrier(3)
    reports: list = []
    errors: list = []

    def worker() -> None:
        start.wait()
        try:
            reports.append(mailings.send_due(crm))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    got = smtp.handler.recipients()
    assert len(got) == 24 and len(set(got)) == 24
    assert sum(r.sent for r in reports) == 24
    assert all(r.status == "sent" and r.attempts == 1 for r in recipients(crm, mailing_id).values())
    with crm.db.session() as session:
        interactions = session.scalar(
            select(func.count()).select_from(Interaction).where(Interaction.source == "mailing")
        )
    assert interactions == 24


def test_abandoned_claims_are_retried_only_when_the_mail_was_not_handed_over(crm, smtp, vip):
    extra = add_customer(crm, "Võ Thị Em", "em@example.vn", ["vip"])
    assert extra
    mailing_id, _ = scheduled(crm, {"tag": "vip"}, vip["template"])
    long_ago = utcnow() - dt.timedelta(hours=1)
    just_now = utcnow() - dt.timedelta(seconds=30)
    with crm.db.write() as session:
        claims = {
            "an.nguyen@example.vn": {"claimed_at": long_ago, "sent_at": None},  # died before
            "binh@example.vn": {"claimed_at": long_ago, "sent_at": long_ago},  # died during
            "em@example.vn": {"claimed_at": just_now, "sent_at": None},  # still working
        }
        for address, values in claims.items():
            session.execute(
                update(MailingRecipient)
                .where(MailingRecipient.email == address)
                .values(attempts=1, **values)
            )
    report = mailings.send_due(crm)
    assert (report.released, report.unknown, report.sent) == (1, 1, 1)
    assert smtp.handler.recipients() == ["an.nguyen@example.vn"]
    state = recipients(crm, mailing_id)
    assert state["an.nguyen@example.vn"].status == "sent"
    assert state["an.nguyen@example.vn"].attempts == 2
    assert state["binh@example.vn"].status == "failed"
    assert "outcome unknown" in state["binh@example.vn"].last_error
    assert state["em@example.vn"].status == "queued"  # a live worker's claim is left alone


def test_a_lost_claim_sends_nothing(crm, smtp, vip):
    mailing_id, _ = scheduled(crm, {"tag": "vip"}, vip["template"])
    rid = recipients(crm, mailing_id)["an.nguyen@example.vn"].id
    claim = mailings._claim(crm, rid)
    assert mailings._claim(crm, rid) is None  # a second worker cannot take it
    with crm.db.write() as session:  # released as abandoned and taken by another worker
        session.execute(
            update(MailingRecipient)
            .where(MailingRecipient.id == rid)
            .values(claimed_at=utcnow() + dt.timedelta(seconds=5))
        )
    message = EmailMessage()
    message["Subject"] = "x"
    message.set_content("x")
    with Mailer(smtp.url) as mailer:
        handed = mailer.deliver(message, "shop@example.vn", claim.email, lambda: False)
        assert handed is False
        assert mailings._handover(crm, claim) is False
    assert smtp.handler.envelopes == []


# --- unsubscribing ------------------------------------------------------------------------------


def test_unsubscribe_page_and_later_mailings(crm, smtp, vip, client):
    first, _ = scheduled(crm, {"tag": "vip"}, vip["template"])
    mailings.send_due(crm)
    second, counts = scheduled(crm, {"tag": "vip"}, vip["template"])  # queued before
    assert counts["queued"] == 2
    mail = next(m for m in smtp.handler.messages if m["To"].addresses[0].addr_spec.startswith("an"))
    path = urlsplit(mail["List-Unsubscribe"][1:-1]).path

    page = client.get(path, headers={"Accept": "text/html"})
    assert page.status_code == 200 and 'id="unsubscribe-confirm"' in page.text
    assert "an.nguyen@example.vn" in page.text
    refused = client.post(path, data={"csrf_token": "forged"}, headers=ORIGIN)
    assert refused.status_code == 403
    done = client.post(path, data={"csrf_token": client.cookies["crm_csrf"]}, headers=ORIGIN)
    assert done.status_code == 200 and 'id="unsubscribe-done"' in done.text
    again = client.get(path, headers={"Accept": "text/html"})
    assert 'id="unsubscribe-already"' in again.text
    tampered = client.get(path[:-3] + "xyz", headers={"Accept": "text/html"})
    assert tampered.status_code == 404 and 'id="unsubscribe-invalid"' in tampered.text

    assert recipients(crm, first)["an.nguyen@example.vn"].status == "unsubscribed"
    assert recipients(crm, second)["an.nguyen@example.vn"].status == "unsubscribed"
    third, counts = scheduled(crm, {"tag": "vip"}, vip["template"])
    assert counts == {"queued": 1, "no_email": 1, "unsubscribed": 2, "not_found": 0}
    with crm.db.write() as session:  # an address unsubscribed by another process meanwhile
        session.add(Unsubscribe(email="binh@example.vn"))
    smtp.handler.envelopes.clear()
    report = mailings.send_due(crm)
    assert report.sent == 0 and report.unsubscribed == 2
    assert smtp.handler.envelopes == []
    assert recipients(crm, third)["binh@example.vn"].status == "unsubscribed"


# --- replies ------------------------------------------------------------------------------------


def test_replies_are_matched_by_message_id_then_by_email(crm, smtp, vip, client):
    mailing_id, _ = scheduled(crm, {"tag": "vip"}, vip["template"])
    mailings.send_due(crm)
    sent = recipients(crm, mailing_id)
    other = add_customer(crm, "Khách Khác", "khac@example.vn")
    gateway = token_for(crm, "admin@example.com")

    by_id = client.post(
        "/api/operational/replies",
        json={
            "from": "Anh An <an.other@gmail.com>",
            "subject": "Re: Ưu đãi",
            "text": "Tôi quan tâm, gọi lại giúp tôi.",
            "in_reply_to": sent["an.nguyen@example.vn"].message_id,
        },
        headers=gateway,
    )
    assert by_id.status_code == 201, by_id.text
    assert by_id.json()["matched_by"] == "message_id"
    assert by_id.json()["customer_id"] == vip["an"]
    in_refs = client.post(
        "/api/operational/replies",
        json={
            "from": "someone@else.example",
            "subject": "Re: Ưu đãi",
            "text": "ok",
            "references": f"<unrelated@x.y> {sent['binh@example.vn'].message_id}",
        },
        headers=gateway,
    )
    assert in_refs.json()["recipient_id"] == sent["binh@example.vn"].id
    by_email = client.post(
        "/api/operational/replies",
        json={"from": "Khách <KHAC@Example.VN>", "subject": "Hỏi giá", "text": "Bao nhiêu?"},
        headers=gateway,
    )
    assert by_email.status_code == 201
    assert by_email.json() | {"interaction_id": 0} == {
        "matched": True,
        "matched_by": "email",
        "customer_id": other,
        "recipient_id": None,
        "interaction_id": 0,
    }
    unknown = client.post(
        "/api/operational/replies",
        json={"from": "stranger@nowhere.example", "subject": "hi", "text": "?"},
        headers=gateway,
    )
    assert unknown.status_code == 202 and unknown.json()["matched"] is False

    state = recipients(crm, mailing_id)
    assert state["an.nguyen@example.vn"].status == "replied"
    assert state["an.nguyen@example.vn"].replied_at is not None
    with crm.db.session() as session:
        inbound = list(session.scalars(select(Interaction).where(Interaction.source == "reply")))
    assert sorted((i.customer_id, i.direction, i.kind, i.channel) for i in inbound) == sorted(
        [
            (vip["an"], "inbound", "email", "email"),
            (vip["binh"], "inbound", "email", "email"),
            (other, "inbound", "email", "email"),
        ]
    )
    reply = {"from": "a@b.example", "subject": "x", "text": "y"}
    marketing = token_for(crm, "mai@example.com")
    assert client.post("/api/operational/replies", json=reply, headers=marketing).status_code == 403
    assert client.post("/api/operational/replies", json=reply).status_code == 401


# --- the API ------------------------------------------------------------------------------------


def test_every_mailings_route_needs_a_login(client):
    schema = client.get("/openapi.json").json()
    mine = {
        (method, path)
        for path, operations in schema["paths"].items()
        for method in operations
        if path.startswith(("/api/operational/mail", "/api/operational/replies"))
    }
    assert len(mine) == 14
    for method, path in mine:
        url = re.sub(r"{[^}]+}", "1", path)
        response = client.request(method.upper(), url, json={}, headers=ORIGIN)
        assert response.status_code == 401, (method, path)


def test_template_api_validation_permissions_and_versions(crm, client):
    marketing, sales = token_for(crm, "mai@example.com"), token_for(crm, "an@example.com")
    url = "/api/operational/mail-templates"
    good = {"name": "Tháng 5", "subject": "Chào {{ given_name }}", "body": "Nội dung"}
    assert client.post(url, json=good, headers=sales).status_code == 403
    created = client.post(url, json=good, headers=marketing)
    assert created.status_code == 201 and created.json()["version"] == 1
    template = created.json()

    bad = client.post(
        url, json={**good, "name": "x", "body": "Dòng 1\n{% if given_name %}"}, headers=marketing
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "body"]
    assert bad.json()["detail"][0]["msg"].startswith("line 2:")
    unknown = client.post(
        url, json={**good, "name": "y", "subject": "{{ phone }}"}, headers=marketing
    )
    assert (
        unknown.status_code == 422 and "unknown field phone" in unknown.json()["detail"][0]["msg"]
    )
    missing = client.post(url, json={"name": "z"}, headers=marketing)
    assert {tuple(e["loc"]) for e in missing.json()["detail"]} == {
        ("body", "subject"),
        ("body", "body"),
    }
    assert client.post(url, json=good, headers=marketing).status_code == 409  # name taken

    patch = f"{url}/{template['id']}"
    changed = client.patch(
        patch, json={"version": 1, "subject": "Chào {{ display_name }}"}, headers=marketing
    )
    assert changed.status_code == 200 and changed.json()["version"] == 2
    stale = client.patch(patch, json={"version": 1, "body": "x"}, headers=marketing)
    assert stale.status_code == 409
    assert stale.json()["current"]["subject"] == "Chào {{ display_name }}"
    assert client.get(url, headers=sales).json()["items"][0]["id"] == template["id"]

    customer = add_customer(crm, "Đặng Thu Hà", "ha@example.vn", given_name="Hà")
    shown = client.post(f"{patch}/preview", json={"customer_id": customer}, headers=marketing)
    assert shown.json() == {"subject": "Chào Đặng Thu Hà", "body": "Nội dung"}


def test_mailing_api_schedule_counts_pages_and_conflicts(crm, client, vip):
    marketing, sales = token_for(crm, "mai@example.com"), token_for(crm, "an@example.com")
    url = "/api/operational/mailings"
    body = {"name": "Tháng 5", "template_id": vip["template"], "audience": {"tag": "vip"}}
    assert client.post(url, json=body, headers=sales).status_code == 403
    bad = client.post(
        url, json={**body, "audience": {"tag": "vip", "colour": "red"}}, headers=marketing
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "audience"]
    empty = client.post(url, json={**body, "audience": {"tag": None}}, headers=marketing)
    assert "at least one of tag" in empty.json()["detail"][0]["msg"]
    no_template = client.post(url, json={**body, "template_id": 999}, headers=marketing)
    assert no_template.json()["detail"][0]["loc"] == ["body", "template_id"]
    naive = client.post(
        url, json={**body, "scheduled_at": "2030-01-01T09:00:00"}, headers=marketing
    )
    assert naive.status_code == 422
    created = client.post(url, json=body, headers=marketing)
    assert created.status_code == 201, created.text
    mailing = created.json()
    assert mailing["status"] == "draft" and mailing["counts"]["total"] == 0
    one = f"{url}/{mailing['id']}"

    renamed = client.patch(one, json={"version": 1, "name": "Tháng 5 (VIP)"}, headers=marketing)
    assert renamed.json()["version"] == 2
    stale = client.patch(one, json={"version": 1, "name": "x"}, headers=marketing)
    assert stale.status_code == 409 and stale.json()["current"]["name"] == "Tháng 5 (VIP)"
    assert client.post(f"{one}/schedule", json={"version": 2}, headers=sales).status_code == 403
    done = client.post(f"{one}/schedule", json={"version": 2}, headers=marketing)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "scheduled" and done.json()["queued"] == 2
    assert done.json()["skipped"] == {"no_email": 1, "unsubscribed": 1, "not_found": 0}
    assert done.json()["counts"]["queued"] == 2
    current = done.json()["version"]
    assert (
        client.patch(one, json={"version": current, "name": "y"}, headers=marketing).status_code
        == 409
    )
    again = client.post(f"{one}/schedule", json={"version": current}, headers=marketing)
    assert again.status_code == 409 and "only drafts" in again.json()["detail"]
    listed = client.get(f"{one}/recipients", headers=marketing).json()["items"]
    assert sorted(r["email"] for r in listed) == ["an.nguyen@example.vn", "binh@example.vn"]
    back = client.post(f"{one}/unschedule", json={"version": current}, headers=marketing)
    assert back.json()["status"] == "draft" and back.json()["counts"]["total"] == 0

    for n in range(3):
        client.post(url, json={**body, "name": f"m{n}"}, headers=marketing)
    page = client.get(url, params={"limit": 2}, headers=marketing).json()
    assert [m["name"] for m in page["items"]] == ["m2", "m1"]
    rest = client.get(
        url, params={"limit": 2, "cursor": page["next_cursor"]}, headers=marketing
    ).json()
    assert [m["name"] for m in rest["items"]] == ["m0", "Tháng 5 (VIP)"]
    assert rest["next_cursor"] is None
    assert client.get(url, params={"cursor": "nope"}, headers=marketing).status_code == 422
    assert client.get(f"{url}/999", headers=marketing).status_code == 404
    # record rules: a sales user of team north does not see mailings made outside it
    assert client.get(one, headers=sales).status_code == 404
    assert client.get(url, headers=sales).json()["items"] == []


def test_csv_audience_upload(crm, client, vip):
    marketing = token_for(crm, "mai@example.com")
    url = "/api/operational/mailings"
    body = {"name": "Danh sách", "template_id": vip["template"]}
    mailing = client.post(url, json=body, headers=marketing).json()
    upload = f"{url}/{mailing['id']}/audience-csv"
    bad_csv = "email,customer_id\nan.nguyen@example.vn,\nkhong-phai-email,\n"
    bad = client.post(
        upload,
        files={"file": ("a.csv", bad_csv.encode())},
        data={"version": "1"},
        headers=marketing,
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "file"]
    assert bad.json()["detail"][0]["msg"].startswith("line 3:")
    good_csv = (
        f"\ufeffemail,customer_id,note\nAN.NGUYEN@example.vn,,x\n,{vip['binh']},y\nnobody@x.vn,,\n"
    )
    done = client.post(
        upload,
        files={"file": ("a.csv", good_csv.encode())},
        data={"version": "1"},
        headers=marketing,
    )
    assert done.status_code == 200, done.text
    assert done.json()["audience"] == {
        "emails": ["an.nguyen@example.vn", "nobody@x.vn"],
        "customer_ids": [vip["binh"]],
    }
    scheduled_ = client.post(
        f"{url}/{mailing['id']}/schedule", json={"version": 2}, headers=marketing
    ).json()
    assert scheduled_["queued"] == 2 and scheduled_["skipped"]["not_found"] == 1
    plain = mailings.parse_audience_csv(b"a@example.vn\n42\n\n")
    assert plain == {"emails": ["a@example.vn"], "customer_ids": [42]}


def test_schedule_follows_record_rules(crm, client, vip):
    add_customer(crm, "Khách miền Bắc", "bac@example.vn", ["region"], owner_email="an@example.com")
    add_customer(crm, "Khách miền Nam", "nam@example.vn", ["region"], owner_email="chi@example.com")
    manager = token_for(crm, "quan@example.com", ["manager"])
    with crm.db.write() as session:
        user = session.scalar(select(users.User).where(users.User.email == "quan@example.com"))
        users.set_team(session, user, session.scalar(select(Team).where(Team.name == "north")))
    url = "/api/operational/mailings"
    body = {"name": "Vùng", "template_id": vip["template"], "audience": {"tag": "region"}}
    mailing = client.post(url, json=body, headers=manager).json()
    done = client.post(f"{url}/{mailing['id']}/schedule", json={"version": 1}, headers=manager)
    assert done.json()["queued"] == 1
    assert set(recipients(crm, mailing["id"])) == {"bac@example.vn"}


class SegmentModule:
    def __init__(self, ids):
        self.ids = ids

    @hookimpl
    def mailing_segment(self, crm, session, name):
        return self.ids if name == "loyal" else None


def test_segments_are_answered_by_a_module_or_refused_clearly(crm, vip, monkeypatch):
    template = vip["template"]
    with pytest.raises(mailings.Invalid, match="no enabled module knows segment 'loyal'"):
        scheduled(crm, {"segment": "loyal"}, template)
    crm.registry.pm.register(SegmentModule([vip["binh"], vip["binh"], 999_999]), name="seg")
    monkeypatch.setattr(crm, "active", lambda: ["core", *crm.enabled_modules(), "seg"])
    with pytest.raises(mailings.Invalid, match="no enabled module knows segment 'other'"):
        scheduled(crm, {"segment": "other"}, template)
    _, counts = scheduled(crm, {"segment": "loyal"}, template)
    assert counts == {"queued": 1, "no_email": 0, "unsubscribed": 0, "not_found": 1}


def test_send_due_command(crm, smtp, vip, cli):
    scheduled(crm, {"tag": "vip"}, vip["template"])
    env = {"CRM_LOAD_PLUGINS": "operational", "CRM_SMTP_URL": smtp.url}
    first = cli("mailings", "send-due", "--limit", "1", **env)
    assert first.exit_code == 0 and "Sent 1," in first.output
    smtp.stop()
    down = cli("mailings", "send-due", **env)
    assert down.exit_code == 1 and "Stopped: SMTP server 127.0.0.1" in down.output
    smtp.start()
    rest = cli("mailings", "send-due", "--format", "json", **env)
    assert rest.exit_code == 0 and '"sent": 1' in rest.output
    listed = cli("mailings", "list", "--format", "json", **env)
    assert '"status": "sent"' in listed.output
    unset = cli("mailings", "send-due", CRM_LOAD_PLUGINS="operational")
    assert unset.exit_code == 1 and "CRM_SMTP_URL is not set" in unset.output
    assert len(smtp.handler.envelopes) == 2
