"""Passwords, API tokens and sign-in.

Passwords are hashed with Argon2 through pwdlib and rehashed on sign-in when the parameters
rise. API tokens are random, shown once, and stored as a SHA-256 hash with a short prefix to
recognise them by. Failed sign-ins are counted in the audit log, so throttling holds across
processes and servers: per account (guessing one person's password) and per address (one
password tried on many accounts).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from core import audit
from core.db import PreparedRead, connection_of, utcnow
from core.errors import AuthError
from core.models import ApiToken, AuditLog, User

TOKEN_PREFIX = "crm_"
MAX_FAILED_LOGINS = 5
#: Failed sign-ins from one address, whatever the accounts, before the address is throttled;
#: higher than per account, as the people of an office share one address.
MAX_FAILED_LOGINS_PER_IP = 20
FAILED_LOGIN_WINDOW = dt.timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 10


#: Argon2 computations at once in a process: each takes 64 MiB and the cores it is given, so a
#: burst of sign-ins, each checked on its own worker thread, would only pile up in memory.
_ARGON2_AT_ONCE = threading.BoundedSemaphore(os.cpu_count() or 1)


class ThrottledError(AuthError):
    """Too many failed sign-ins for this account, or from this address, recently."""


@functools.cache
def _hasher():
    from pwdlib import PasswordHash

    return PasswordHash.recommended()


def hash_password(password: str) -> str:
    """An Argon2 hash of ``password``."""
    with _ARGON2_AT_ONCE:
        return _hasher().hash(password)


def check_password_strength(password: str) -> None:
    """Raise ``ValueError`` when ``password`` is too weak to accept."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters long")
    if password.strip() == "" or len(set(password)) < 4:
        raise ValueError("password is too simple")


def verify_password(user: User, password: str) -> bool:
    """Whether ``password`` is ``user``'s current password."""
    with _ARGON2_AT_ONCE:
        return _hasher().verify(password, user.password_hash)


def generate_password() -> str:
    """A random password suitable to print once."""
    return secrets.token_urlsafe(15)


@dataclass(frozen=True)
class SignInCheck:
    """What checking a sign-in found, before anything is written (see :func:`check_sign_in`)."""

    email: str
    #: The user whose password matched (``None``: no user's did).
    user_id: int | None
    #: When that password was set: a change since the check voids the check.
    password_set_at: dt.datetime | None
    #: The password hashed again with today's parameters, when they rose.
    new_hash: str | None
    #: Why the attempt is refused unchecked, when it is.
    throttled: str | None


def _throttled(db: Session, email: str, ip: str | None) -> str | None:
    since = utcnow() - FAILED_LOGIN_WINDOW
    failed = (
        select(func.count())
        .select_from(AuditLog)
        .where(AuditLog.action == "login_failed", AuditLog.at >= since)
    )
    if db.scalar(failed.where(AuditLog.actor == email)) >= MAX_FAILED_LOGINS:
        return "too many failed sign-ins; try again in a few minutes"
    if ip and db.scalar(failed.where(AuditLog.ip == ip)) >= MAX_FAILED_LOGINS_PER_IP:
        return "too many failed sign-ins from your address; try again later"
    return None


def check_sign_in(db: Session, email: str, password: str, ip: str | None = None) -> SignInCheck:
    """Throttling and the password check of a sign-in, with reads only.

    Run it before the write transaction that records the attempt (:func:`record_sign_in`):
    Argon2 takes a tenth of a second on purpose, and on SQLite a write transaction holds the
    database's one write lock, so sign-ins checked inside it queued behind each other, and every
    other write behind them, until waits passed the busy timeout ("database is locked").
    """
    email = email.strip().lower()
    throttled = _throttled(db, email, ip)
    if throttled:
        return SignInCheck(email, None, None, None, throttled)
    user = db.scalar(select(User).where(User.email == email))
    if user is None:
        hash_password(password)  # spend the same time whether or not the user exists
        return SignInCheck(email, None, None, None, None)
    with _ARGON2_AT_ONCE:
        valid, new_hash = _hasher().verify_and_update(password, user.password_hash)
    if not valid:
        return SignInCheck(email, None, None, None, None)
    return SignInCheck(email, user.id, user.password_changed_at, new_hash, None)


def record_sign_in(session: Session, check: SignInCheck, ip: str | None = None) -> User:
    """Audit the attempt :func:`check_sign_in` checked; the active user it signs in, else
    ``AuthError``.

    The throttle is counted again in this transaction, so that attempts checked at the same
    time cannot pass the limit together; a password changed since the check does not count.
    """
    throttled = check.throttled or _throttled(session, check.email, ip)
    if throttled:
        raise ThrottledError(throttled)
    user = session.get(User, check.user_id) if check.user_id is not None else None
    if user is None or not user.is_active or user.password_changed_at != check.password_set_at:
        audit.record(
            session,
            "login_failed",
            "user",
            None,
            detail="wrong e-mail or password",
            actor=audit.Actor(label=check.email, ip=ip),
        )
        raise AuthError("wrong e-mail or password")
    if check.new_hash:
        user.password_hash = check.new_hash
    audit.record(session, "login", "user", user.id, actor=audit.Actor(check.email, user.id, ip))
    return user


def authenticate(session: Session, email: str, password: str, ip: str | None = None) -> User:
    """The active user with this e-mail and password, else ``AuthError``.

    Every attempt is audited; after ``MAX_FAILED_LOGINS`` failures for the account, or
    ``MAX_FAILED_LOGINS_PER_IP`` from the address ``ip``, within ``FAILED_LOGIN_WINDOW``, further
    attempts raise ``ThrottledError`` without checking the password. Both steps run in
    ``session``; a server checks first in a read session (:func:`check_sign_in`), then records
    in a write transaction (:func:`record_sign_in`).
    """
    return record_sign_in(session, check_sign_in(session, email, password, ip), ip)


@dataclass(frozen=True)
class NewToken:
    """A freshly created token: ``secret`` is shown once and never stored."""

    id: int
    name: str
    secret: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    session: Session, user: User, name: str, expires_at: dt.datetime | None = None
) -> NewToken:
    """Create an API token for ``user``."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name,
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        token_hash=_digest(secret),
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    audit.record(
        session,
        "create",
        "api_token",
        token.id,
        after={"user": user.email, "name": name, "prefix": token.prefix},
    )
    return NewToken(token.id, name, secret)


@dataclass(frozen=True)
class SignedIn:
    """The signed-in user as requests see it: identity, roles and permissions, read with two
    small queries and no ORM objects (the per-request path)."""

    id: int
    email: str
    name: str
    language: str
    roles: tuple[str, ...]
    permissions: frozenset[str]
    #: Which records the user sees: the widest scope of their roles (``shared`` ... ``all``).
    scope: str = "all"
    team_id: int | None = None


@functools.cache
def _statements() -> dict[str, Any]:
    """The per-request queries, built once: each joins the user's roles and permissions."""
    from sqlalchemy import bindparam

    from core.models import Role, RolePermission, UserRole

    grants = (
        select(
            User.id,
            User.email,
            User.name,
            User.language,
            User.is_active,
            User.session_epoch,
            UserRole.role,
            RolePermission.permission,
            Role.scope,
            User.team_id,
        )
        .outerjoin(UserRole, UserRole.user_id == User.id)
        .outerjoin(Role, Role.name == UserRole.role)
        .outerjoin(RolePermission, RolePermission.role == UserRole.role)
    )
    return {
        "token": PreparedRead(
            grants.add_columns(ApiToken.expires_at, ApiToken.revoked_at)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == bindparam("digest"))
        ),
        "session": PreparedRead(grants.where(User.id == bindparam("user_id"))),
    }


# Column positions in the rows of _statements().
(
    _ID,
    _EMAIL,
    _NAME,
    _LANGUAGE,
    _ACTIVE,
    _EPOCH,
    _ROLE,
    _PERMISSION,
    _SCOPE,
    _TEAM,
    _EXPIRES,
    _REVOKED,
) = range(12)
_SCOPE_WIDTH = {"shared": -1, "own": 0, "team": 1, "all": 2}


def _signed_in(rows: list[Any]) -> SignedIn:
    first = rows[0]
    return SignedIn(
        first[_ID],
        first[_EMAIL],
        first[_NAME],
        first[_LANGUAGE],
        tuple(sorted({r[_ROLE] for r in rows if r[_ROLE]})),
        frozenset(r[_PERMISSION] for r in rows if r[_PERMISSION]),
        max((r[_SCOPE] for r in rows if r[_SCOPE]), key=_SCOPE_WIDTH.__getitem__, default="own"),
        first[_TEAM],
    )


def signed_in_by_token(db: Session | Connection, secret: str) -> SignedIn:
    """The user a bearer token belongs to; ``AuthError`` if unknown, revoked or expired."""
    rows = _statements()["token"].rows(connection_of(db), digest=_digest(secret))
    if not rows or rows[0][_REVOKED] is not None:
        raise AuthError("invalid or revoked token")
    if rows[0][_EXPIRES] is not None and rows[0][_EXPIRES] <= utcnow():
        raise AuthError("token expired")
    if not rows[0][_ACTIVE]:
        raise AuthError("user is deactivated")
    return _signed_in(rows)


def signed_in_by_session(db: Session | Connection, user_id: int, epoch: int) -> SignedIn:
    """The user of a session cookie; ``AuthError`` once the session was ended."""
    rows = _statements()["session"].rows(connection_of(db), user_id=user_id)
    if not rows or not rows[0][_ACTIVE] or rows[0][_EPOCH] != epoch:
        raise AuthError("session expired; sign in again")
    return _signed_in(rows)


def signed_in_user(db: Session | Connection, user_id: int) -> SignedIn | None:
    """User ``user_id`` with their roles and permissions, as a request would see them; ``None``
    for an unknown or deactivated user. For work done on someone's behalf outside a request
    (may the person being notified see the record?)."""
    rows = _statements()["session"].rows(connection_of(db), user_id=user_id)
    if not rows or not rows[0][_ACTIVE]:
        return None
    return _signed_in(rows)


def revoke_secret(session: Session, secret: str) -> bool:
    """Revoke the token whose secret is ``secret`` (its holder signs out); whether one was."""
    token = session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == _digest(secret), ApiToken.revoked_at.is_(None)
        )
    )
    if token is None:
        return False
    token.revoked_at = utcnow()
    audit.record(session, "revoke", "api_token", token.id, after={"name": token.name})
    return True


def revoke_tokens(session: Session, user: User, name: str | None = None) -> int:
    """Revoke ``user``'s tokens (only the one called ``name`` when given); return how many."""
    query = select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    if name is not None:
        query = query.where(ApiToken.name == name)
    tokens = list(session.scalars(query))
    for token in tokens:
        token.revoked_at = utcnow()
        audit.record(
            session, "revoke", "api_token", token.id, after={"user": user.email, "name": token.name}
        )
    return len(tokens)
