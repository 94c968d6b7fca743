"""Followers: users who hear about comments and changes on a record."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from plugins.collaborative.models import Follower

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def follow(session: Session, record_type: str, record_id: int, user_id: int, reason: str) -> bool:
    """Make ``user_id`` follow the record; ``False`` when they already did."""
    found = session.scalar(
        select(Follower.id).where(
            Follower.record_type == record_type,
            Follower.record_id == record_id,
            Follower.user_id == user_id,
        )
    )
    if found is not None:
        return False
    try:
        with session.begin_nested():  # another request may add the same follower meanwhile
            session.add(
                Follower(
                    record_type=record_type, record_id=record_id, user_id=user_id, reason=reason
                )
            )
    except IntegrityError:
        return False
    return True


def unfollow(session: Session, record_type: str, record_id: int, user_id: int) -> bool:
    """Stop ``user_id`` following the record; ``False`` when they did not."""
    result = session.execute(
        delete(Follower).where(
            Follower.record_type == record_type,
            Follower.record_id == record_id,
            Follower.user_id == user_id,
        )
    )
    return bool(result.rowcount)


def follower_ids(session: Session, record_type: str, record_id: int) -> list[int]:
    """Users following the record."""
    return sorted(
        session.scalars(
            select(Follower.user_id).where(
                Follower.record_type == record_type, Follower.record_id == record_id
            )
        )
    )
