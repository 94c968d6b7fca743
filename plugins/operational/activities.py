"""Scheduled activities: calls, meetings, e-mails and to-dos with a due time and a reminder.

"My agenda" lists a user's open activities by due time; overdue ones are open and past due.
Completing an activity logs the interaction on the customer's timeline, so what was done is
recorded once, where everyone looks.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import utcnow
from core.models import User
from plugins.operational import interactions
from plugins.operational.models import ACTIVITY_KINDS, Activity

#: The interaction kind and channel a completed activity is logged as.
LOGGED_AS = {
    "call": ("call", "phone"),
    "meeting": ("meeting", "in_person"),
    "email": ("email", "email"),
    "todo": ("note", "in_person"),
}


class ActivityError(ValueError):
    """Invalid activity input; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def schedule(session: Session, values: dict[str, Any]) -> Activity:
    """Schedule an activity for a user."""
    if values.get("kind") not in ACTIVITY_KINDS:
        raise ActivityError("kind", f"kind must be one of {', '.join(ACTIVITY_KINDS)}")
    remind_at = values.get("remind_at")
    if remind_at is not None and remind_at > values["due_at"]:
        raise ActivityError("remind_at", "the reminder must come before the due time")
    user_id = values.get("user_id")
    if user_id is not None:
        user = session.get(User, user_id)
        if user is None or not user.is_active:
            raise ActivityError("user_id", f"no active user {user_id}")
    activity = Activity(
        kind=values["kind"],
        subject=values["subject"],
        note=values.get("note"),
        customer_id=values.get("customer_id"),
        opportunity_id=values.get("opportunity_id"),
        user_id=values.get("user_id"),
        due_at=values["due_at"],
        remind_at=remind_at,
    )
    session.add(activity)
    session.flush()
    return activity


def complete(
    session: Session,
    activity: Activity,
    outcome: str | None = None,
    when: dt.datetime | None = None,
) -> Activity:
    """Mark the activity done and log it as an interaction on the customer's timeline."""
    if activity.done_at is not None:
        raise ActivityError("done_at", "this activity is already done")
    when = when or utcnow()
    activity.done_at = when
    if activity.customer_id is not None:
        kind, channel = LOGGED_AS[activity.kind]
        logged = interactions.log(
            session,
            activity.customer_id,
            kind,
            channel,
            activity.subject,
            body="\n\n".join(p for p in (activity.note, outcome) if p) or None,
            user_id=activity.user_id,
            occurred_at=when,
            source="activity",
            opportunity_id=activity.opportunity_id,
        )
        activity.interaction_id = logged.id
    session.flush()
    return activity


def agenda(session: Session, user_id: int, until: dt.datetime | None = None) -> list[Activity]:
    """The user's open activities by due time (up to ``until`` when given)."""
    query = select(Activity).where(Activity.user_id == user_id, Activity.done_at.is_(None))
    if until is not None:
        query = query.where(Activity.due_at <= until)
    return list(session.scalars(query.order_by(Activity.due_at, Activity.id)))


def overdue(session: Session, now: dt.datetime, user_id: int | None = None) -> list[Activity]:
    """Open activities past their due time (of one user when given)."""
    query = select(Activity).where(Activity.done_at.is_(None), Activity.due_at < now)
    if user_id is not None:
        query = query.where(Activity.user_id == user_id)
    return list(session.scalars(query.order_by(Activity.due_at, Activity.id)))


def due_reminders(session: Session, now: dt.datetime) -> list[Activity]:
    """Open activities whose reminder time has come and that were not reminded yet."""
    query = select(Activity).where(
        Activity.done_at.is_(None),
        Activity.remind_at.is_not(None),
        Activity.remind_at <= now,
        Activity.reminded_at.is_(None),
    )
    return list(session.scalars(query.order_by(Activity.remind_at, Activity.id)))
