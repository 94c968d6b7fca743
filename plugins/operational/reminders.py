"""Activity reminders by e-mail: each one sent at most once, outside any web request.

``crm activities remind`` (from cron or the worker) claims every activity whose reminder time
has come with a conditional UPDATE, so two runs never remind twice, then mails its user.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from core.db import utcnow
from core.errors import CrmError
from plugins.operational.models import Activity

if TYPE_CHECKING:
    from core.runtime import Crm


@dataclass
class ReminderReport:
    """What a run did."""

    sent: int = 0
    failed: int = 0


def _message(crm: Crm, activity: Activity, to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = crm.settings.mail_from
    message["To"] = to
    message["Subject"] = f"Reminder: {activity.subject}"
    link = f"{crm.settings.public_url}/ui/activity/{activity.id}"
    message.set_content(f"{activity.subject}\nDue: {activity.due_at:%Y-%m-%d %H:%M} UTC\n{link}\n")
    return message


def send_due(crm: Crm, now: dt.datetime | None = None) -> ReminderReport:
    """Mail the users of activities whose reminder time has come; each reminder once."""
    from core.mail import DeliveryError, Mailer
    from core.models import User

    if not crm.settings.smtp_url:
        raise CrmError("CRM_SMTP_URL is not set: reminders cannot be sent")
    now = now or utcnow()
    report = ReminderReport()
    with crm.db.session() as session:
        due = session.execute(
            select(Activity.id, User.email)
            .join(User, User.id == Activity.user_id)
            .where(
                Activity.done_at.is_(None),
                Activity.remind_at.is_not(None),
                Activity.remind_at <= now,
                Activity.reminded_at.is_(None),
                User.is_active,
            )
            .order_by(Activity.remind_at)
        ).all()
    with Mailer(crm.settings.smtp_url) as mailer:
        for activity_id, email in due:
            with crm.db.write() as session:  # the claim: whoever sets reminded_at sends it
                claimed = session.execute(
                    update(Activity)
                    .where(Activity.id == activity_id, Activity.reminded_at.is_(None))
                    .values(reminded_at=now)
                    .execution_options(synchronize_session=False)
                ).rowcount
                activity = session.get(Activity, activity_id)
                message = _message(crm, activity, email)
            if not claimed:
                continue
            try:
                mailer.deliver(message, crm.settings.mail_from, email, lambda: True)
                report.sent += 1
            except DeliveryError:
                report.failed += 1  # a reminder is not worth a duplicate: it is not retried
    return report
