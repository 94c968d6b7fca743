"""FastAPI dependencies for the core and plugins: database sessions, the current user, permissions.

Every route uses :func:`require_permission` (or :func:`current_user`) unless it says in its
docstring why it is public.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from core import audit, auth, permissions
from core.errors import AuthError
from core.models import User
from core.runtime import Crm
from core.web import sessions

# Declared so that the OpenAPI schema (and /docs) know both ways to authenticate.
bearer_scheme = HTTPBearer(auto_error=False, description="An API token: `crm users token create`")
cookie_scheme = APIKeyCookie(
    name=sessions.COOKIE_NAME,
    auto_error=False,
    description="The session cookie set by POST /api/auth/login",
)


def get_crm(request: Request) -> Crm:
    """The running CRM."""
    return request.app.state.crm


def read_session(crm: Crm = Depends(get_crm)) -> Iterator[Session]:
    """A session for reading; its transaction is rolled back at the end of the request."""
    with crm.db.session() as session:
        yield session


def write_session(request: Request, crm: Crm = Depends(get_crm)) -> Iterator[Session]:
    """A session whose transaction commits when the request succeeds.

    Audit rows written through it are attributed to the request's signed-in user.
    """
    with crm.db.write() as session:
        session.info[audit.REQUEST_KEY] = request
        yield session


@dataclass
class Principal:
    """The signed-in user and what they may do."""

    user: User
    permissions: set[str]
    via: str

    def can(self, permission: str) -> bool:
        """Whether the user holds ``permission`` (``model:action``)."""
        return permission in self.permissions


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def current_user(
    request: Request,
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
    cookie: str | None = Depends(cookie_scheme),
) -> Principal:
    """The user behind the bearer token or session cookie; 401 when there is none."""
    ip = request.client.host if request.client else None
    if credentials is not None:
        try:
            user = auth.verify_token(session, credentials.credentials)
        except AuthError as exc:
            raise _unauthorized(str(exc)) from None
        via = "token"
    elif cookie:
        decoded = sessions.decode(crm.settings.secret_key, cookie)
        user = session.get(User, decoded[0]) if decoded else None
        if user is None or not user.is_active or user.session_epoch != decoded[1]:
            raise _unauthorized("session expired; sign in again")
        via = "session"
    else:
        raise _unauthorized("sign in or send an API token")
    principal = Principal(user, permissions.permissions_of(session, user.id), via)
    request.state.principal = principal
    request.state.actor = audit.Actor(user.email, user.id, ip)
    return principal


def require_permission(permission: str) -> Callable[..., Principal]:
    """A dependency that lets the request through only for users holding ``permission``."""

    def dependency(principal: Principal = Depends(current_user)) -> Principal:
        if not principal.can(permission):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"permission {permission} required")
        return principal

    dependency.__name__ = f"require_{permission.replace(':', '_').replace('.', '_')}"
    return dependency
