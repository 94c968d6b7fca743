"""Who is in which team: the core's primary team of each user plus this module's memberships."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select, union

from core.models import User
from plugins.collaborative.models import Member, TeamProfile

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def teams_of(user_id: Any) -> Any:
    """A selectable of the ids of the teams ``user_id`` belongs to (a value or a column)."""
    return union(
        select(Member.team_id).where(Member.user_id == user_id),
        select(User.team_id).where(User.id == user_id, User.team_id.is_not(None)),
    )


def team_ids(session: Session, user_id: int) -> list[int]:
    """The teams ``user_id`` belongs to."""
    return sorted(session.scalars(select(teams_of(user_id).subquery().c[0])))


def member_ids(session: Session, team_id: int) -> list[int]:
    """Active users in team ``team_id`` (members and users whose primary team it is)."""
    members = select(Member.user_id).where(Member.team_id == team_id)
    query = select(User.id).where(User.is_active, (User.team_id == team_id) | User.id.in_(members))
    return sorted(session.scalars(query))


def lead_of(session: Session, team_id: int) -> int | None:
    """The team lead's user id, if the team has an active one."""
    return session.scalar(
        select(TeamProfile.lead_id)
        .join(User, User.id == TeamProfile.lead_id)
        .where(TeamProfile.team_id == team_id, User.is_active)
    )
