"""Managing users and their roles: used by the CLI, the API and the admin UI alike."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import auth, normalize
from core.db import utcnow
from core.errors import NotFoundError
from core.models import Role, Team, User, UserRole

LANGUAGES = ("en", "vi", "fa")


def normalise_email(email: str) -> str:
    """Lower-case, trimmed e-mail; ``ValueError`` when it is not an address, by the rule of
    customers' addresses (:func:`core.normalize.normalise_email`): mail must reach it."""
    value = email.strip().lower()
    normalize.normalise_email(value)  # raises IdentityError (a ValueError) saying what is wrong
    return value


def get_user(session: Session, email: str) -> User:
    """The user with this e-mail, else ``NotFoundError``."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFoundError(f"no user with e-mail {email!r}")
    return user


def _check_roles(session: Session, roles: Iterable[str]) -> list[str]:
    roles = list(dict.fromkeys(roles))
    known = set(session.scalars(select(Role.name)))
    unknown = [r for r in roles if r not in known]
    if unknown:
        raise ValueError(
            f"unknown role(s) {', '.join(unknown)}; known roles: {', '.join(sorted(known))}"
        )
    return roles


def create_user(
    session: Session,
    email: str,
    name: str,
    password: str,
    roles: Iterable[str] = ("sales",),
    language: str = "en",
    initial_password: bool = False,
) -> User:
    """Create an active user; ``ValueError`` for a bad e-mail, weak password or unknown role."""
    email = normalise_email(email)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise ValueError(f"a user with e-mail {email} already exists")
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
    auth.check_password_strength(password)
    role_names = _check_roles(session, roles)
    user = User(
        email=email,
        name=name.strip() or email,
        password_hash=auth.hash_password(password),
        is_active=True,
        language=language,
        initial_password=initial_password,
        session_epoch=0,
    )
    user.roles = [UserRole(role=r) for r in role_names]
    session.add(user)
    session.flush()
    return user


def set_roles(session: Session, user: User, roles: Iterable[str]) -> None:
    """Replace ``user``'s roles."""
    from core import audit

    role_names = _check_roles(session, roles)
    before = user.role_names
    user.roles = [UserRole(role=r) for r in role_names]
    session.flush()
    audit.record(
        session,
        "update",
        "user",
        user.id,
        before={"roles": before},
        after={"roles": sorted(role_names)},
    )


def set_password(session: Session, user: User, password: str) -> None:
    """Change ``user``'s password: their sessions end and their API tokens are revoked (who
    knew the old password may have taken a token with it)."""
    auth.check_password_strength(password)
    user.password_hash = auth.hash_password(password)
    user.initial_password = False
    user.password_changed_at = utcnow()
    user.session_epoch += 1
    auth.revoke_tokens(session, user)


def deactivate(session: Session, user: User) -> None:
    """Deactivate ``user``: sessions end and API tokens are revoked."""
    user.is_active = False
    user.session_epoch += 1
    auth.revoke_tokens(session, user)


def add_team(session: Session, name: str, label: str = "") -> Team:
    """Create the team ``name`` (a short lower-case key) shown as ``label``."""
    from core import audit

    key = name.strip().lower()
    if not key or not key.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"team name {name!r}: use letters, digits, - and _")
    if session.scalar(select(Team).where(Team.name == key)) is not None:
        raise ValueError(f"team {key!r} exists already")
    team = Team(name=key, label=label.strip() or key)
    session.add(team)
    session.flush()
    audit.record(session, "create", "team", team.id, after={"name": key, "label": team.label})
    return team


def get_team(session: Session, name: str) -> Team:
    """The team called ``name``; ``ValueError`` naming the known teams otherwise."""
    team = session.scalar(select(Team).where(Team.name == name.strip().lower()))
    if team is None:
        known = ", ".join(session.scalars(select(Team.name).order_by(Team.name))) or "none yet"
        raise ValueError(f"no team {name!r} (teams: {known})")
    return team


def set_team(session: Session, user: User, team: Team | None) -> None:
    """Put ``user`` in ``team`` (``None``: in no team)."""
    user.team_id = team.id if team is not None else None
    session.flush()


def set_role_scope(session: Session, role: str, scope: str) -> None:
    """Set which records holders of ``role`` see: ``own``, ``team`` or ``all``."""
    from core import audit
    from core.permissions import SCOPES

    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    row = session.get(Role, role)
    if row is None:
        raise ValueError(f"no role {role!r}")
    before = row.scope
    row.scope = scope
    audit.record(session, "update", "role", None, before={role: before}, after={role: scope})
