"""Notification e-mail through a real SMTP server (aiosmtpd): at most once, retries without
duplicates, a server that is down, a drop during DATA, parallel runs, daily digests, the
background thread and the ``crm collaborative deliver`` / ``digest`` commands."""

from __future__ import annotations

import datetime as dt
import threading
import time
import zoneinfo

import pytest
from sqlalchemy import func, select, update

from core import modules, users
from core.bootstrap import initialise
from core.db import utcnow
from core.models import Setting
from plugins.collaborative import delivery
from plugins.collaborative.inbox import set_preferences
from plugins.collaborative.models import Digest, Notification
from plugins.collaborative.notify import Subject, notify
from tests.plugins.collaborative.helpers import (
    ADMIN,
    ADMIN_PASSWORD,
    PASSWORD,
    add_customer,
    add_people,
)

AN, BINH, CHI, DUNG = "an@example.com", "binh@example.com", "chi@example.com", "dung@example.com"
ZAHRA = "zahra@example.com"
ZONE = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")


def _crm(make_crm, smtp, **overrides: str):
    settings = {
        "load_plugins": "collaborative",
        "smtp_url": smtp.url,
        "public_url": "https://crm.example.vn",
        "collaborative_send_in_background": "false",
        **overrides,
    }
    crm = make_crm(**settings)
    initialise(crm, ADMIN, ADMIN_PASSWORD)
    modules.enable(crm, ["collaborative"])
    crm.refresh()
    crm.people = add_people(crm)
    return crm


@pytest.fixture
def mail_crm(make_crm, smtp):
    """The collaborative module with mail going to the ``smtp`` fixture, no background thread."""
    return _crm(make_crm, smtp)


def _tell(crm, email: str, key: str, title: str = "Công ty Hoa Sen", customer: int | None = None):
    subject = Subject(
        key=key,
        kind="mention",
        label="Mentioned you",
        title=title,
        body="@Bình xem giúp báo giá này nhé",
        url=f"/ui/customer/{customer}" if customer else "/collaborative/inbox",
        record_type="customer" if customer else None,
        record_id=customer,
        customer_id=customer,
        actor_id=crm.people[AN],
    )
    with crm.db.write() as session:
        assert notify(crm, session, [crm.people[email]], subject) == [crm.people[email]]
        return session.scalar(
            select(Notification.id).where(
                Notification.user_id == crm.people[email], Notification.key == key
            )
        )


def _row(crm, notification_id: int) -> Notification:
    with crm.db.session() as session:
        return session.get(Notification, notification_id)


def _prefer(crm, who: str, **values) -> None:
    with crm.db.write() as session:
        set_preferences(session, crm.people[who], **values)


def test_an_immediate_notification_is_mailed_exactly_once(mail_crm, smtp):
    with mail_crm.db.write() as session:
        customer = add_customer(session, "Công ty Hoa Sen", owner=mail_crm.people[AN])
    told = _tell(mail_crm, BINH, "message:1", customer=customer)

    report = delivery.deliver_pending(mail_crm)
    assert (report.sent, report.retrying, report.failed) == (1, 0, 0)
    assert smtp.handler.recipients() == [BINH]
    (message,) = smtp.handler.messages
    assert message["Subject"] == "Mentioned you: Công ty Hoa Sen"
    assert message["To"].addresses[0].display_name == "Trần Thị Bình"
    assert message["Message-ID"] == delivery.message_id(mail_crm, "notification", told)
    text = message.get_content()
    assert f"https://crm.example.vn/ui/customer/{customer}" in text
    assert "@Bình xem giúp báo giá này nhé" in text and "Nguyễn Văn An" in text
    row = _row(mail_crm, told)
    assert row.email_status == "sent" and row.emailed_at and row.email_attempts == 1

    again = delivery.deliver_pending(mail_crm)
    assert again.sent == 0 and len(smtp.handler.envelopes) == 1


def test_after_a_451_refusal_the_next_run_delivers_one_copy(mail_crm, smtp):
    told = _tell(mail_crm, BINH, "message:1")
    smtp.handler.reply = "451 4.3.0 mailbox busy, try later"
    first = delivery.deliver_pending(mail_crm)
    assert (first.sent, first.retrying) == (0, 1)
    row = _row(mail_crm, told)
    assert row.email_status == "pending" and row.email_claimed_at is None
    assert "451" in row.email_error and row.email_attempts == 1

    smtp.handler.reply = None
    second = delivery.deliver_pending(mail_crm)
    assert second.sent == 1
    assert smtp.handler.recipients() == [BINH]
    assert smtp.handler.messages[0]["Message-ID"] == delivery.message_id(
        mail_crm, "notification", told
    )
    assert delivery.deliver_pending(mail_crm).sent == 0
    assert len(smtp.handler.envelopes) == 1


def test_a_colleague_whose_address_is_not_ascii_is_mailed(mail_crm, smtp):
    """The product accepts addresses such as đức@example.com; their mail goes out (SMTPUTF8)
    instead of the header parser refusing them and stopping the whole run."""
    with mail_crm.db.write() as session:
        user = users.create_user(session, "đức@example.com", "Phạm Đức", PASSWORD, ["sales"])
        mail_crm.people["đức@example.com"] = user.id
    _tell(mail_crm, "đức@example.com", "message:1")
    _tell(mail_crm, BINH, "message:2")
    assert delivery.deliver_pending(mail_crm).sent == 2
    assert sorted(smtp.handler.recipients()) == [BINH, "đức@example.com"]
    (raw,) = [e.content for e in smtp.handler.envelopes if "đức@example.com" in e.rcpt_tos]
    assert "To: Phạm Đức <đức@example.com>".encode() in raw


def test_refused_too_often_or_for_good_it_fails(mail_crm, smtp):
    busy = _tell(mail_crm, BINH, "message:1")
    smtp.handler.reply = "451 4.3.0 try later"
    for _ in range(delivery.MAX_ATTEMPTS):
        delivery.deliver_pending(mail_crm)
    assert _row(mail_crm, busy).email_status == "failed"
    smtp.handler.reply = "550 5.1.1 no such mailbox"
    gone = _tell(mail_crm, CHI, "message:2")
    assert delivery.deliver_pending(mail_crm).failed == 1
    smtp.handler.reply = None
    assert delivery.deliver_pending(mail_crm).sent == 0
    assert _row(mail_crm, gone).email_status == "failed" and smtp.handler.envelopes == []


def test_a_stopped_server_loses_nothing_and_it_goes_once_when_back(mail_crm, smtp):
    told = _tell(mail_crm, BINH, "message:1")
    smtp.stop()
    report = delivery.deliver_pending(mail_crm)
    assert report.stopped and report.sent == 0
    row = _row(mail_crm, told)
    assert row.email_status == "pending" and row.email_attempts == 0
    smtp.start()
    assert delivery.deliver_pending(mail_crm).sent == 1
    assert delivery.deliver_pending(mail_crm).sent == 0
    assert smtp.handler.recipients() == [BINH]


def test_a_drop_during_data_fails_and_is_never_sent_again(mail_crm, smtp):
    told = _tell(mail_crm, BINH, "message:1")
    smtp.handler.reply = "drop"
    report = delivery.deliver_pending(mail_crm)
    assert report.unknown == 1
    row = _row(mail_crm, told)
    assert row.email_status == "failed" and "outcome unknown" in row.email_error
    assert row.email_handover_at is not None
    smtp.handler.reply = None
    assert delivery.deliver_pending(mail_crm).sent == 0
    assert smtp.handler.envelopes == []


def test_abandoned_claims_are_released_or_failed(mail_crm, smtp):
    never_sent = _tell(mail_crm, BINH, "message:1")
    handed_over = _tell(mail_crm, CHI, "message:2")
    long_ago = utcnow() - delivery.ABANDONED_AFTER - dt.timedelta(minutes=1)
    with mail_crm.db.write() as session:
        session.execute(
            update(Notification)
            .where(Notification.id.in_([never_sent, handed_over]))
            .values(email_claimed_at=long_ago, email_attempts=1)
        )
        session.execute(
            update(Notification)
            .where(Notification.id == handed_over)
            .values(email_handover_at=long_ago)
        )
    report = delivery.deliver_pending(mail_crm)
    assert (report.released, report.unknown, report.sent) == (1, 1, 1)
    assert smtp.handler.recipients() == [BINH]
    row = _row(mail_crm, handed_over)
    assert row.email_status == "failed" and "outcome unknown" in row.email_error


def _tell_many(crm, count: int) -> None:
    """``count`` notifications with nobody acting, spread over five people."""
    people = [AN, BINH, CHI, DUNG, ZAHRA]
    with crm.db.write() as session:
        for n in range(count):
            subject = Subject(key=f"event:{n}", kind="event", label="Deal won", title=f"Cơ hội {n}")
            assert notify(crm, session, [crm.people[people[n % len(people)]]], subject)


def test_two_runs_in_parallel_mail_each_notification_once(mail_crm, smtp):
    _tell_many(mail_crm, 20)
    reports: list[delivery.DeliveryReport] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        reports.append(delivery.deliver_pending(mail_crm))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(reports) == 2 and sum(r.sent for r in reports) == 20
    assert len(smtp.handler.envelopes) == 20
    assert len({m["Message-ID"] for m in smtp.handler.messages}) == 20
    with mail_crm.db.session() as session:
        sent = select(func.count()).where(Notification.email_status == "sent")
        assert session.scalar(sent) == 20


def test_preference_off_sends_nothing_and_in_app_off_arrives_read(mail_crm, smtp):
    _prefer(mail_crm, BINH, email="off")
    _prefer(mail_crm, CHI, in_app=False)
    quiet = _tell(mail_crm, BINH, "message:1")
    mailed = _tell(mail_crm, CHI, "message:2")
    assert _row(mail_crm, quiet).email_status == "none"
    assert _row(mail_crm, mailed).read_at is not None  # no badge for chi
    assert delivery.deliver_pending(mail_crm).sent == 1
    assert smtp.handler.recipients() == [CHI]
    report = delivery.send_digests(mail_crm, now=_local(1, 9))
    assert report.sent == 0 and smtp.handler.recipients() == [CHI]


def _local(days: int, hour: int) -> dt.datetime:
    """``hour`` o'clock in the CRM's timezone, ``days`` after today."""
    today = dt.datetime.now(ZONE).date() + dt.timedelta(days=days)
    return dt.datetime.combine(today, dt.time(hour), ZONE)


def test_the_daily_digest_goes_once_per_user_and_day(mail_crm, smtp):
    _prefer(mail_crm, BINH, email="digest")
    _prefer(mail_crm, ZAHRA, email="digest")
    _tell(mail_crm, BINH, "message:1", title="Công ty Hoa Sen")
    _tell(mail_crm, BINH, "message:2", title="Tập đoàn Sông Hồng")
    _tell(mail_crm, ZAHRA, "message:3", title="شرکت پارس")
    assert delivery.deliver_pending(mail_crm).sent == 0  # digests wait for the digest

    early = delivery.send_digests(mail_crm, now=_local(1, 5))
    assert early.too_early and smtp.handler.envelopes == []
    with mail_crm.db.session() as session:
        assert delivery.last_digest_run(session) == _local(1, 5).astimezone(dt.UTC)

    report = delivery.send_digests(mail_crm, now=_local(1, 9))
    assert (report.sent, report.items) == (2, 3)
    assert sorted(smtp.handler.recipients()) == [BINH, ZAHRA]
    binh = next(m for m in smtp.handler.messages if BINH in m["To"])
    text = binh.get_content()
    assert "Công ty Hoa Sen" in text and "Tập đoàn Sông Hồng" in text and "شرکت پارس" not in text
    assert "https://crm.example.vn/collaborative/inbox" in text
    assert binh["Subject"] == f"Your CRM digest for {_local(1, 9).date().isoformat()}"
    with mail_crm.db.session() as session:
        stored = session.get(Setting, delivery.LAST_DIGEST_RUN).value
        assert dt.datetime.fromisoformat(stored) == _local(1, 9)
        statuses = session.scalars(
            select(Notification.email_status).where(Notification.user_id == mail_crm.people[BINH])
        ).all()
        assert statuses == ["sent", "sent"]

    _tell(mail_crm, BINH, "message:4", title="Khách hàng mới")
    again = delivery.send_digests(mail_crm, now=_local(1, 20))
    assert (again.sent, again.already) == (0, 1)
    assert len(smtp.handler.envelopes) == 2

    tomorrow = delivery.send_digests(mail_crm, now=_local(2, 8))
    assert (tomorrow.sent, tomorrow.items) == (1, 1)
    assert "Khách hàng mới" in smtp.handler.messages[-1].get_content()
    with mail_crm.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Digest)) == 3


def test_digest_items_that_can_no_longer_be_mailed_leave_the_queue(mail_crm, smtp):
    from core.models import User
    from plugins.collaborative.models import AccountTeam

    _prefer(mail_crm, BINH, email="digest")
    with mail_crm.db.write() as session:
        customer = add_customer(session, "Công ty Sao Mai", owner=mail_crm.people[AN])
        session.add(AccountTeam(customer_id=customer, team_id=mail_crm.people["team:north"]))
    hidden = _tell(mail_crm, BINH, "message:1", title="Công ty Sao Mai", customer=customer)
    kept = _tell(mail_crm, BINH, "message:2", title="Tập đoàn Sông Hồng")
    with mail_crm.db.write() as session:  # binh no longer sees that customer
        session.query(AccountTeam).filter_by(customer_id=customer).delete()
        session.get(User, mail_crm.people[AN]).team_id = mail_crm.people["team:south"]
    report = delivery.send_digests(mail_crm, now=_local(1, 9))
    assert (report.sent, report.items) == (1, 1)
    assert "Công ty Sao Mai" not in smtp.handler.messages[-1].get_content()
    assert (_row(mail_crm, hidden).email_status, _row(mail_crm, kept).email_status) == (
        "none",
        "sent",
    )

    _prefer(mail_crm, ZAHRA, email="digest")
    waiting = _tell(mail_crm, ZAHRA, "message:3")
    with mail_crm.db.write() as session:
        session.get(User, mail_crm.people[ZAHRA]).is_active = False
    delivery.send_digests(mail_crm, now=_local(1, 10))
    assert _row(mail_crm, waiting).email_status == "none"


def test_a_refused_digest_is_sent_later_the_same_day_once(mail_crm, smtp):
    _prefer(mail_crm, BINH, email="digest")
    told = _tell(mail_crm, BINH, "message:1")
    smtp.handler.reply = "451 4.3.0 try later"
    assert delivery.send_digests(mail_crm, now=_local(1, 9)).retrying == 1
    assert _row(mail_crm, told).email_status == "digest"
    smtp.handler.reply = None
    assert delivery.send_digests(mail_crm, now=_local(1, 10)).sent == 1
    assert delivery.send_digests(mail_crm, now=_local(1, 11)).sent == 0
    assert smtp.handler.recipients() == [BINH]
    assert _row(mail_crm, told).email_status == "sent"


def test_the_background_thread_mails_a_mention_after_the_request(make_crm, smtp, api):
    crm = _crm(make_crm, smtp, collaborative_send_in_background="true")
    with crm.db.write() as session:
        customer = add_customer(session, "Công ty Hoa Sen", owner=crm.people[AN])
    an = api(crm, AN)
    posted = an.post(
        "/api/collaborative/messages",
        json={
            "record_type": "customer",
            "record_id": customer,
            "body": f"@[Trần Thị Bình](user:{crm.people[BINH]}) xem giúp nhé",
        },
    )
    assert posted.status_code == 201, posted.text
    for _ in range(100):  # waiting for the result, not timing it
        if smtp.handler.envelopes:
            break
        time.sleep(0.05)
    assert smtp.handler.recipients() == [BINH]
    with crm.db.session() as session:
        assert (
            session.scalar(
                select(Notification.email_status).where(Notification.user_id == crm.people[BINH])
            )
            == "sent"
        )


def test_the_commands_need_an_smtp_server_and_report_what_they_did(make_crm, smtp, cli):
    crm = _crm(make_crm, smtp)
    _tell(crm, BINH, "message:1")
    env = {
        "CRM_LOAD_PLUGINS": "collaborative",
        "CRM_COLLABORATIVE_SEND_IN_BACKGROUND": "false",
    }
    unset = cli("collaborative", "deliver", **env)
    assert unset.exit_code == 1 and "CRM_SMTP_URL is not set" in unset.output
    unset = cli("collaborative", "digest", **env)
    assert unset.exit_code == 1 and "CRM_SMTP_URL is not set" in unset.output

    env["CRM_SMTP_URL"] = smtp.url
    done = cli("collaborative", "deliver", "--limit", "5", **env)
    assert done.exit_code == 0 and "Mailed 1," in done.output
    assert smtp.handler.recipients() == [BINH]

    early = cli("collaborative", "digest", "--now", _local(1, 3).isoformat(), **env)
    assert early.exit_code == 0 and "before the digest hour" in early.output
    digest = cli("collaborative", "digest", "--now", _local(1, 9).isoformat(), **env)
    assert digest.exit_code == 0 and "sent 0 digests" in digest.output
    bad = cli("collaborative", "digest", "--now", "yesterday", **env)
    assert bad.exit_code == 2 and "--now" in bad.output

    smtp.stop()
    _tell(crm, CHI, "message:2")
    down = cli("collaborative", "deliver", **env)
    assert down.exit_code == 1 and "Stopped:" in down.output
