"""Creating notifications: one per user and subject, only for people allowed to see it.

:func:`notify` is the single way this module tells someone something. It leaves out the person
who acted, deactivated users and anyone who may not see the record; applies each user's
preferences (inbox, e-mail at once, daily digest, never); and stores one row per user and
``key``, so a user reached twice (mentioned by name and through a team) is told once. E-mail
goes out later, outside the request (:mod:`plugins.collaborative.delivery`): when a transaction
that created notifications to mail at once commits, the delivery module's background sender is
woken (if the settings allow it); nothing is mailed when the transaction rolls back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, SessionTransaction

from core import auth, records
from core.db import utcnow
from plugins.collaborative.models import Notification, Preference

if TYPE_CHECKING:
    from core.runtime import Crm

#: What a user gets without having chosen: the inbox, and e-mail at once.
DEFAULT_IN_APP = True
DEFAULT_EMAIL = "immediate"
#: Key of ``session.info`` holding the ``Crm`` whose e-mail waits for the commit.
MAIL_WAITING = "collaborative_mail_waiting"


@dataclass(frozen=True)
class Subject:
    """What a notification is about: ``key`` identifies it per user (``message:42``)."""

    key: str
    kind: str
    label: str
    title: str = ""
    body: str = ""
    url: str | None = None
    record_type: str | None = None
    record_id: int | None = None
    customer_id: int | None = None
    actor_id: int | None = None


def preferences(session: Session, user_ids: Iterable[int]) -> dict[int, tuple[bool, str]]:
    """``(in_app, email)`` of each user, defaults filled in."""
    ids = list(user_ids)
    found = {
        row.user_id: (row.in_app, row.email)
        for row in session.scalars(select(Preference).where(Preference.user_id.in_(ids)))
    }
    return {uid: found.get(uid, (DEFAULT_IN_APP, DEFAULT_EMAIL)) for uid in ids}


def may_see(crm: Crm, session: Session, user_id: int, subject: Subject) -> bool:
    """Whether ``user_id`` is active and may see what ``subject`` is about."""
    user = auth.signed_in_user(session, user_id)
    if user is None:
        return False
    if "collaborative.notification:read" not in user.permissions:
        return False
    if subject.record_type is None or subject.record_id is None:
        return True
    kind = records.record_types(crm).get(subject.record_type)
    if kind is None:
        return False
    return records.can_see(crm, session, user, kind, subject.record_id)


def notify(crm: Crm, session: Session, user_ids: Iterable[int], subject: Subject) -> list[int]:
    """Tell ``user_ids`` about ``subject``; return the users actually notified now.

    Runs inside the caller's transaction: nothing is told if it rolls back.
    """
    wanted = sorted({uid for uid in user_ids if uid is not None and uid != subject.actor_id})
    if not wanted:
        return []
    already = set(
        session.scalars(
            select(Notification.user_id).where(
                Notification.user_id.in_(wanted), Notification.key == subject.key
            )
        )
    )
    told: list[int] = []
    choices = preferences(session, wanted)
    now = utcnow()
    for user_id in wanted:
        if user_id in already or not may_see(crm, session, user_id, subject):
            continue
        in_app, email = choices[user_id]
        status = {"immediate": "pending", "digest": "digest"}.get(email, "none")
        row = Notification(
            user_id=user_id,
            key=subject.key,
            kind=subject.kind,
            label=subject.label,
            title=subject.title[:300],
            body=subject.body,
            url=subject.url,
            record_type=subject.record_type,
            record_id=subject.record_id,
            customer_id=subject.customer_id,
            actor_id=subject.actor_id,
            created_at=now,
            # "in the inbox" off: the notification arrives read, so it raises no badge
            read_at=None if in_app else now,
            email_status=status,
        )
        try:
            with session.begin_nested():  # a concurrent notify of the same key and user
                session.add(row)
        except IntegrityError:
            continue
        told.append(user_id)
        if status == "pending":
            _mail_waiting(crm, session)
    return told


def _mail_after_commit(session: Session) -> None:
    crm = session.info.pop(MAIL_WAITING, None)
    if crm is not None:
        from plugins.collaborative import delivery

        delivery.wake(crm)


def _forget_mail(session: Session, transaction: SessionTransaction) -> None:
    # Only the outermost transaction: a savepoint rolled back (a concurrent duplicate above)
    # leaves the other notifications of the transaction waiting.
    if transaction.parent is None:
        session.info.pop(MAIL_WAITING, None)


def _mail_waiting(crm: Crm, session: Session) -> None:
    """Wake the delivery module once ``session`` commits (nothing happens on rollback).

    The listeners go on this session only: adding class-wide ones on first import could happen
    while another session's commit events are being dispatched (``record_event`` hooks).
    """
    if not event.contains(session, "after_commit", _mail_after_commit):
        event.listen(session, "after_commit", _mail_after_commit)
        event.listen(session, "after_transaction_end", _forget_mail)
    session.info[MAIL_WAITING] = crm
