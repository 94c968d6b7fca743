"""REST endpoints for mined rules and mining runs under ``/api/smart_sales/``.

Reading rules and runs needs ``smart_sales.rule:read``; mining (``POST /runs``, which mines in
the request: fine for the order volumes of our users) needs ``smart_sales.rule:mine``; muting
and unmuting a rule needs ``smart_sales.rule:review``. Read routes are ``async def`` and query
synchronously (see ``core.web.deps``); routes that write run in the thread pool. Parameters
out of range are 422 naming the field, and nothing is stored; a mining the engine refuses
(support too low, too many itemsets) is 422 with its message, and leaves a failed run.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import select, true
from sqlalchemy.orm import Session

from core import audit
from core.errors import NotFoundError
from core.runtime import Crm
from core.web.access import access
from core.web.deps import Principal, get_crm, read_session, require_permission, write_session
from core.web.inputs import BODY, MAX_ID, Day, Id, Whole
from core.web.problems import invalid
from plugins.smart_sales import runs
from plugins.smart_sales.mining import MiningError
from plugins.smart_sales.models import MiningRun, Rule

router = APIRouter(tags=["smart_sales"])

READ, MINE, REVIEW = "smart_sales.rule:read", "smart_sales.rule:mine", "smart_sales.rule:review"


# --- schemas ------------------------------------------------------------------------------------


class RunParams(BaseModel):
    """The parameters a run mined with (``since``: an ISO day or ``None``)."""

    min_support: float | None = None
    min_confidence: float | None = None
    min_lift: float | None = None
    max_length: int | None = None
    max_basket_size: int | None = None
    since: str | None = None


class RunOut(BaseModel):
    """A mining run: its parameters, what it found, how long it took, its error if it failed."""

    id: int
    status: str
    params: RunParams
    baskets: int
    capped: int
    itemsets: int
    rules: int
    alerts_raised: int
    duration_ms: int
    error: str | None
    started_by: int | None
    started_at: dt.datetime
    finished_at: dt.datetime | None


class RuleOut(BaseModel):
    """A rule X -> Y: SKUs (as mined) and product ids of each side, metrics, mute state."""

    id: int
    run_id: int
    key: str
    antecedent: list[str]
    consequent: list[str]
    antecedent_ids: list[int]
    consequent_ids: list[int]
    support: float
    confidence: float
    lift: float
    leverage: float
    #: ``None`` when infinite (confidence 1)
    conviction: float | None
    count: int
    muted: bool


class RulesOut(BaseModel):
    """A page of rules of a run (``run`` is ``None`` before the first successful run)."""

    run: RunOut | None
    total: int
    rules: list[RuleOut]


class RunDetail(RunOut):
    """A run with a page of its rules, in the order mined."""

    rules_total: int
    rule_list: list[RuleOut]


class MineIn(BaseModel):
    """Parameters of a new run; those left out come from the module's settings."""

    model_config = BODY
    min_support: float | None = Field(None, gt=0, le=1)
    min_confidence: float | None = Field(None, ge=0, le=1)
    min_lift: float | None = Field(None, ge=0)
    max_length: Whole | None = Field(None, ge=2, le=10)
    max_basket_size: Whole | None = Field(None, ge=2, le=10_000)
    since: Day | None = None
    raise_alerts: bool = True


class MuteIn(BaseModel):
    """Why the rule should raise no alerts."""

    model_config = BODY
    reason: str = Field("", max_length=2000)


class MutedOut(BaseModel):
    """A muted rule."""

    key: str
    reason: str
    muted_by: int | None
    muted_at: dt.datetime


# --- helpers ------------------------------------------------------------------------------------


def _run_out(run: MiningRun) -> RunOut:
    data = runs.run_as_dict(run)
    return RunOut(**{**data, "params": RunParams(**data["params"])})


def _rules_out(session: Session, rules: list[Rule]) -> list[RuleOut]:
    muted = runs.muted_keys(session, (r.key for r in rules))
    return [RuleOut(**runs.rule_as_dict(r, r.key in muted)) for r in rules]


def _run(session: Session, run_id: int) -> MiningRun:
    run = session.get(MiningRun, run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run {run_id}")
    return run


def _field_of(message: str) -> str:
    """The parameter a mining refusal is about (the first one it names)."""
    named = [(message.find(p), p) for p in runs.PARAMS if p in message]
    return min(named)[1] if named else "min_support"


# --- rules --------------------------------------------------------------------------------------


@router.get("/rules", response_model=RulesOut, openapi_extra=access(READ))
async def list_rules(
    sku: str | None = Query(None, max_length=64, description="Rules naming this product"),
    min_lift: float | None = Query(None, ge=0),
    muted: bool | None = Query(None, description="Only muted (true) or unmuted (false) rules"),
    sort: Literal["confidence", "lift", "support", "leverage"] = "confidence",
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_ID),
    _: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
) -> RulesOut:
    """The current rules (those of the latest successful run), filtered and sorted."""
    run = runs.current_run(session)
    if run is None:
        return RulesOut(run=None, total=0, rules=[])
    query = runs.rules_query(session, run.id, sku=sku, min_lift=min_lift, muted=muted, sort=sort)
    total, rules = runs.page(session, query, limit, offset)
    return RulesOut(run=_run_out(run), total=total, rules=_rules_out(session, rules))


@router.post(
    "/rules/{key}/mute",
    response_model=MutedOut,
    responses={404: {"description": "no run found this rule"}},
    openapi_extra=access(REVIEW),
)
def mute_rule(
    key: str,
    body: MuteIn,
    principal: Principal = Depends(require_permission(REVIEW)),
    session: Session = Depends(write_session),
) -> MutedOut:
    """Stop the rule ``key`` (``"12,40>7"``) from raising alerts; muting again changes the
    reason."""
    try:
        muted = runs.mute(session, key, principal.user.id, body.reason)
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return MutedOut(
        key=muted.key, reason=muted.reason, muted_by=muted.muted_by, muted_at=muted.muted_at
    )


@router.delete(
    "/rules/{key}/mute",
    status_code=204,
    response_class=Response,
    responses={404: {"description": "the rule is not muted"}},
    openapi_extra=access(REVIEW),
)
def unmute_rule(
    key: str,
    _: Principal = Depends(require_permission(REVIEW)),
    session: Session = Depends(write_session),
) -> Response:
    """Let the rule ``key`` raise alerts again."""
    if not runs.unmute(session, key):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"rule {key!r} is not muted")
    return Response(status_code=204)


# --- runs ---------------------------------------------------------------------------------------


@router.get("/runs", response_model=list[RunOut], openapi_extra=access(READ))
async def list_runs(
    status_filter: Literal["running", "ok", "failed"] | None = Query(None, alias="status"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_ID),
    _: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
) -> list[RunOut]:
    """Mining runs, newest first."""
    query = select(MiningRun).where(MiningRun.status == status_filter if status_filter else true())
    query = query.order_by(MiningRun.id.desc()).limit(limit).offset(offset)
    return [_run_out(r) for r in session.scalars(query)]


@router.get("/runs/{run_id}", response_model=RunDetail, openapi_extra=access(READ))
async def read_run(
    run_id: Id,
    limit: int = Query(1000, ge=1, le=10_000, description="Rules listed"),
    offset: int = Query(0, ge=0, le=MAX_ID),
    _: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
) -> RunDetail:
    """One run with its rules in the order mined (``rule_list``, paged)."""
    run = _run(session, run_id)
    query = select(Rule).where(Rule.run_id == run_id).order_by(Rule.id)
    total, rules = runs.page(session, query, limit, offset)
    return RunDetail(
        **_run_out(run).model_dump(), rules_total=total, rule_list=_rules_out(session, rules)
    )


@router.post(
    "/runs",
    response_model=RunOut,
    status_code=201,
    responses={422: {"description": "a parameter out of range, or the mining was refused"}},
    openapi_extra=access(MINE),
)
def mine(
    request: Request,
    body: MineIn | None = None,
    principal: Principal = Depends(require_permission(MINE)),
    crm: Crm = Depends(get_crm),
) -> RunOut:
    """Mine the order baskets now, store the rules and raise alerts (unless
    ``raise_alerts`` is false); the new run. A refused mining is 422 with the reason, and
    the failed run is on record."""
    body = body or MineIn()
    actor = getattr(request.state, "actor", None) or audit.Actor(
        principal.user.email, principal.user.id
    )
    try:
        with audit.acting_as(actor):
            run = runs.run_mining(
                crm,
                **body.model_dump(exclude={"raise_alerts"}),
                started_by=principal.user.id,
                raise_alerts=body.raise_alerts,
            )
    except MiningError as exc:
        raise invalid({_field_of(str(exc)): str(exc)}) from None
    return _run_out(run)
