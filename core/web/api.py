"""The core's REST API: health, sign-in, the current user, modules, checklist, audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import auth, checks, modules
from core.errors import AuthError
from core.models import AuditLog
from core.runtime import Crm
from core.web import sessions
from core.web.access import access, public
from core.web.deps import (
    Principal,
    current_user,
    get_crm,
    require_permission,
    write_session,
)
from core.web.inputs import Id

router = APIRouter(prefix="/api")


class Health(BaseModel):
    """Liveness answer."""

    status: str


@router.get(
    "/health",
    response_model=Health,
    tags=["system"],
    openapi_extra=public("load balancers and process managers probe it; it reveals nothing"),
)
async def health() -> Health:
    """Public on purpose: load balancers and process managers probe it; it reveals nothing."""
    return Health(status="ok")


class LoginRequest(BaseModel):
    """E-mail and password of a user."""

    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)


class Me(BaseModel):
    """The signed-in user."""

    id: int
    email: str
    name: str
    language: str
    roles: list[str]
    permissions: list[str]


def _me(principal: Principal) -> Me:
    user = principal.user
    return Me(
        id=user.id,
        email=user.email,
        name=user.name,
        language=user.language,
        roles=list(user.roles),
        permissions=sorted(principal.permissions),
    )


@router.post(
    "/auth/login",
    openapi_extra=public("this is how a person signs in"),
    response_model=Me,
    tags=["auth"],
    responses={
        401: {"description": "wrong e-mail or password"},
        429: {"description": "too many failed sign-ins"},
    },
)
def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Me:
    """Public on purpose: this is how a person signs in. Sets the session cookie."""
    ip = request.client.host if request.client else None
    # The password is checked before ``session`` first queries, that is before its write
    # transaction begins (and, on SQLite, takes the write lock): see ``auth.check_sign_in``.
    with crm.db.session() as read:
        checked = auth.check_sign_in(read, body.email, body.password, ip)
    try:
        user = auth.record_sign_in(session, checked, ip)
    except auth.ThrottledError as exc:
        session.commit()
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc)) from None
    except AuthError as exc:
        session.commit()  # keep the audit row of the failed attempt
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    sessions.start(response, request, crm.settings.secret_key, user.id, user.session_epoch)
    session.flush()
    return _me(
        Principal(auth.signed_in_by_session(session, user.id, user.session_epoch), "session")
    )


@router.post("/auth/logout", status_code=204, tags=["auth"], openapi_extra=access(None))
def logout(
    request: Request,
    response: Response,
    principal: Principal = Depends(current_user),
    session: Session = Depends(write_session),
) -> Response:
    """End every session of the signed-in user, and the API token the call was made with."""
    from core.models import User

    user = session.get(User, principal.user.id)
    user.session_epoch += 1
    if principal.via == "token":
        auth.revoke_secret(session, request.headers["authorization"].partition(" ")[2].strip())
    response.status_code = 204
    response.delete_cookie(sessions.COOKIE_NAME)
    return response


@router.get("/me", response_model=Me, tags=["auth"], openapi_extra=access(None))
async def me(principal: Principal = Depends(current_user)) -> Me:
    """The signed-in user, their roles and permissions."""
    return _me(principal)


class ModuleOut(BaseModel):
    """A module and its state."""

    name: str
    version: str | None
    state: str
    depends: list[str]
    summary: str
    errors: list[str]


@router.get(
    "/modules",
    response_model=list[ModuleOut],
    tags=["modules"],
    openapi_extra=access("module:read"),
)
def list_modules(
    _: Principal = Depends(require_permission("module:read")), crm: Crm = Depends(get_crm)
) -> list[ModuleOut]:
    """Every module found, with its state and load errors."""
    return [ModuleOut(**m.as_dict()) for m in modules.list_modules(crm)]


class CheckOut(BaseModel):
    """One checklist item's status."""

    id: str
    level: str
    category: str
    module: str
    message: str
    hint: str
    status: str
    detail: str


@router.get(
    "/checklist",
    response_model=list[CheckOut],
    tags=["checklist"],
    openapi_extra=access("checklist:read"),
)
def checklist(
    deploy: bool = True,
    _: Principal = Depends(require_permission("checklist:read")),
    crm: Crm = Depends(get_crm),
) -> list[CheckOut]:
    """The pre-deployment checklist of the core and enabled modules."""
    return [CheckOut(**r.as_dict()) for r in checks.run(crm, deploy=deploy)]


class AuditOut(BaseModel):
    """One audit row."""

    id: int
    at: dt.datetime
    actor: str
    action: str
    model: str
    record_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    detail: str | None


@router.get(
    "/audit", response_model=list[AuditOut], tags=["audit"], openapi_extra=access("audit:read")
)
def audit_log(
    before_id: Id | None = Query(None, ge=1, description="keyset cursor: rows older than this"),
    limit: int = Query(50, ge=1, le=500),
    model: str | None = Query(None, max_length=80),
    _: Principal = Depends(require_permission("audit:read")),
    crm: Crm = Depends(get_crm),
) -> list[AuditOut]:
    """The audit log, newest first, paged by id. Read-only: no route changes it."""
    query = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditLog.id < before_id)
    if model is not None:
        query = query.where(AuditLog.model == model)
    with crm.db.session() as session:
        return [
            AuditOut.model_validate(row, from_attributes=True) for row in session.scalars(query)
        ]
