"""REST endpoints for segments and campaigns under ``/api/analytical/``.

Read routes are ``async def`` and query synchronously (see ``core.web.deps``); routes that write
are plain ``def`` and run in the thread pool. Invalid input is 422 with one entry per field
(``definition.<criterion>`` for a bad criterion); a stale ``version`` is 409 with the current
record; freezing a campaign twice or handing it over twice is 409. Previews count and list only
the customers the user's record rule lets them see.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, WithJsonSchema
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import records
from core.runtime import Crm
from core.web.access import access
from core.web.deps import Principal, get_crm, read_session, require_permission, write_session
from core.web.inputs import BODY, NOT_BLANK, AwareTimestamp, Id, Version, Whole
from core.web.problems import conflict, guarded, invalid, stale
from plugins.analytical import campaigns, segments
from plugins.analytical.models import Campaign, Segment

router = APIRouter(tags=["analytical"])


# --- schemas ------------------------------------------------------------------------------------


#: A segment definition: a JSON object of criteria, documented as ``segments.Definition``.
Criteria = Annotated[dict[str, Any], WithJsonSchema(segments.Definition.model_json_schema())]


class SegmentIn(BaseModel):
    """A new saved segment; ``definition`` holds the criteria (see ``segments``)."""

    model_config = BODY
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(None, max_length=5000)
    definition: Criteria


class SegmentPatch(BaseModel):
    """Changes to a segment; ``version`` is the version the client read. A field left out
    keeps its value; ``name`` and ``definition`` cannot be null."""

    model_config = BODY
    version: Version = Field(ge=1)
    name: str = Field(None, min_length=1, max_length=100, pattern=NOT_BLANK)
    description: str | None = Field(None, max_length=5000)
    definition: Criteria = None


class SegmentOut(BaseModel):
    """A saved segment."""

    id: int
    name: str
    description: str | None
    definition: dict[str, Any]
    created_by: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int


class PreviewIn(BaseModel):
    """A definition to count."""

    model_config = BODY
    definition: Criteria


class PreviewCustomer(BaseModel):
    """A matching customer."""

    id: int
    display_name: str
    country: str | None


class PreviewOut(BaseModel):
    """How many customers (that the user may see) match, and the first 20 by id."""

    count: int
    customers: list[PreviewCustomer]


class CampaignIn(BaseModel):
    """A new draft campaign; the percent and window default to the module settings."""

    model_config = BODY
    name: str = Field(min_length=1, max_length=200)
    segment_id: Id = Field(ge=1)
    control_percent: Whole | None = Field(None, ge=0, le=100)
    response_days: Whole | None = Field(None, ge=1, le=3650)


class VersionIn(BaseModel):
    """The version the client read."""

    model_config = BODY
    version: Version = Field(ge=1)


class SendIn(VersionIn):
    """The mail template of the mailing, and optionally when it should go out."""

    template_id: Id = Field(ge=1)
    scheduled_at: AwareTimestamp | None = None


class CampaignOut(BaseModel):
    """A campaign (its seed stays secret)."""

    id: int
    name: str
    segment_id: int | None
    status: str
    control_percent: int
    response_days: int
    frozen_at: dt.datetime | None
    targets: int
    controls: int
    mailing_id: int | None
    created_by: int | None
    created_at: dt.datetime
    version: int


class GroupOut(BaseModel):
    """One group's response."""

    size: int
    responders: int
    revenue_minor: int
    rate: float | None
    revenue_per_customer_minor: int


class ResultsOut(BaseModel):
    """Targets against control: response rates, uplift with its 95 % interval, revenue."""

    campaign_id: int
    window_start: dt.datetime
    window_end: dt.datetime
    complete: bool
    currency: str
    target: GroupOut
    control: GroupOut
    uplift: float | None
    ci_low: float | None
    ci_high: float | None
    incremental_revenue_minor: int | None


# --- helpers ------------------------------------------------------------------------------------


def _segment(session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no segment {segment_id}")
    return segment


def _campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no campaign {campaign_id}")
    return campaign


def _segment_out(segment: Segment) -> SegmentOut:
    return SegmentOut(**segments.segment_as_dict(segment))


def _campaign_out(campaign: Campaign) -> CampaignOut:
    return CampaignOut(**campaigns.campaign_as_dict(campaign))


def _current(crm: Crm, what: str, record_id: int) -> JSONResponse:
    """409 with the record as committed now, read apart from the failed transaction."""
    with crm.db.session() as session:
        if what == "segment":
            return stale(what, record_id, _segment_out(_segment(session, record_id)))
        return stale(what, record_id, _campaign_out(_campaign(session, record_id)))


def _guarded(crm: Crm, what: str, record_id: int, change: Callable[[], Any]) -> Any:
    """Run ``change``: 422 for bad input, 409 for a conflict or a stale version."""
    return guarded(change, lambda: _current(crm, what, record_id))


# --- segments -----------------------------------------------------------------------------------


@router.get(
    "/segments", response_model=list[SegmentOut], openapi_extra=access("analytical.segment:read")
)
async def list_segments(
    _: Principal = Depends(require_permission("analytical.segment:read")),
    session: Session = Depends(read_session),
) -> list[SegmentOut]:
    """Saved segments by name."""
    return [_segment_out(s) for s in session.scalars(select(Segment).order_by(Segment.name))]


@router.post(
    "/segments",
    response_model=SegmentOut,
    status_code=201,
    responses={409: {"description": "the name is taken"}},
    openapi_extra=access("analytical.segment:create"),
)
def create_segment(
    body: SegmentIn,
    principal: Principal = Depends(require_permission("analytical.segment:create")),
    session: Session = Depends(write_session),
) -> SegmentOut:
    """Save a segment; a bad criterion is 422 naming it (``definition.<criterion>``)."""
    try:
        segment = segments.create_segment(
            session, body.name, body.definition, body.description, principal.user.id
        )
    except segments.Invalid as exc:
        raise invalid(exc.errors) from None
    except (segments.Conflict, IntegrityError) as exc:
        raise conflict(str(exc) if isinstance(exc, segments.Conflict) else "name taken") from None
    return _segment_out(segment)


@router.post(
    "/segments/preview", response_model=PreviewOut, openapi_extra=access("analytical.segment:read")
)
async def preview_definition(
    body: PreviewIn,
    principal: Principal = Depends(require_permission("analytical.segment:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> PreviewOut:
    """How many customers the user may see match ``definition`` (nothing is stored)."""
    try:
        found = segments.preview(
            session, body.definition, records.customer_condition(crm, principal.user), crm
        )
    except segments.Invalid as exc:
        raise invalid(exc.errors) from None
    return PreviewOut(count=found.count, customers=found.customers)


@router.get(
    "/segments/{segment_id:int}",
    response_model=SegmentOut,
    openapi_extra=access("analytical.segment:read"),
)
async def read_segment(
    segment_id: Id,
    _: Principal = Depends(require_permission("analytical.segment:read")),
    session: Session = Depends(read_session),
) -> SegmentOut:
    """One saved segment."""
    return _segment_out(_segment(session, segment_id))


@router.get(
    "/segments/{segment_id}/preview",
    response_model=PreviewOut,
    openapi_extra=access("analytical.segment:read"),
)
async def preview_segment(
    segment_id: Id,
    principal: Principal = Depends(require_permission("analytical.segment:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> PreviewOut:
    """How many customers (that the user may see) the saved segment holds now."""
    segment = _segment(session, segment_id)
    found = segments.preview(
        session, segment.definition, records.customer_condition(crm, principal.user), crm
    )
    return PreviewOut(count=found.count, customers=found.customers)


@router.patch(
    "/segments/{segment_id:int}",
    response_model=SegmentOut,
    responses={409: {"description": "stale version (the body holds the current one) or name"}},
    openapi_extra=access("analytical.segment:update"),
)
def update_segment(
    segment_id: Id,
    body: SegmentPatch,
    _: Principal = Depends(require_permission("analytical.segment:update")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Change a segment; send the ``version`` you read. A stale version gets 409."""
    segment = _segment(session, segment_id)
    values = body.model_dump(exclude={"version"}, exclude_unset=True)
    empty = [key for key in ("name", "definition") if key in values and values[key] is None]
    if empty:
        raise invalid(dict.fromkeys(empty, "cannot be empty"))

    def change() -> SegmentOut:
        segments.update_segment(session, segment, values, body.version)
        return _segment_out(segment)

    return _guarded(crm, "segment", segment_id, change)


@router.delete(
    "/segments/{segment_id:int}",
    status_code=204,
    response_class=Response,
    responses={409: {"description": "stale version (the body holds the current one)"}},
    openapi_extra=access("analytical.segment:update"),
)
def delete_segment(
    segment_id: Id,
    version: Version,
    _: Principal = Depends(require_permission("analytical.segment:update")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Response:
    """Delete a segment (``?version=`` the version you read); frozen campaign lists stay."""
    segment = _segment(session, segment_id)

    def change() -> Response:
        segments.delete_segment(session, segment, version)
        return Response(status_code=204)

    return _guarded(crm, "segment", segment_id, change)


# --- campaigns ----------------------------------------------------------------------------------


@router.get(
    "/campaigns", response_model=list[CampaignOut], openapi_extra=access("analytical.campaign:read")
)
async def list_campaigns(
    _: Principal = Depends(require_permission("analytical.campaign:read")),
    session: Session = Depends(read_session),
) -> list[CampaignOut]:
    """Campaigns, newest first."""
    query = select(Campaign).order_by(Campaign.id.desc())
    return [_campaign_out(c) for c in session.scalars(query)]


@router.post(
    "/campaigns",
    response_model=CampaignOut,
    status_code=201,
    openapi_extra=access("analytical.campaign:create"),
)
def create_campaign(
    body: CampaignIn,
    principal: Principal = Depends(require_permission("analytical.campaign:create")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> CampaignOut:
    """Create a draft campaign on a saved segment."""
    try:
        campaign = campaigns.create_campaign(
            session,
            crm,
            body.name,
            body.segment_id,
            body.control_percent,
            body.response_days,
            principal.user.id,
        )
    except segments.Invalid as exc:
        raise invalid(exc.errors) from None
    return _campaign_out(campaign)


@router.get(
    "/campaigns/{campaign_id}",
    response_model=CampaignOut,
    openapi_extra=access("analytical.campaign:read"),
)
async def read_campaign(
    campaign_id: Id,
    _: Principal = Depends(require_permission("analytical.campaign:read")),
    session: Session = Depends(read_session),
) -> CampaignOut:
    """One campaign with its group sizes."""
    return _campaign_out(_campaign(session, campaign_id))


@router.post(
    "/campaigns/{campaign_id}/freeze",
    response_model=CampaignOut,
    responses={409: {"description": "stale version, or frozen already"}},
    openapi_extra=access("analytical.campaign:create"),
)
def freeze_campaign(
    campaign_id: Id,
    body: VersionIn,
    _: Principal = Depends(require_permission("analytical.campaign:create")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Evaluate the segment now and freeze the list, holding out the control group."""
    campaign = _campaign(session, campaign_id)

    def change() -> CampaignOut:
        campaigns.freeze(session, crm, campaign, body.version)
        return _campaign_out(campaign)

    return _guarded(crm, "campaign", campaign_id, change)


@router.post(
    "/campaigns/{campaign_id}/send",
    response_model=CampaignOut,
    responses={409: {"description": "stale version, not frozen, or handed over already"}},
    openapi_extra=access("analytical.campaign:send"),
)
def send_campaign(
    campaign_id: Id,
    body: SendIn,
    principal: Principal = Depends(require_permission("analytical.campaign:send")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Hand the targets to a new draft mailing (``mailing_id``); schedule it in mailings."""
    campaign = _campaign(session, campaign_id)

    def change() -> CampaignOut:
        campaigns.send_to_mailing(
            crm,
            session,
            campaign,
            body.template_id,
            body.scheduled_at,
            principal.user,
            body.version,
        )
        return _campaign_out(campaign)

    return _guarded(crm, "campaign", campaign_id, change)


@router.get(
    "/campaigns/{campaign_id}/results",
    response_model=ResultsOut,
    responses={409: {"description": "the campaign is not frozen yet"}},
    openapi_extra=access("analytical.campaign:read"),
)
async def campaign_results(
    campaign_id: Id,
    _: Principal = Depends(require_permission("analytical.campaign:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> ResultsOut:
    """Response of targets against control; 409 before the campaign is frozen."""
    found = campaigns.results(session, crm, _campaign(session, campaign_id))
    if found is None:
        raise conflict(f"campaign {campaign_id} is not frozen yet: no results")
    return ResultsOut(**found.as_dict())
