"""A user's inbox: their notifications, newest first, what is unread, and how they want to be told.

Every read goes through :func:`visible`: a notification about a record the user can no longer
see (the customer moved to another team) is hidden from the list, the count and every action,
exactly as if it did not exist. Notifications without a record stay visible.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from core.db import utcnow
from core.errors import Invalid, NotFoundError
from core.models import User
from plugins.collaborative import records as collaborative_records
from plugins.collaborative.models import EMAIL_CHOICES, Notification, Preference
from plugins.collaborative.notify import DEFAULT_EMAIL, DEFAULT_IN_APP

if TYPE_CHECKING:
    from core.auth import SignedIn
    from core.runtime import Crm

MAX_LIMIT = 200
#: E-mail statuses of notifications still waiting to be mailed, per e-mail preference.
_WAITING = {"immediate": "pending", "digest": "digest", "off": "none"}


@dataclass(frozen=True)
class Item:
    """One notification as the inbox shows it."""

    id: int
    kind: str
    label: str
    title: str
    body: str
    url: str | None
    record_type: str | None
    record_id: int | None
    customer_id: int | None
    actor_id: int | None
    actor_name: str | None
    created_at: dt.datetime
    read_at: dt.datetime | None

    @property
    def unread(self) -> bool:
        """Whether the user has not read it yet."""
        return self.read_at is None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the API."""
        return {**self.__dict__, "unread": self.unread}


def visible(crm: Crm, user: SignedIn) -> ColumnElement[bool]:
    """The user's own notifications whose record (if any) they may still see."""
    mine = Notification.user_id == user.id
    condition = collaborative_records.visible_condition(
        crm, user, Notification.record_type, Notification.record_id
    )
    if condition is None:
        return mine
    return mine & or_(Notification.record_type.is_(None), condition)


def _item(row: Any) -> Item:
    notification, actor_name = row
    return Item(
        id=notification.id,
        kind=notification.kind,
        label=notification.label,
        title=notification.title,
        body=notification.body,
        url=notification.url,
        record_type=notification.record_type,
        record_id=notification.record_id,
        customer_id=notification.customer_id,
        actor_id=notification.actor_id,
        actor_name=actor_name,
        created_at=notification.created_at,
        read_at=notification.read_at,
    )


def _query(crm: Crm, user: SignedIn) -> Any:
    return (
        select(Notification, User.name)
        .outerjoin(User, User.id == Notification.actor_id)
        .where(visible(crm, user))
        .execution_options(populate_existing=True)  # fresh after a bulk UPDATE
    )


def list_items(
    crm: Crm,
    session: Session,
    user: SignedIn,
    *,
    unread_only: bool = False,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Item]:
    """The user's notifications, newest first; ``before_id`` pages on (ids below it)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid({"limit": f"give a number from 1 to {MAX_LIMIT}"})
    query = _query(crm, user)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    if before_id is not None:
        query = query.where(Notification.id < before_id)
    rows = session.execute(query.order_by(Notification.id.desc()).limit(limit))
    return [_item(row) for row in rows]


def get(crm: Crm, session: Session, user: SignedIn, notification_id: int) -> Item:
    """One of the user's visible notifications; ``NotFoundError`` for anything else."""
    row = session.execute(_query(crm, user).where(Notification.id == notification_id)).first()
    if row is None:
        raise NotFoundError(f"notification {notification_id} not found")
    return _item(row)


def unread_count(crm: Crm, session: Session, user: SignedIn) -> int:
    """How many of the user's visible notifications are unread (the navigation badge)."""
    return session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(visible(crm, user), Notification.read_at.is_(None))
    )


def mark_read(crm: Crm, session: Session, user: SignedIn, ids: Any) -> int:
    """Mark the user's own visible notifications among ``ids`` read; return how many changed.

    Other users' ids are ignored, never touched.
    """
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return 0
    return session.execute(
        update(Notification)
        .where(visible(crm, user), Notification.id.in_(wanted), Notification.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount


def mark_all_read(crm: Crm, session: Session, user: SignedIn) -> int:
    """Mark every visible unread notification of the user read; return how many changed."""
    return session.execute(
        update(Notification)
        .where(visible(crm, user), Notification.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount


def get_preferences(session: Session, user_id: int) -> dict[str, Any]:
    """``{"in_app": bool, "email": "off" | "immediate" | "digest"}``, defaults filled in."""
    row = session.get(Preference, user_id)
    if row is None:
        return {"in_app": DEFAULT_IN_APP, "email": DEFAULT_EMAIL}
    return {"in_app": row.in_app, "email": row.email}


def set_preferences(
    session: Session, user_id: int, *, in_app: Any = None, email: Any = None
) -> dict[str, Any]:
    """Change the user's preferences (``None`` keeps a value); ``Invalid`` names a bad field.

    Notifications still waiting to be mailed follow a new e-mail choice: at once, in the next
    digest, or not at all.
    """
    errors = {}
    if in_app is not None and not isinstance(in_app, bool):
        errors["in_app"] = "give true or false"
    if email is not None and email not in EMAIL_CHOICES:
        errors["email"] = f"give one of {', '.join(EMAIL_CHOICES)}"
    if errors:
        raise Invalid(errors)
    current = get_preferences(session, user_id)
    wanted = {
        "in_app": current["in_app"] if in_app is None else in_app,
        "email": current["email"] if email is None else email,
    }
    row = session.get(Preference, user_id)
    if row is None:
        session.add(Preference(user_id=user_id, **wanted))
    else:
        row.in_app, row.email = wanted["in_app"], wanted["email"]
    if wanted["email"] != current["email"]:
        session.execute(
            update(Notification)
            .where(
                Notification.user_id == user_id,
                Notification.email_status.in_(("pending", "digest")),
                Notification.email_claimed_at.is_(None),
            )
            .values(email_status=_WAITING[wanted["email"]])
            .execution_options(synchronize_session=False)
        )
    session.flush()
    return wanted
