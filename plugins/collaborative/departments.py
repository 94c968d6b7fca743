"""Departments: what kind each team is, its lead, its members and their role there; customers'
account teams.

A team's members are the users whose primary team it is (the core's ``User.team_id``) and the
users added here as :class:`Member` rows; a ``Member`` row also gives a primary member their
role in the team. The account team of a customer is the team responsible for it: the record
rules of :mod:`plugins.collaborative.rules` let its members see the customer.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.customers.models import Customer
from core.errors import Invalid, NotFoundError
from core.models import Team, User
from plugins.collaborative.config import settings
from plugins.collaborative.models import AccountTeam, Member, TeamProfile

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.runtime import Crm

log = logging.getLogger(__name__)

MAX_ROLE_LENGTH = 60
MAX_DESCRIPTION_LENGTH = 2_000
DEFAULT_ROLE = "member"
LEAD_ROLE = "lead"


class _Keep:
    """Marks an argument left out: the stored value stays."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()


def require_team(session: Session, team_id: int, field: str | None = None) -> Team:
    """Team ``team_id``; ``Invalid`` naming ``field`` (or ``NotFoundError`` without one)."""
    team = session.get(Team, team_id) if isinstance(team_id, int) else None
    if team is None:
        if field:
            raise Invalid({field: f"no team {team_id}"})
        raise NotFoundError(f"team {team_id} not found")
    return team


def _active_user(session: Session, user_id: Any, field: str) -> User:
    user = session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or not user.is_active:
        raise Invalid({field: f"no active user {user_id}"})
    return user


def profile_of(session: Session, team_id: int) -> TeamProfile:
    """The team's profile, created (kind ``other``, no lead) when it has none yet."""
    profile = session.get(TeamProfile, team_id)
    if profile is None:
        profile = TeamProfile(team_id=team_id, kind="other", description="")
        session.add(profile)
        session.flush()
    return profile


def is_member(session: Session, team_id: int, user_id: int) -> bool:
    """Whether ``user_id`` belongs to the team (primary team or a membership)."""
    if session.get(Member, (team_id, user_id)) is not None:
        return True
    return session.scalar(select(User.team_id).where(User.id == user_id)) == team_id


def set_profile(
    crm: Crm,
    session: Session,
    team_id: int,
    kind: Any = KEEP,
    lead_id: Any = KEEP,
    description: Any = KEEP,
) -> TeamProfile:
    """Set the team's kind, lead (``None``: no lead) and description; arguments left out keep
    their value. The lead must be an active user and becomes a member of the team."""
    require_team(session, team_id)
    errors: dict[str, str] = {}
    kinds = settings(crm)["team_kinds"]
    if kind is not KEEP and kind not in kinds:
        errors["kind"] = f"unknown kind {kind!r}; one of: {', '.join(kinds)}"
    if description is not KEEP and len(description or "") > MAX_DESCRIPTION_LENGTH:
        errors["description"] = f"at most {MAX_DESCRIPTION_LENGTH} characters"
    if errors:
        raise Invalid(errors)
    if lead_id not in (KEEP, None):
        _active_user(session, lead_id, "lead_id")
    profile = profile_of(session, team_id)
    if kind is not KEEP:
        profile.kind = kind
    if description is not KEEP:
        profile.description = (description or "").strip()
    if lead_id is not KEEP:
        profile.lead_id = lead_id
        if lead_id is not None and not is_member(session, team_id, lead_id):
            session.add(Member(team_id=team_id, user_id=lead_id, role=LEAD_ROLE))
    session.flush()
    return profile


def add_member(session: Session, team_id: int, user_id: int, role: str = DEFAULT_ROLE) -> Member:
    """Put ``user_id`` in the team with ``role`` (or change their role there)."""
    require_team(session, team_id)
    role = (role or "").strip()
    if not role or len(role) > MAX_ROLE_LENGTH:
        raise Invalid({"role": f"give a role of 1 to {MAX_ROLE_LENGTH} characters"})
    _active_user(session, user_id, "user_id")
    member = session.get(Member, (team_id, user_id))
    if member is None:
        member = Member(team_id=team_id, user_id=user_id, role=role)
        session.add(member)
    else:
        member.role = role
    session.flush()
    return member


def remove_member(session: Session, team_id: int, user_id: int) -> bool:
    """Take ``user_id`` out of the team; ``False`` when they were not a member.

    A user whose primary team it is stays in it (that is the user's own setting, changed with
    ``crm users``); their role row goes. A lead who leaves is no longer the lead.
    """
    require_team(session, team_id)
    member = session.get(Member, (team_id, user_id))
    primary = session.scalar(select(User.team_id).where(User.id == user_id)) == team_id
    if primary:
        raise Invalid(
            {"user_id": "this is the user's primary team; change it with `crm users` first"}
        )
    if member is None:
        return False
    session.delete(member)
    profile = session.get(TeamProfile, team_id)
    if profile is not None and profile.lead_id == user_id:
        profile.lead_id = None
    session.flush()
    return True


def members_of(session: Session, team_ids: list[int] | None = None) -> dict[int, list[dict]]:
    """Active members of each team (all teams, or ``team_ids``), by name, with their role."""
    roles = {
        (m.team_id, m.user_id): m.role
        for m in session.scalars(
            select(Member).where(Member.team_id.in_(team_ids)) if team_ids else select(Member)
        )
    }
    wanted = {uid for _, uid in roles}
    users = session.execute(
        select(User.id, User.name, User.email, User.team_id).where(
            User.is_active,
            User.team_id.is_not(None) | User.id.in_(wanted),
        )
    ).all()
    found: dict[int, list[dict]] = {}
    for uid, name, email, primary in users:
        teams = {t for t, u in roles if u == uid}
        if primary is not None:
            teams.add(primary)
        for team_id in teams:
            if team_ids and team_id not in team_ids:
                continue
            found.setdefault(team_id, []).append(
                {
                    "user_id": uid,
                    "name": name,
                    "email": email,
                    "role": roles.get((team_id, uid), DEFAULT_ROLE),
                    "primary": primary == team_id,
                }
            )
    for rows in found.values():
        rows.sort(key=lambda r: (r["name"].casefold(), r["user_id"]))
    return found


def list_teams(session: Session) -> list[dict[str, Any]]:
    """Every team with its kind, lead, description and members (with their team role)."""
    profiles = {p.team_id: p for p in session.scalars(select(TeamProfile))}
    names = dict(session.execute(select(User.id, User.name)).all())
    members = members_of(session)
    rows = []
    for team in session.scalars(select(Team).order_by(Team.label, Team.id)):
        profile = profiles.get(team.id)
        lead_id = profile.lead_id if profile else None
        rows.append(
            {
                "id": team.id,
                "name": team.name,
                "label": team.label,
                "kind": profile.kind if profile else "other",
                "lead_id": lead_id,
                "lead_name": names.get(lead_id) if lead_id else None,
                "description": profile.description if profile else "",
                "members": members.get(team.id, []),
            }
        )
    return rows


def team_labels(session: Session, team_ids: Any = None) -> dict[int, str]:
    """Labels of teams by id (all teams when ``team_ids`` is ``None``)."""
    query = select(Team.id, Team.label)
    if team_ids is not None:
        query = query.where(Team.id.in_(set(team_ids) - {None}))
    return dict(session.execute(query).all())


def account_team_of(session: Session, customer_id: int) -> int | None:
    """The id of the customer's account team, if it has one."""
    return session.scalar(select(AccountTeam.team_id).where(AccountTeam.customer_id == customer_id))


def set_account_team(
    session: Session, customer_id: int, team_id: int, by_user_id: int | None
) -> AccountTeam:
    """Make ``team_id`` the customer's account team (audited through the ORM)."""
    errors: dict[str, str] = {}
    if not isinstance(customer_id, int) or session.get(Customer, customer_id) is None:
        errors["customer_id"] = f"no customer {customer_id}"
    if not isinstance(team_id, int) or session.get(Team, team_id) is None:
        errors["team_id"] = f"no team {team_id}"
    if errors:
        raise Invalid(errors)
    from core.db import utcnow

    row = session.get(AccountTeam, customer_id)
    if row is None:
        row = AccountTeam(customer_id=customer_id, team_id=team_id, assigned_by=by_user_id)
        session.add(row)
    elif row.team_id != team_id:
        row.team_id = team_id
        row.assigned_by = by_user_id
        row.assigned_at = utcnow()
    session.flush()
    return row


def on_customer_created(crm: Crm, customer: dict[str, Any]) -> None:
    """After a customer is created: give it its owner's primary team as account team, unless
    it already has one. Runs after the creating transaction committed, in its own."""
    owner_id = customer.get("owner_id")
    if owner_id is None:
        return
    try:
        with crm.db.write() as session:
            team_id = session.scalar(
                select(User.team_id).where(User.id == owner_id, User.is_active)
            )
            if team_id is None or session.get(AccountTeam, customer["id"]) is not None:
                return
            session.add(AccountTeam(customer_id=customer["id"], team_id=team_id))
    except IntegrityError:
        # deleted meanwhile, or given an account team by a concurrent request: nothing to do
        log.info("customer %s: account team not set (changed meanwhile)", customer["id"])
