"""Pre-deployment checklist items of the collaborative module.

Automatic checks return ``None`` when fine, or what is wrong; the item without a check is an
attestation a person confirms with a note (``crm check --ack`` or the admin checklist page).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from core.checks import CheckItem

if TYPE_CHECKING:
    from core.runtime import Crm

#: A daily digest run older than this means the schedule is missing or broken.
DIGEST_MAX_AGE = dt.timedelta(hours=26)
DEFAULT_MAIL_FROM = "crm@localhost"
SHOWN = 5


def _users_in_teams(crm: Crm) -> str | None:
    from core.models import User
    from plugins.collaborative.models import Member

    members = select(Member.user_id)
    query = (
        select(User.email)
        .where(User.is_active, User.team_id.is_(None), User.id.not_in(members))
        .order_by(User.email)
    )
    with crm.db.session() as session:
        missing = list(session.scalars(query))
    if not missing:
        return None
    shown = ", ".join(missing[:SHOWN]) + (
        f" and {len(missing) - SHOWN} more" if len(missing) > SHOWN else ""
    )
    return f"{len(missing)} active user(s) in no team: {shown}"


def _leads(crm: Crm) -> str | None:
    from core.models import Team, User
    from plugins.collaborative.models import TeamProfile

    led = (
        select(TeamProfile.team_id).join(User, User.id == TeamProfile.lead_id).where(User.is_active)
    )
    with crm.db.session() as session:
        missing = list(
            session.scalars(select(Team.name).where(Team.id.not_in(led)).order_by(Team.name))
        )
    if not missing:
        return None
    return f"team(s) without an active lead: {', '.join(missing)}"


def _mail(crm: Crm) -> str | None:
    if not crm.settings.smtp_url:
        return "CRM_SMTP_URL is not set: notifications cannot be e-mailed"
    if (crm.settings.mail_from or "").strip().lower() in ("", DEFAULT_MAIL_FROM):
        return f"CRM_MAIL_FROM is {DEFAULT_MAIL_FROM}: set the address notifications come from"
    return None


def _digest(crm: Crm) -> str | None:
    from core.db import utcnow
    from plugins.collaborative.delivery import last_digest_run

    with crm.db.session() as session:
        last = last_digest_run(session)
    if last is None:
        return "daily digests have never run: schedule `crm collaborative digest` (cron, hourly)"
    if utcnow() - last > DIGEST_MAX_AGE:
        return f"daily digests last ran at {last.isoformat()}: is the cron job still scheduled?"
    return None


def _account_teams(crm: Crm) -> str | None:
    from core.customers.models import Customer
    from plugins.collaborative.models import AccountTeam

    query = (
        select(func.count())
        .select_from(Customer)
        .where(
            Customer.archived.is_(False),
            Customer.id.not_in(select(AccountTeam.customer_id)),
        )
    )
    with crm.db.session() as session:
        missing = session.scalar(query) or 0
    if not missing:
        return None
    return f"{missing} customer(s) without an account team"


def items() -> list[CheckItem]:
    """The collaborative module's checklist."""
    return [
        CheckItem(
            "collaborative.W201",
            "warning",
            "people",
            "Every active user belongs to a team",
            "crm users set-team EMAIL TEAM, or crm collaborative member-add TEAM EMAIL",
            _users_in_teams,
        ),
        CheckItem(
            "collaborative.W202",
            "warning",
            "people",
            "Each team has a lead (overdue hand-offs are escalated to them)",
            "crm collaborative team-set TEAM --lead EMAIL",
            _leads,
        ),
        CheckItem(
            "collaborative.W203",
            "warning",
            "people",
            "Cross-department data sharing is agreed by the department heads",
            "agree who sees which customers' notes and hand-offs, then attest with a note",
        ),
        CheckItem(
            "collaborative.W204",
            "warning",
            "technical",
            "Notification e-mail is configured",
            "set CRM_SMTP_URL and CRM_MAIL_FROM (e.g. crm@example.vn)",
            _mail,
        ),
        CheckItem(
            "collaborative.W205",
            "warning",
            "technical",
            "The daily digest is scheduled",
            "run `crm collaborative digest` from cron every hour",
            _digest,
        ),
        CheckItem(
            "collaborative.W206",
            "warning",
            "data",
            "Every customer has an account team",
            "crm collaborative account-team CUSTOMER_ID TEAM (new customers get their "
            "owner's team)",
            _account_teams,
        ),
    ]
