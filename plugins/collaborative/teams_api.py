"""REST endpoints for departments and account teams, under ``/api/collaborative/``.

``/teams``: each team with its kind, lead and members (their role in the team); managers change
them. ``/account-teams/{customer_id}``: the team responsible for a customer; a customer the
user may not see answers 404 like a missing one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import records
from core.errors import Invalid, NotFoundError
from core.runtime import Crm
from core.web import problems
from core.web.access import access
from core.web.deps import Principal, get_crm, read_session, require_permission, write_session
from core.web.inputs import BODY, Id
from plugins.collaborative import departments
from plugins.collaborative.models import AccountTeam

router = APIRouter(tags=["collaborative: teams"])

READ = "collaborative.team:read"
MANAGE = "collaborative.team:manage"


class MemberOut(BaseModel):
    """A member of a team; ``primary`` when it is the user's primary (core) team."""

    user_id: int
    name: str
    email: str
    role: str
    primary: bool


class TeamOut(BaseModel):
    """A department."""

    id: int
    name: str
    label: str
    kind: str
    lead_id: int | None
    lead_name: str | None
    description: str
    members: list[MemberOut]


class TeamIn(BaseModel):
    """A department's kind (one of ``team_kinds``), lead (``null``: none) and description."""

    model_config = BODY
    kind: str = Field(min_length=1, max_length=20)
    lead_id: Id | None = Field(None, ge=1)
    description: str = Field("", max_length=departments.MAX_DESCRIPTION_LENGTH)


class MemberIn(BaseModel):
    """A user to add to the team, with their role there."""

    model_config = BODY
    user_id: Id = Field(ge=1)
    role: str = Field(departments.DEFAULT_ROLE, min_length=1, max_length=60)


class AccountTeamIn(BaseModel):
    """The team to make responsible for the customer."""

    model_config = BODY
    team_id: Id = Field(ge=1)


class AccountTeamOut(BaseModel):
    """A customer's account team (``team_id`` null when it has none)."""

    customer_id: int
    team_id: int | None
    team: str | None
    assigned_at: dt.datetime | None
    assigned_by: int | None


def _team(session: Session, team_id: int) -> dict[str, Any]:
    found = next((t for t in departments.list_teams(session) if t["id"] == team_id), None)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no team {team_id}")
    return found


def _changing(call: Any) -> Any:
    try:
        return call()
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except Invalid as exc:
        raise problems.invalid(exc.errors) from None


@router.get("/teams", response_model=list[TeamOut], openapi_extra=access(READ))
async def list_teams(
    _: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
) -> list[dict[str, Any]]:
    """Every department with its kind, lead and members."""
    return departments.list_teams(session)


@router.get("/teams/{team_id}", response_model=TeamOut, openapi_extra=access(READ))
async def read_team(
    team_id: Id,
    _: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
) -> dict[str, Any]:
    """One department."""
    return _team(session, team_id)


@router.put("/teams/{team_id}", response_model=TeamOut, openapi_extra=access(MANAGE))
def update_team(
    team_id: Id,
    body: TeamIn,
    _: Principal = Depends(require_permission(MANAGE)),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> dict[str, Any]:
    """Set the department's kind, lead and description; the lead becomes a member."""
    _changing(
        lambda: departments.set_profile(
            crm, session, team_id, body.kind, body.lead_id, body.description
        )
    )
    return _team(session, team_id)


@router.post(
    "/teams/{team_id}/members",
    response_model=TeamOut,
    status_code=201,
    openapi_extra=access(MANAGE),
)
def add_member(
    team_id: Id,
    body: MemberIn,
    _: Principal = Depends(require_permission(MANAGE)),
    session: Session = Depends(write_session),
) -> dict[str, Any]:
    """Add a user to the department with a role (or change their role there)."""
    _changing(lambda: departments.add_member(session, team_id, body.user_id, body.role))
    return _team(session, team_id)


@router.delete("/teams/{team_id}/members/{user_id}", status_code=204, openapi_extra=access(MANAGE))
def remove_member(
    team_id: Id,
    user_id: Id,
    _: Principal = Depends(require_permission(MANAGE)),
    session: Session = Depends(write_session),
) -> Response:
    """Take a user out of the department (not out of their primary team: 422)."""
    if not _changing(lambda: departments.remove_member(session, team_id, user_id)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"user {user_id} is not in team {team_id}")
    return Response(status_code=204)


def _visible_customer(crm: Crm, session: Session, principal: Principal, customer_id: int) -> None:
    if not records.can_see_customer(crm, session, principal.user, customer_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer {customer_id}")


def _account_out(session: Session, customer_id: int) -> AccountTeamOut:
    row = session.scalar(select(AccountTeam).where(AccountTeam.customer_id == customer_id))
    if row is None:
        return AccountTeamOut(
            customer_id=customer_id, team_id=None, team=None, assigned_at=None, assigned_by=None
        )
    return AccountTeamOut(
        customer_id=customer_id,
        team_id=row.team_id,
        team=departments.team_labels(session, [row.team_id]).get(row.team_id),
        assigned_at=row.assigned_at,
        assigned_by=row.assigned_by,
    )


@router.get(
    "/account-teams/{customer_id}",
    response_model=AccountTeamOut,
    openapi_extra=access("customer:read", scoped=True),
)
async def read_account_team(
    customer_id: Id,
    principal: Principal = Depends(require_permission("customer:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> AccountTeamOut:
    """The team responsible for a customer I may see."""
    _visible_customer(crm, session, principal, customer_id)
    return _account_out(session, customer_id)


@router.put(
    "/account-teams/{customer_id}",
    response_model=AccountTeamOut,
    openapi_extra=access("collaborative.account_team:update", scoped=True),
)
def set_account_team(
    customer_id: Id,
    body: AccountTeamIn,
    principal: Principal = Depends(require_permission("collaborative.account_team:update")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> AccountTeamOut:
    """Make a team responsible for a customer I may see; its members then see the customer."""
    _visible_customer(crm, session, principal, customer_id)
    _changing(
        lambda: departments.set_account_team(session, customer_id, body.team_id, principal.user.id)
    )
    return _account_out(session, customer_id)
