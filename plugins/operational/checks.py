"""Pre-deployment checklist items of the operational module.

Automatic checks return ``None`` when fine, or what is wrong; items without a check are
attestations a person confirms with a note (``crm check --ack`` or the admin checklist page).
"""

from __future__ import annotations

import smtplib
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy import func, select

from core.checks import CheckItem

if TYPE_CHECKING:
    from core.runtime import Crm

SMTP_TIMEOUT_SECONDS = 5


def _smtp(crm: Crm) -> str | None:
    url = crm.settings.smtp_url
    if not url:
        return "CRM_SMTP_URL is not set: mailings and reminders cannot be sent"
    parts = urlsplit(url)
    port = parts.port or (465 if parts.scheme == "smtps" else 25)
    client = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    try:
        with client(parts.hostname, port, timeout=SMTP_TIMEOUT_SECONDS) as server:
            server.noop()
    except (OSError, smtplib.SMTPException) as exc:
        return f"cannot reach the SMTP server {parts.hostname}:{port}: {exc}"
    return None


def _reply_token(crm: Crm) -> str | None:
    from core.db import utcnow
    from core.models import ApiToken, RolePermission, User, UserRole

    query = (
        select(func.count())
        .select_from(ApiToken)
        .join(User, User.id == ApiToken.user_id)
        .join(UserRole, UserRole.user_id == User.id)
        .join(RolePermission, RolePermission.role == UserRole.role)
        .where(
            RolePermission.permission == "operational.reply:create",
            User.is_active,
            ApiToken.revoked_at.is_(None),
            (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > utcnow()),
        )
    )
    with crm.db.session() as session:
        if not session.scalar(query):
            return (
                "no active API token can post inbound replies: give the mail gateway a user "
                "whose role holds operational.reply:create and a token"
            )
    return None


def _count(model_name: str, message: str):
    def check(crm: Crm) -> str | None:
        from plugins.operational import models

        model = getattr(models, model_name)
        with crm.db.session() as session:
            return None if session.scalar(select(func.count()).select_from(model)) else message

    return check


def items() -> list[CheckItem]:
    """The operational module's checklist."""
    return [
        CheckItem(
            "operational.E101",
            "error",
            "technical",
            "The SMTP server is configured and reachable",
            "set CRM_SMTP_URL, e.g. smtp+starttls://user:pass@mail.example.vn:587",
            _smtp,
            deploy=True,
        ),
        CheckItem(
            "operational.W102",
            "warning",
            "technical",
            "The inbound reply endpoint has a token for the mail gateway",
            "crm users add gateway@... --role <a role with operational.reply:create>, then "
            "crm users token create --user gateway@... --name mail-gateway",
            _reply_token,
        ),
        CheckItem(
            "operational.W103",
            "warning",
            "data",
            "Products are imported",
            "crm products import products.csv",
            _count("Product", "no products yet: orders cannot name what was sold"),
        ),
        CheckItem(
            "operational.E104",
            "error",
            "data",
            "At least one pipeline has stages",
            "enable the module again to restore the default stages",
            _count("Stage", "no pipeline stages"),
        ),
        CheckItem(
            "operational.W105",
            "warning",
            "data",
            "SLA policies are defined",
            "set response and resolution targets per priority",
            _count("SlaPolicy", "no SLA policy: tickets get no due times"),
        ),
        CheckItem(
            "operational.W106",
            "warning",
            "process",
            "Lost reasons are defined",
            "agree on the short list of reasons deals are lost",
            _count("LostReason", "no lost reasons: lost deals cannot say why"),
        ),
        CheckItem(
            "operational.W110",
            "warning",
            "people",
            "Sales staff are trained on the pipeline stages and when to move a deal",
            "train them, then attest with a note of who and when",
        ),
        CheckItem(
            "operational.W111",
            "warning",
            "people",
            "Service staff are trained on ticket handling, priorities and SLA",
            "train them, then attest with a note of who and when",
        ),
        CheckItem(
            "operational.W112",
            "warning",
            "process",
            "A named person owns each team's pipeline",
            "write down who owns which pipeline, then attest",
        ),
    ]
