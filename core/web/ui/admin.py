"""The admin area: modules, users and roles, API tokens, the checklist, the audit log.

Each action calls the same service functions as the ``crm`` command line, so the web and the
CLI share their safety rules (dependency checks, backups, one transaction per operation).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from core import audit
from core.db import utcnow
from core.errors import CrmError
from core.i18n import N_, Msg
from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import (
    UIContext,
    csrf_check,
    flash_redirect,
    page,
    read_flash,
    ui_principal,
)

router = APIRouter(prefix="/admin", dependencies=[Depends(csrf_check)], include_in_schema=False)


def _actor(request: Request, principal: Principal) -> audit.Actor:
    ip = request.client.host if request.client else None
    return audit.Actor(principal.user.email, principal.user.id, ip)


def _flash(request: Request) -> dict[str, str | None]:
    return read_flash(request)


# --- modules ----------------------------------------------------------------------------------


@router.get("/modules", response_class=HTMLResponse, openapi_extra=access("module:read"))
def modules_page(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """Every module with its state and dependencies."""
    from core import modules
    from core.plugin_report import plugin_report

    principal.require("module:read")
    crm = request.app.state.crm
    return page(
        UIContext(request, principal),
        "admin/modules.html",
        modules=modules.list_modules(crm),
        plugins=plugin_report(crm),
        can_manage=principal.can("module:manage"),
        **_flash(request),
    )


@router.post("/modules/{name}/{operation}", openapi_extra=access("module:manage"))
def change_module(
    request: Request, name: str, operation: str, principal: Principal = Depends(ui_principal)
) -> Response:
    """Enable or disable a module with the CLI's checks; the server then needs a restart."""
    from core import modules

    principal.require("module:manage")
    crm = request.app.state.crm
    if operation not in ("enable", "disable"):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no operation {operation!r}")
    try:
        with audit.acting_as(_actor(request, principal)):
            if operation == "enable":
                done = modules.enable(crm, [name])
            else:
                done = modules.disable(crm, name)
    except (CrmError, ValueError) as exc:
        return flash_redirect(request, "/admin/modules", error=str(exc))
    finally:
        crm.refresh()
    text = (
        N_("Enabled %(modules)s. Restart the server to load their screens.")
        if operation == "enable"
        else N_("Disabled %(modules)s. Restart the server to unload their screens.")
    )
    return flash_redirect(request, "/admin/modules", message=Msg(text, modules=", ".join(done)))


# --- users ------------------------------------------------------------------------------------


def _user_rows(session: Any) -> list[dict[str, Any]]:
    from core.models import Team, User

    teams = dict(session.execute(select(Team.id, Team.name)).all())
    return [
        {
            "user": user,
            "roles": user.role_names,
            "team": teams.get(user.team_id),
        }
        for user in session.scalars(select(User).order_by(User.email))
    ]


@router.get("/users", response_class=HTMLResponse, openapi_extra=access("user:read"))
def users_page(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """Users, their roles and teams; forms to add and change them."""
    principal.require("user:read")
    return _users_view(request, principal, **_flash(request))


def _users_view(
    request: Request, principal: Principal, password: str | None = None, **flash: Any
) -> HTMLResponse:
    from core.models import Role, Team

    with request.app.state.crm.db.session() as session:
        return page(
            UIContext(request, principal, session),
            "admin/users.html",
            rows=_user_rows(session),
            roles=list(session.scalars(select(Role).order_by(Role.name))),
            teams=list(session.scalars(select(Team).order_by(Team.name))),
            password=password,
            **flash,
        )


@router.post("/users", openapi_extra=access("user:create"))
async def add_user(request: Request, principal: Principal = Depends(ui_principal)) -> Response:
    """Add a user with a generated password, shown once."""
    from core import auth, users

    principal.require("user:create")
    form = await request.form()
    secret = auth.generate_password()
    crm = request.app.state.crm
    try:
        with crm.db.write() as session, audit.acting_as(_actor(request, principal)):
            user = users.create_user(
                session,
                str(form.get("email", "")),
                str(form.get("name", "")),
                secret,
                [str(r) for r in form.getlist("roles")] or ["sales"],
                str(form.get("language", "en")),
                initial_password=True,
            )
            team = str(form.get("team", ""))
            if team:
                users.set_team(session, user, users.get_team(session, team))
            email = user.email
    except (ValueError, CrmError) as exc:
        return flash_redirect(request, "/admin/users", error=str(exc))
    # Shown in this response only: a password never travels in a URL or a cookie.
    message = Msg(N_("Added %(email)s."), email=email)
    return _users_view(request, principal, password=secret, message=message, error=None)


@router.post("/users/{user_id:int}", openapi_extra=access(any_of=("user:update", "user:delete")))
async def change_user(
    request: Request, user_id: int, principal: Principal = Depends(ui_principal)
) -> Response:
    """Change a user's roles and team, or deactivate them."""
    from core import users
    from core.models import User

    form = await request.form()
    deactivate = form.get("deactivate") == "1"
    principal.require("user:delete" if deactivate else "user:update")
    crm = request.app.state.crm
    try:
        with crm.db.write() as session, audit.acting_as(_actor(request, principal)):
            user = session.get(User, user_id)
            if user is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {user_id}")
            if deactivate:
                if user.id == principal.user.id:
                    raise ValueError(N_("You cannot deactivate yourself."))
                users.deactivate(session, user)
            else:
                users.set_roles(session, user, [str(r) for r in form.getlist("roles")])
                team = str(form.get("team", ""))
                users.set_team(session, user, users.get_team(session, team) if team else None)
            email = user.email
    except (ValueError, CrmError) as exc:
        return flash_redirect(request, "/admin/users", error=str(exc))
    return flash_redirect(request, "/admin/users", message=Msg(N_("Saved %(email)s."), email=email))


# --- API tokens -------------------------------------------------------------------------------


@router.get("/tokens", response_class=HTMLResponse, openapi_extra=access("user:update"))
def tokens_page(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """Every API token (never its secret) with its user, expiry and state."""
    principal.require("user:update")
    return _tokens_view(request, principal, **_flash(request))


def _tokens_view(
    request: Request, principal: Principal, secret: str | None = None, **flash: Any
) -> HTMLResponse:
    from core.models import ApiToken, User

    with request.app.state.crm.db.session() as session:
        rows = session.execute(
            select(ApiToken, User.email)
            .join(User, User.id == ApiToken.user_id)
            .order_by(ApiToken.id.desc())
        ).all()
        return page(
            UIContext(request, principal, session),
            "admin/tokens.html",
            rows=rows,
            secret=secret,
            **flash,
        )


@router.post("/tokens", openapi_extra=access("user:update"))
async def create_token(request: Request, principal: Principal = Depends(ui_principal)) -> Response:
    """Create a token for a user; its secret is shown once, in this response only."""
    from core import auth, users

    principal.require("user:update")
    form = await request.form()
    days = str(form.get("expires_days", "")).strip()
    crm = request.app.state.crm
    try:
        if days and not days.isdigit():
            raise ValueError(N_("The expiry must be a whole number of days."))
        expires = utcnow() + dt.timedelta(days=int(days)) if days else None
        name = str(form.get("name", "")).strip()
        if not name:
            raise ValueError(N_("Give the token a name saying what it is for."))
        with crm.db.write() as session, audit.acting_as(_actor(request, principal)):
            user = users.get_user(session, str(form.get("email", "")))
            token = auth.create_token(session, user, name, expires)
    except (ValueError, CrmError) as exc:
        return flash_redirect(request, "/admin/tokens", error=str(exc))
    message = Msg(N_("Created the token %(name)s."), name=token.name)
    return _tokens_view(request, principal, secret=token.secret, message=message, error=None)


@router.post("/tokens/{token_id:int}/revoke", openapi_extra=access("user:update"))
def revoke_token(
    request: Request, token_id: int, principal: Principal = Depends(ui_principal)
) -> Response:
    """Revoke one token."""
    from core.models import ApiToken

    principal.require("user:update")
    crm = request.app.state.crm
    with crm.db.write() as session, audit.acting_as(_actor(request, principal)):
        token = session.get(ApiToken, token_id)
        if token is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no token {token_id}")
        if token.revoked_at is None:
            token.revoked_at = utcnow()
            audit.record(session, "revoke", "api_token", token.id, after={"name": token.name})
    return flash_redirect(request, "/admin/tokens", message=N_("Token revoked."))


# --- checklist --------------------------------------------------------------------------------


@router.get("/checklist", response_class=HTMLResponse, openapi_extra=access("checklist:read"))
def checklist_page(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """The pre-deployment checklist: open items first, attestations with their notes."""
    from core import checks

    principal.require("checklist:read")
    crm = request.app.state.crm
    results = checks.run(crm, deploy=True)
    order = {"fail": 0, "open": 1, "error": 2}
    results.sort(key=lambda r: (order.get(r.status, 3), -checks.level_rank(r.level), r.id))
    return page(
        UIContext(request, principal),
        "admin/checklist.html",
        results=results,
        can_attest=principal.can("checklist:attest"),
        **_flash(request),
    )


@router.post("/checklist/{check_id}/attest", openapi_extra=access("checklist:attest"))
async def attest(
    request: Request, check_id: str, principal: Principal = Depends(ui_principal)
) -> Response:
    """Confirm an attestation item, with a note saying how it was checked."""
    from core import checks

    principal.require("checklist:attest")
    note = str((await request.form()).get("note", "")).strip()
    if not note:
        return flash_redirect(request, "/admin/checklist", error=N_("Write how you checked it."))
    try:
        with audit.acting_as(_actor(request, principal)):
            checks.attest(request.app.state.crm, check_id, principal.user.email, note)
    except (ValueError, CrmError) as exc:
        return flash_redirect(request, "/admin/checklist", error=str(exc))
    return flash_redirect(
        request, "/admin/checklist", message=Msg(N_("Attested %(item)s."), item=check_id)
    )


# --- audit log --------------------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse, openapi_extra=access("audit:read"))
def audit_page(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """The audit log, newest first, by keyset pages; filter by model, action or actor."""
    from core.models import AuditLog

    principal.require("audit:read")
    params = request.query_params
    query = select(AuditLog).order_by(AuditLog.id.desc()).limit(51)
    before = params.get("before", "")
    if before.isdigit():
        query = query.where(AuditLog.id < int(before))
    for name in ("model", "action", "actor"):
        if params.get(name):
            query = query.where(getattr(AuditLog, name) == params[name])
    crm = request.app.state.crm
    with crm.db.session() as session:
        rows = list(session.scalars(query))
        more = len(rows) > 50
        rows = rows[:50]
        return page(
            UIContext(request, principal, session),
            "admin/audit.html",
            rows=rows,
            next_before=rows[-1].id if more and rows else None,
            filters={k: params.get(k, "") for k in ("model", "action", "actor")},
        )
