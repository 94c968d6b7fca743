"""The departments page, ``/collaborative/teams``: each team with its kind, lead and members
(with their role in the team). Managers (``collaborative.team:manage``) change the kind, the
lead and the members with the page's forms, which redirect back with a message."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from core import audit
from core.errors import Invalid, NotFoundError
from core.i18n import N_
from core.models import User
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
from plugins.collaborative import departments
from plugins.collaborative.config import settings
from plugins.collaborative.handoff_views import TEMPLATES

router = APIRouter(dependencies=[Depends(csrf_check)], include_in_schema=False)

READ = "collaborative.team:read"
MANAGE = "collaborative.team:manage"
PAGE = "/collaborative/teams"


@router.get("/teams", response_class=HTMLResponse, openapi_extra=access(READ))
def teams_page(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """Departments with their kind, lead and members; forms for managers."""
    principal.require(READ)
    crm = request.app.state.crm
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        users = session.execute(
            select(User.id, User.name, User.email).where(User.is_active).order_by(User.name)
        ).all()
        return page(
            ctx,
            TEMPLATES + "teams.html",
            teams=departments.list_teams(session),
            kinds=settings(crm)["team_kinds"],
            users=users,
            can_manage=principal.can(MANAGE),
            **read_flash(request),
        )


def _change(request: Request, principal: Principal, change: Any, done: str) -> Any:
    principal.require(MANAGE)
    crm = request.app.state.crm
    try:
        with crm.db.write() as session:
            session.info[audit.REQUEST_KEY] = request
            change(crm, session)
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except Invalid as exc:
        error = "; ".join(f"{field}: {text}" for field, text in exc.errors.items())
        return flash_redirect(request, PAGE, error=error)
    return flash_redirect(request, PAGE, message=done)


def _user(value: str) -> int | None:
    return int(value) if value.strip().isdigit() else None


@router.post("/teams/{team_id}", response_class=HTMLResponse, openapi_extra=access(MANAGE))
def update_team(
    request: Request,
    team_id: int,
    kind: str = Form(""),
    lead_id: str = Form(""),
    description: str = Form(""),
    principal: Principal = Depends(ui_principal),
) -> Any:
    """Set a department's kind, lead (empty: none) and description."""
    return _change(
        request,
        principal,
        lambda crm, s: departments.set_profile(
            crm, s, team_id, kind.strip(), _user(lead_id), description
        ),
        N_("Department saved."),
    )


@router.post("/teams/{team_id}/members", response_class=HTMLResponse, openapi_extra=access(MANAGE))
def add_member(
    request: Request,
    team_id: int,
    user_id: str = Form(""),
    role: str = Form("member"),
    principal: Principal = Depends(ui_principal),
) -> Any:
    """Add a user to a department with a role."""
    return _change(
        request,
        principal,
        lambda crm, s: departments.add_member(s, team_id, _user(user_id), role),
        N_("Member added."),
    )


@router.post(
    "/teams/{team_id}/members/{user_id}/remove",
    response_class=HTMLResponse,
    openapi_extra=access(MANAGE),
)
def remove_member(
    request: Request,
    team_id: int,
    user_id: int,
    principal: Principal = Depends(ui_principal),
) -> Any:
    """Take a user out of a department."""
    return _change(
        request,
        principal,
        lambda crm, s: departments.remove_member(s, team_id, user_id),
        N_("Member removed."),
    )
