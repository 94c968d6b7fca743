"""Mailing notifications: at once (``deliver_pending``) or as one daily digest (``send_digests``).

Mail goes out outside any web request: from ``crm collaborative deliver`` / ``digest`` (cron), or
from one background thread per process that a commit creating notifications to mail at once
wakes (``[collaborative] send_in_background``, with ``CRM_SMTP_URL`` set).

Delivery guarantee: **at most once**, as for the operational module's mailings. Each
notification goes through short transactions of its own; none stays open while the SMTP server
is talked to:

1. *claim*: ``UPDATE ... SET email_claimed_at = now, email_attempts = email_attempts + 1 WHERE
   id = :id AND email_status = 'pending' AND email_claimed_at IS NULL``. Only one worker's update
   matches; the claim is the pair (``email_claimed_at``, ``email_attempts``).
2. *hand-over*: once the server accepted the envelope and right before DATA,
   ``email_handover_at`` is set, on condition that the claim is still ours. From here the
   message may have reached the server.
3. *sent*: after the server's 250, ``email_status = 'sent'`` and ``emailed_at``.

A 4xx refusal puts the notification back (``pending``, claim cleared, error kept) until
``MAX_ATTEMPTS``, then ``failed``; a 5xx makes it ``failed``. An unreachable server stops the run
and leaves everything ``pending`` without counting an attempt: nothing is lost while the server
is down. A connection broken during DATA makes it ``failed`` with "outcome unknown", never
retried automatically. A claim older than ``ABANDONED_AFTER`` belongs to a worker that died: it
is released when it never reached the hand-over, and becomes ``failed`` ("outcome unknown")
when it did. A rare lost notification is preferred to a duplicate. The protocol itself is
``core.outbox`` (``OUTBOX`` says which columns play which role).

Digests: once per user and local day (the CRM's timezone), after ``[collaborative]
digest_hour``. Inserting the ``Digest`` row for (user, day) is the claim: its unique constraint
lets one run, and one only, send that user's digest that day. The notifications it lists are
marked ``sent`` at the hand-over. Every run stores its time in the ``core_setting`` row
``collaborative.last_digest_run`` (an ISO 8601 UTC timestamp), which the checklist reads.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import logging
import threading
import zoneinfo
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from core import i18n
from core.db import utcnow
from core.errors import CrmError
from core.mail import DeliveryError, Mailer, recipient
from core.models import Setting, User
from core.outbox import Claim, Outbox
from plugins.collaborative.config import settings
from plugins.collaborative.models import Digest, Notification
from plugins.collaborative.notify import Subject, may_see

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.runtime import Crm

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
ABANDONED_AFTER = dt.timedelta(minutes=15)
BATCH = 200
#: At most this many notifications are listed in one digest (the rest: the next day's).
DIGEST_MAX_ITEMS = 200
#: ``core_setting`` key holding the time of the latest digest run, an ISO 8601 UTC timestamp.
LAST_DIGEST_RUN = "collaborative.last_digest_run"
PREFERENCES_PATH = "/collaborative/preferences"
INBOX_PATH = "/collaborative/inbox"
UNKNOWN_OUTCOME = "outcome unknown: {why}; not retried automatically, to avoid a duplicate e-mail"


class DeliveryConfigError(CrmError):
    """Mail cannot be sent: no SMTP server is configured."""


@dataclass
class DeliveryReport:
    """What one ``deliver_pending`` run did; ``stopped`` says why it ended early."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    released: int = 0
    stopped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return asdict(self)


@dataclass
class DigestReport:
    """What one ``send_digests`` run did for ``day`` (the CRM's local date)."""

    day: str
    ran_at: str
    too_early: bool = False
    sent: int = 0
    items: int = 0
    already: int = 0
    retrying: int = 0
    failed: int = 0
    unknown: int = 0
    released: int = 0
    stopped: str | None = None
    users: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return asdict(self)


class _Unreachable(Exception):
    """The SMTP server cannot be used: the run stops."""


# --- text ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _catalogs(dirs: tuple[Path, ...]) -> i18n.Catalogs:
    return i18n.Catalogs(dirs)


def translator(crm: Crm, language: str | None) -> Callable[[str], str]:
    """``gettext`` for ``language`` over the enabled modules' catalogs (English when unknown)."""
    dirs = tuple(
        Path(path) for module, path in crm.contributions("locale_dirs") if module != "core"
    )
    return _catalogs(dirs).get(i18n.pick_language(language)).gettext


def message_id(crm: Crm, what: str, row_id: int) -> str:
    """A Message-ID that stays the same for one notification (or digest) across attempts."""
    domain = urlsplit(crm.settings.public_url).hostname or "crm"
    tag = hmac.new(crm.settings.secret_key.encode(), f"{what}:{row_id}".encode(), hashlib.sha256)
    return f"<collaborative-{what}-{row_id}.{tag.hexdigest()[:16]}@{domain}>"


def link(crm: Crm, url: str | None) -> str:
    """The absolute address of a page of the CRM."""
    return crm.settings.public_url.rstrip("/") + (url or INBOX_PATH)


def _headline(gettext: Callable[[str], str], label: str, title: str) -> str:
    shown = gettext(label)
    return f"{shown}: {title}" if title else shown


def _footer(crm: Crm, gettext: Callable[[str], str]) -> str:
    return "\n".join(
        [
            "-- ",
            gettext("You receive this e-mail because of your notification preferences:"),
            link(crm, PREFERENCES_PATH),
        ]
    )


def _message(crm: Crm, to: tuple[str, str], subject: str, body: str, msgid: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = crm.settings.mail_from
    name, address = to
    message["To"] = recipient(name, address)
    message["Subject"] = " ".join(subject.split())[:250]
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = msgid
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body, charset="utf-8", cte="quoted-printable")
    return message


def _sender(crm: Crm) -> str:
    return parseaddr(crm.settings.mail_from)[1] or crm.settings.mail_from


def require_smtp(crm: Crm) -> str:
    """The SMTP URL; ``DeliveryConfigError`` when none is configured."""
    if not crm.settings.smtp_url:
        raise DeliveryConfigError("CRM_SMTP_URL is not set: say where mail goes (smtp://host:25)")
    return crm.settings.smtp_url


# --- e-mail at once -----------------------------------------------------------------------------


#: The delivery protocol over the notifications' ``email_*`` columns (see ``core.outbox``).
OUTBOX = Outbox(
    Notification,
    status="email_status",
    queued="pending",
    claimed_at="email_claimed_at",
    attempts="email_attempts",
    handover_at="email_handover_at",
    error="email_error",
    unknown_outcome=UNKNOWN_OUTCOME,
    stopped_while="while sending",
)


@dataclass(frozen=True)
class _Claim:
    id: int
    user_id: int
    email: str
    name: str
    language: str
    held: Claim
    label: str
    title: str
    body: str
    url: str | None
    actor_name: str | None


def deliver_pending(
    crm: Crm, limit: int | None = None, now: dt.datetime | None = None
) -> DeliveryReport:
    """Mail the notifications waiting to go at once (at most ``limit``); see the module doc.

    Safe to run in several processes and threads at once: each is mailed at most once. Stops
    early (``report.stopped``) when the SMTP server cannot be reached.
    """
    url = require_smtp(crm)
    report = DeliveryReport()
    _release_abandoned(crm, now or utcnow(), report)
    last = 0
    with Mailer(url) as mailer:
        while True:
            with crm.db.session() as session:
                ids = list(
                    session.scalars(
                        select(Notification.id)
                        .where(
                            Notification.email_status == "pending",
                            Notification.email_claimed_at.is_(None),
                            Notification.id > last,
                        )
                        .order_by(Notification.id)
                        .limit(BATCH)
                    )
                )
            if not ids:
                return report
            for notification_id in ids:
                if limit is not None and _attempted(report) >= limit:
                    return report
                try:
                    _send_one(crm, mailer, notification_id, report)
                except _Unreachable as exc:
                    report.stopped = str(exc)
                    return report
            last = ids[-1]


def _attempted(report: DeliveryReport) -> int:
    return report.sent + report.retrying + report.failed + report.unknown


def _release_abandoned(crm: Crm, now: dt.datetime, report: DeliveryReport) -> None:
    """Settle claims older than ``ABANDONED_AFTER`` (their worker died), see the module doc."""
    with crm.db.write() as session:
        OUTBOX.release_abandoned(session, now - ABANDONED_AFTER, MAX_ATTEMPTS, report)


def _send_one(crm: Crm, mailer: Mailer, notification_id: int, report: DeliveryReport) -> None:
    claim = _claim(crm, notification_id, report)
    if claim is None:
        return
    gettext = translator(crm, claim.language)
    lines = [_headline(gettext, claim.label, claim.title), ""]
    if claim.body:
        lines += [claim.body, ""]
    if claim.actor_name:
        lines.append(gettext("By %(name)s") % {"name": claim.actor_name})
    lines += [link(crm, claim.url), "", _footer(crm, gettext)]
    message = _message(
        crm,
        (claim.name, claim.email),
        _headline(gettext, claim.label, claim.title),
        "\n".join(lines) + "\n",
        message_id(crm, "notification", claim.id),
    )
    try:
        accepted = mailer.deliver(message, _sender(crm), claim.email, lambda: _handover(crm, claim))
    except DeliveryError as exc:
        _settle_failure(crm, claim, exc, report)
        if exc.kind == "unreachable":
            raise _Unreachable(str(exc)) from None
        return
    if accepted:
        with crm.db.write() as session:
            OUTBOX.mark_sent(session, claim.held, emailed_at=utcnow())
        report.sent += 1


def _claim(crm: Crm, notification_id: int, report: DeliveryReport) -> _Claim | None:
    """Take the notification for this worker (its own transaction); ``None`` if someone else
    has it, or when it is not to be mailed after all (the user left, or lost sight of it)."""
    free = OUTBOX.free(notification_id)
    with crm.db.write() as session:
        row = session.execute(
            select(Notification, User.email, User.name, User.language)
            .join(User, User.id == Notification.user_id)
            .where(free)
        ).first()
        if row is None:
            return None
        notification = row[0]
        subject = Subject(
            key=notification.key,
            kind=notification.kind,
            label=notification.label,
            record_type=notification.record_type,
            record_id=notification.record_id,
        )
        if not may_see(crm, session, notification.user_id, subject):
            report.skipped += session.execute(
                update(Notification)
                .where(free)
                .values(
                    email_status="none",
                    email_error="not mailed: the user is deactivated or no longer sees it",
                )
            ).rowcount
            return None
        held = OUTBOX.claim(session, notification_id, notification.email_attempts)
        if held is None:
            return None
        actor = session.get(User, notification.actor_id) if notification.actor_id else None
        return _Claim(
            id=notification.id,
            user_id=notification.user_id,
            email=row.email,
            name=row.name or "",
            language=row.language,
            held=held,
            label=notification.label,
            title=notification.title,
            body=notification.body,
            url=notification.url,
            actor_name=actor.name if actor else None,
        )


def _handover(crm: Crm, claim: _Claim) -> bool:
    """Record that the message is being handed to the server, if the claim is still ours."""
    with crm.db.write() as session:
        return OUTBOX.handover(session, claim.held)


def _settle_failure(crm: Crm, claim: _Claim, error: DeliveryError, report: DeliveryReport) -> None:
    """Record a failed attempt: back to ``pending``, ``failed``, or failed with unknown outcome."""
    with crm.db.write() as session:
        OUTBOX.settle_failure(session, claim.held, error, MAX_ATTEMPTS, report)


# --- daily digest -------------------------------------------------------------------------------


def local_day(crm: Crm, now: dt.datetime) -> tuple[dt.date, int]:
    """The CRM's local date and hour at ``now``."""
    local = now.astimezone(zoneinfo.ZoneInfo(crm.settings.timezone))
    return local.date(), local.hour


def send_digests(crm: Crm, now: dt.datetime | None = None) -> DigestReport:
    """Send today's digest to each user with notifications waiting for it; see the module doc.

    Before ``digest_hour`` (local time) nothing is sent. Running it again the same day, or in
    two processes at once, sends nothing more.
    """
    url = require_smtp(crm)
    now = now or utcnow()
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    day, hour = local_day(crm, now)
    report = DigestReport(day=day.isoformat(), ran_at=now.astimezone(dt.UTC).isoformat())
    _record_run(crm, report.ran_at)
    if hour < settings(crm)["digest_hour"]:
        report.too_early = True
        return report
    _release_abandoned_digests(crm, now, report)
    with crm.db.session() as session:
        user_ids = sorted(
            session.scalars(
                select(Notification.user_id)
                .where(Notification.email_status == "digest", Notification.created_at <= now)
                .distinct()
            )
        )
    with Mailer(url) as mailer:
        for user_id in user_ids:
            try:
                _send_digest(crm, mailer, user_id, day, now, report)
            except _Unreachable as exc:
                report.stopped = str(exc)
                break
    return report


def _record_run(crm: Crm, when: str) -> None:
    """Store the run's time in ``LAST_DIGEST_RUN``, even when two runs race."""
    with crm.db.write() as session:
        if crm.db.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        statement = insert(Setting).values(key=LAST_DIGEST_RUN, value=when, updated_at=utcnow())
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["key"],
                set_={
                    "value": statement.excluded.value,
                    "updated_at": statement.excluded.updated_at,
                },
            )
        )


def last_digest_run(session: Session) -> dt.datetime | None:
    """When ``send_digests`` last ran (``None``: never, or a value that is not a time)."""
    row = session.get(Setting, LAST_DIGEST_RUN)
    try:
        last = dt.datetime.fromisoformat(str(row.value)) if row and row.value else None
    except ValueError:
        return None
    return last if last is None or last.tzinfo else last.replace(tzinfo=dt.UTC)


def _release_abandoned_digests(crm: Crm, now: dt.datetime, report: DigestReport) -> None:
    stale = (Digest.status == "claimed") & (Digest.claimed_at < now - ABANDONED_AFTER)
    with crm.db.write() as session:
        report.unknown += session.execute(
            update(Digest)
            .where(stale & Digest.handover_at.is_not(None))
            .values(
                status="failed",
                error=UNKNOWN_OUTCOME.format(why="the worker that claimed it stopped"),
            )
        ).rowcount
        report.released += session.execute(
            delete(Digest).where(stale & Digest.handover_at.is_(None))
        ).rowcount


@dataclass(frozen=True)
class _DigestClaim:
    id: int
    user_id: int
    email: str
    name: str
    language: str
    items: list[int]


def _send_digest(
    crm: Crm,
    mailer: Mailer,
    user_id: int,
    day: dt.date,
    now: dt.datetime,
    report: DigestReport,
) -> None:
    claim, lines = _claim_digest(crm, user_id, day, now, report)
    if claim is None:
        return
    gettext = translator(crm, claim.language)
    subject = gettext("Your CRM digest for %(day)s") % {"day": day.isoformat()}
    body = "\n".join(
        [
            subject,
            "",
            *lines,
            "",
            gettext("Your inbox:"),
            link(crm, INBOX_PATH),
            "",
            _footer(crm, gettext),
        ]
    )
    message = _message(
        crm, (claim.name, claim.email), subject, body + "\n", message_id(crm, "digest", claim.id)
    )
    try:
        accepted = mailer.deliver(
            message, _sender(crm), claim.email, lambda: _digest_handover(crm, claim, now)
        )
    except DeliveryError as exc:
        _digest_failure(crm, claim, exc, report)
        if exc.kind == "unreachable":
            raise _Unreachable(str(exc)) from None
        return
    if accepted:
        with crm.db.write() as session:
            session.execute(
                update(Digest)
                .where(Digest.id == claim.id, Digest.status == "claimed")
                .values(status="sent", sent_at=utcnow())
            )
        report.sent += 1
        report.items += len(claim.items)
        report.users.append(user_id)


def _settle_unmailable(session: Session, where: tuple[Any, ...], why: str) -> None:
    """Take digest items that will never be mailed out of the digest queue."""
    session.execute(
        update(Notification)
        .where(*where, Notification.email_status == "digest")
        .values(email_status="none", email_error=why)
        .execution_options(synchronize_session=False)
    )


def _claim_digest(
    crm: Crm, user_id: int, day: dt.date, now: dt.datetime, report: DigestReport
) -> tuple[_DigestClaim | None, list[str]]:
    """Insert the user's ``Digest`` row for ``day`` (the claim) and read what it lists."""
    with crm.db.write() as session:
        user = session.get(User, user_id)
        waiting = (Notification.user_id == user_id, Notification.email_status == "digest")
        if user is None or not user.is_active:
            _settle_unmailable(session, waiting, "the user is deactivated")
            return None, []
        rows = session.execute(
            select(Notification, User.name)
            .outerjoin(User, User.id == Notification.actor_id)
            .where(
                Notification.user_id == user_id,
                Notification.email_status == "digest",
                Notification.created_at <= now,
            )
            .order_by(Notification.id)
            .limit(DIGEST_MAX_ITEMS)
        ).all()
        gettext = translator(crm, user.language)
        items: list[int] = []
        hidden: list[int] = []
        lines: list[str] = []
        for notification, actor_name in rows:
            subject = Subject(
                key=notification.key,
                kind=notification.kind,
                label=notification.label,
                record_type=notification.record_type,
                record_id=notification.record_id,
            )
            if not may_see(crm, session, user_id, subject):
                hidden.append(notification.id)
                continue
            items.append(notification.id)
            line = f"- {_headline(gettext, notification.label, notification.title)}"
            if actor_name:
                line += f" ({gettext('By %(name)s') % {'name': actor_name}})"
            lines += [line, f"  {link(crm, notification.url)}"]
        # settled, or they would fill every later digest's window and block it for good
        _settle_unmailable(session, (Notification.id.in_(hidden),), "no longer visible to the user")
        if not items:
            return None, []
        digest = Digest(
            user_id=user_id, day=day, status="claimed", items=len(items), claimed_at=now
        )
        try:
            with session.begin_nested():  # another run claimed this user's day meanwhile
                session.add(digest)
        except IntegrityError:
            report.already += 1
            return None, []
        return (
            _DigestClaim(digest.id, user_id, user.email, user.name or "", user.language, items),
            lines,
        )


def _digest_handover(crm: Crm, claim: _DigestClaim, now: dt.datetime) -> bool:
    """Mark the digest handed over and its notifications sent, if the claim is still ours."""
    at = utcnow()
    with crm.db.write() as session:
        taken = session.execute(
            update(Digest)
            .where(Digest.id == claim.id, Digest.status == "claimed", Digest.handover_at.is_(None))
            .values(handover_at=at)
        ).rowcount
        if taken != 1:
            return False
        session.execute(
            update(Notification)
            .where(Notification.id.in_(claim.items), Notification.email_status == "digest")
            .values(email_status="sent", email_handover_at=at, emailed_at=at, email_error=None)
        )
        return True


def _digest_failure(
    crm: Crm, claim: _DigestClaim, error: DeliveryError, report: DigestReport
) -> None:
    """A refused digest goes again later (its row deleted) unless it may have arrived."""
    back = {"email_status": "digest", "email_handover_at": None, "emailed_at": None}
    ours = Notification.id.in_(claim.items)
    with crm.db.write() as session:
        if error.kind == "unknown":
            session.execute(
                update(Digest)
                .where(Digest.id == claim.id)
                .values(status="failed", error=UNKNOWN_OUTCOME.format(why=str(error)))
            )
            report.unknown += 1
        elif error.kind == "rejected":
            session.execute(
                update(Digest)
                .where(Digest.id == claim.id)
                .values(status="failed", error=str(error))
            )
            session.execute(
                update(Notification)
                .where(ours)
                .values(
                    email_status="failed",
                    email_handover_at=None,
                    emailed_at=None,
                    email_error=str(error),
                )
            )
            report.failed += 1
        else:  # refused for now, or the server is down: nothing went, try again today
            session.execute(update(Notification).where(ours).values(**back, email_error=str(error)))
            session.execute(delete(Digest).where(Digest.id == claim.id))
            report.retrying += 1


# --- in the background --------------------------------------------------------------------------


class _Background:
    """One daemon thread per process mailing notifications after the commits that made them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wanted = threading.Event()
        self.waiting: dict[int, Crm] = {}
        self.thread: threading.Thread | None = None

    def wake(self, crm: Crm) -> None:
        with self.lock:
            self.waiting[id(crm)] = crm
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self.run, name="collaborative-mail", daemon=True
                )
                self.thread.start()
        self.wanted.set()

    def run(self) -> None:
        while True:
            self.wanted.wait()
            self.wanted.clear()
            with self.lock:
                crms, self.waiting = list(self.waiting.values()), {}
            for crm in crms:
                try:
                    report = deliver_pending(crm)
                except Exception:
                    log.exception("mailing notifications in the background failed")
                    continue
                if report.stopped:
                    log.warning("notifications not mailed yet: %s", report.stopped)


_BACKGROUND = _Background()


def wake(crm: Crm) -> None:
    """After a commit that created notifications to mail at once: let the background thread
    mail them, when ``send_in_background`` is on and an SMTP server is set (else cron does)."""
    try:
        enabled = bool(settings(crm)["send_in_background"]) and bool(crm.settings.smtp_url)
    except CrmError:
        log.exception("collaborative settings are invalid; not mailing in the background")
        return
    if enabled:
        _BACKGROUND.wake(crm)
