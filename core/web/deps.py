"""FastAPI dependencies for the core and plugins: database sessions, the current user, permissions.

Every route uses :func:`require_permission` (or :func:`current_user`) unless it is public, and
declares which in its decorator (:mod:`core.web.access`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from core import audit, auth
from core.errors import AuthError
from core.runtime import Crm
from core.web import sessions

SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token: `crm users token create`",
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": sessions.COOKIE_NAME,
        "description": "The session cookie set by POST /api/auth/login",
    },
}


# The read path (get_crm, read_session, current_user) is ``async def`` on purpose: its queries
# take well under a millisecond, and running them on the event loop avoids a thread-pool hop
# per dependency, which cost three quarters of a simple GET's time. Writes stay in the pool.


async def get_crm(request: Request) -> Crm:
    """The running CRM."""
    return request.app.state.crm


async def read_connection(request: Request) -> Connection:
    """The event loop's long-lived autocommit connection, for quick Core reads."""
    return request.app.state.crm.db.reader()


async def read_session(request: Request) -> AsyncIterator[Session]:
    """A session for reading, on the event loop's long-lived autocommit connection.

    Closed after the request, so the reader is never left inside a transaction (which would
    stop it from reconnecting after the database server dropped it).
    """
    session = Session(bind=request.app.state.crm.db.reader())
    try:
        yield session
    finally:
        session.close()


def write_session(request: Request, crm: Crm = Depends(get_crm)) -> Iterator[Session]:
    """A session whose transaction commits when the request succeeds.

    Audit rows written through it are attributed to the request's signed-in user.
    """
    with crm.db.write() as session:
        session.info[audit.REQUEST_KEY] = request
        yield session


@dataclass
class Principal:
    """The signed-in user and what they may do; ``via`` is ``token`` or ``session``."""

    user: auth.SignedIn
    via: str

    @property
    def permissions(self) -> frozenset[str]:
        """Every permission the user holds."""
        return self.user.permissions

    def can(self, permission: str) -> bool:
        """Whether the user holds ``permission`` (``model:action``)."""
        return permission in self.user.permissions

    def require(self, permission: str) -> None:
        """Refuse the request (403) unless the user holds ``permission``."""
        if not self.can(permission):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"permission {permission} required")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def current_user(request: Request) -> Principal:
    """The user behind the bearer token or session cookie; 401 when there is none.

    Reads the headers itself rather than through FastAPI's security classes: every dependency
    level costs time on each request. The OpenAPI schema declares both schemes globally
    (``core.web.app``).
    """
    conn = request.app.state.crm.db.reader()
    header = request.headers.get("authorization", "")
    ip = request.client.host if request.client else None
    try:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            user = auth.signed_in_by_token(conn, credentials.strip())
            via = "token"
        elif cookie := request.cookies.get(sessions.COOKIE_NAME):
            decoded = sessions.decode(request.app.state.crm.settings.secret_key, cookie)
            if decoded is None:
                raise AuthError("session expired; sign in again")
            user = auth.signed_in_by_session(conn, *decoded)
            via = "session"
        else:
            raise AuthError("sign in or send an API token")
    except AuthError as exc:
        raise _unauthorized(str(exc)) from None
    principal = Principal(user, via)
    request.state.principal = principal
    request.state.actor = audit.Actor(user.email, user.id, ip)
    return principal


def require_permission(permission: str) -> Callable[..., Principal]:
    """A dependency that lets the request through only for users holding ``permission``."""

    async def dependency(request: Request) -> Principal:
        # current_user called directly: one dependency level less to resolve per request
        principal = getattr(request.state, "principal", None) or await current_user(request)
        principal.require(permission)
        return principal

    dependency.__name__ = f"require_{permission.replace(':', '_').replace('.', '_')}"
    return dependency
