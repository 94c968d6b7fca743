"""``/analytical/segments`` (saved segments and the segment builder with a live preview) and
``/analytical/campaigns`` (campaigns, freezing, hand-off to a mailing, results).

Forms carry the CSRF token and answer with a redirect (POST-redirect-GET, ``flash_redirect``);
invalid input shows the form again with status 422 and the field named. The preview lists only
the customers the user's record rule lets them see.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError
from starlette.datastructures import FormData, QueryParams

from core import audit, records
from core.errors import Conflict, Invalid, StaleVersion
from core.i18n import N_, Msg, parse_amount
from core.money import Money, minor_digits
from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import UIContext, flash_redirect, read_flash, ui_principal
from plugins.analytical import campaigns, segments
from plugins.analytical.classes import CLASS_LABELS
from plugins.analytical.models import Campaign, Segment
from plugins.analytical.pages import analytics_page, new_router, require
from plugins.analytical.views import SEGMENT_LABELS

router = new_router()

SEGMENT_READ, SEGMENT_CREATE = "analytical.segment:read", "analytical.segment:create"
SEGMENT_UPDATE = "analytical.segment:update"
CAMPAIGN_READ, CAMPAIGN_CREATE = "analytical.campaign:read", "analytical.campaign:create"
CAMPAIGN_SEND = "analytical.campaign:send"
STATUS_LABELS = {"draft": N_("Draft"), "frozen": N_("Frozen"), "sent": N_("Handed to a mailing")}
CHOICES = ("rfm_segments", "classes", "tiers")
TEXTS = (
    "tags",
    "countries",
    "bought_products",
    "not_bought_products",
    "bought_categories",
    "not_bought_categories",
)
DAYS = ("last_purchase_within_days", "last_purchase_before_days")
AMOUNTS = ("clv_min", "clv_max")


# --- the builder form <-> a definition ----------------------------------------------------------


def _amount(text: str, name: str, language: str, currency: str) -> int:
    """Minor units of an amount typed in major units; ``Invalid`` naming the field."""
    try:
        return Money.parse(parse_amount(text, language), currency).amount
    except ValueError:
        raise Invalid({f"definition.{name}": "enter an amount such as 1250000"}) from None


def _whole(text: str, name: str) -> int:
    if not text.isdigit():
        raise Invalid({f"definition.{name}": "enter a whole number of days"})
    return int(text)


def definition_from(data: FormData | QueryParams, language: str, currency: str) -> dict[str, Any]:
    """The definition a builder form describes, validated; ``Invalid`` naming the field."""
    raw: dict[str, Any] = {}
    for name in CHOICES:
        if values := [str(v) for v in data.getlist(name) if str(v).strip()]:
            raw[name] = values
    for name in TEXTS:
        if values := [v.strip() for v in str(data.get(name) or "").split(",") if v.strip()]:
            raw[name] = values
    for name in AMOUNTS:
        if text := str(data.get(name) or "").strip():
            raw[name] = _amount(text, name, language, currency)
    for name in DAYS:
        if text := str(data.get(name) or "").strip():
            raw[name] = _whole(text, name)
    return segments.clean(raw)


def form_values(definition: dict[str, Any], currency: str) -> dict[str, Any]:
    """What the builder's fields show for ``definition``."""
    values: dict[str, Any] = {name: set(definition.get(name, ())) for name in CHOICES}
    values.update({name: ", ".join(definition.get(name, ())) for name in TEXTS})
    for name in AMOUNTS:
        minor = definition.get(name)
        values[name] = "" if minor is None else str(Decimal(minor).scaleb(-minor_digits(currency)))
    values.update({name: definition.get(name, "") for name in DAYS})
    return values


def typed_values(data: FormData | QueryParams) -> dict[str, Any]:
    """The builder's fields as typed, to show a refused form again unchanged."""
    values: dict[str, Any] = {name: set(map(str, data.getlist(name))) for name in CHOICES}
    values.update({name: str(data.get(name) or "") for name in (*TEXTS, *AMOUNTS, *DAYS)})
    return values


def _has_criteria(data: FormData | QueryParams) -> bool:
    return any(str(data.get(name) or "").strip() for name in (*CHOICES, *TEXTS, *AMOUNTS, *DAYS))


# --- segments -----------------------------------------------------------------------------------


def _crm(request: Request) -> Any:
    return request.app.state.crm


def _currency(request: Request) -> str:
    return _crm(request).settings.default_currency


def _preview(
    request: Request, principal: Principal, session: Session, definition: dict[str, Any]
) -> segments.Preview:
    visible = records.customer_condition(_crm(request), principal.user)
    return segments.preview(session, definition, visible, _crm(request))


def _builder(
    request: Request,
    principal: Principal,
    segment: Segment | None,
    definition: dict[str, Any] | None,
    error: str | None = None,
    status_code: int = 200,
    typed: dict[str, Any] | None = None,
    **extra: Any,
) -> HTMLResponse:
    """The builder form (new or saved segment) with the preview of ``definition``; ``typed``
    shows a refused form's fields as they were typed."""
    flash = read_flash(request)
    with _crm(request).db.session() as session:
        ctx = UIContext(request, principal, session)
        found = (
            _preview(request, principal, session, definition) if definition is not None else None
        )
        return analytics_page(
            ctx,
            "analytical/segment_form.html",
            status_code=status_code,
            segment=segment,
            values=typed or form_values(definition or {}, _currency(request)),
            preview=found,
            rfm_labels=SEGMENT_LABELS,
            class_labels=CLASS_LABELS,
            tiers=segments.TIERS,
            currency=_currency(request),
            message=flash["message"],
            error=error or flash["error"],
            **extra,
        )


@router.get("/segments", response_class=HTMLResponse, openapi_extra=access(SEGMENT_READ))
def segments_page(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """Saved segments, with links to the builder."""
    require(principal, SEGMENT_READ)
    with _crm(request).db.session() as session:
        ctx = UIContext(request, principal, session)
        rows = list(session.scalars(select(Segment).order_by(Segment.name)))
        return analytics_page(
            ctx,
            "analytical/segments.html",
            rows=rows,
            rfm_labels=SEGMENT_LABELS,
            **read_flash(request),
        )


@router.get("/segments/new", response_class=HTMLResponse, openapi_extra=access(SEGMENT_READ))
def new_segment(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """The builder; with criteria in the query (the Preview button), their preview."""
    require(principal, SEGMENT_READ)
    params = request.query_params
    if not _has_criteria(params):
        return _builder(request, principal, None, None, name=params.get("name", ""))
    try:
        definition = definition_from(params, principal.user.language, _currency(request))
    except Invalid as exc:
        return _builder(request, principal, None, None, str(exc), 422, typed_values(params))
    return _builder(request, principal, None, definition, name=params.get("name", ""))


@router.get("/segments/preview", response_class=HTMLResponse, openapi_extra=access(SEGMENT_READ))
def preview_fragment(request: Request, principal: Principal = Depends(ui_principal)) -> Response:
    """The live preview (an htmx fragment): how many customers the form's criteria match."""
    require(principal, SEGMENT_READ)
    with _crm(request).db.session() as session:
        ctx = UIContext(request, principal, session)
        try:
            definition = definition_from(
                request.query_params, principal.user.language, _currency(request)
            )
        except Invalid as exc:
            html = ctx.render(
                "analytical/segment_preview.html", preview=None, preview_error=str(exc)
            )
            return HTMLResponse(html, status_code=422)
        found = _preview(request, principal, session, definition)
        return HTMLResponse(
            ctx.render("analytical/segment_preview.html", preview=found, preview_error=None)
        )


async def _form(request: Request) -> FormData:
    return await request.form()


@contextmanager
def _writing(request: Request) -> Iterator[Session]:
    """A write transaction whose audit rows name the page's signed-in user."""
    with _crm(request).db.write() as session:
        session.info[audit.REQUEST_KEY] = request
        yield session


@router.post("/segments", openapi_extra=access(SEGMENT_CREATE))
async def create_segment(
    request: Request, principal: Principal = Depends(ui_principal)
) -> Response:
    """Save a new segment; invalid input shows the form again (422)."""
    require(principal, SEGMENT_CREATE)
    form = await _form(request)
    name = str(form.get("name") or "")
    try:
        definition = definition_from(form, principal.user.language, _currency(request))
        with _writing(request) as session:
            segment = segments.create_segment(
                session, name, definition, str(form.get("description") or ""), principal.user.id
            )
            segment_id = segment.id
    except (Invalid, Conflict) as exc:
        return _builder(
            request, principal, None, None, str(exc), 422, typed_values(form), name=name
        )
    return flash_redirect(
        request, f"/analytical/segments/{segment_id}", message=Msg(N_("Saved %(name)s."), name=name)
    )


def _segment(session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no segment {segment_id}")
    return segment


@router.get(
    "/segments/{segment_id:int}", response_class=HTMLResponse, openapi_extra=access(SEGMENT_READ)
)
def segment_page(
    request: Request, segment_id: int, principal: Principal = Depends(ui_principal)
) -> HTMLResponse:
    """A saved segment in the builder, with how many customers it holds now."""
    require(principal, SEGMENT_READ)
    with _crm(request).db.session() as session:
        segment = _segment(session, segment_id)
        session.expunge(segment)
    return _builder(request, principal, segment, segment.definition, name=segment.name)


@router.post("/segments/{segment_id:int}", openapi_extra=access(SEGMENT_UPDATE))
async def update_segment(
    request: Request, segment_id: int, principal: Principal = Depends(ui_principal)
) -> Response:
    """Save changes to a segment read at the form's version (someone else's change wins)."""
    require(principal, SEGMENT_UPDATE)
    form = await _form(request)
    here = f"/analytical/segments/{segment_id}"
    values = {"name": str(form.get("name") or ""), "description": form.get("description")}
    try:
        values["definition"] = definition_from(form, principal.user.language, _currency(request))
        with _writing(request) as session:
            segment = _segment(session, segment_id)
            segments.update_segment(session, segment, values, _version(form))
    except Invalid as exc:
        return flash_redirect(request, here, error=str(exc))
    except Conflict as exc:
        return flash_redirect(request, here, error=str(exc))
    except (StaleVersion, StaleDataError):
        return flash_redirect(request, here, error=STALE)
    return flash_redirect(request, here, message=Msg(N_("Saved %(name)s."), name=values["name"]))


STALE = N_("Someone else changed it meanwhile: review the current values and try again.")


def _version(form: FormData) -> int:
    text = str(form.get("version") or "")
    if not text.isdigit():
        raise Invalid({"version": "the form has no version; reload the page"})
    return int(text)


@router.post("/segments/{segment_id:int}/delete", openapi_extra=access(SEGMENT_UPDATE))
async def delete_segment(
    request: Request, segment_id: int, principal: Principal = Depends(ui_principal)
) -> Response:
    """Delete a segment; campaigns keep their frozen lists."""
    require(principal, SEGMENT_UPDATE)
    form = await _form(request)
    try:
        with _writing(request) as session:
            segments.delete_segment(session, _segment(session, segment_id), _version(form))
    except (Invalid, StaleVersion, StaleDataError):
        return flash_redirect(request, f"/analytical/segments/{segment_id}", error=STALE)
    return flash_redirect(request, "/analytical/segments", message=N_("Segment deleted."))


# --- campaigns ----------------------------------------------------------------------------------


def _campaign_list(
    request: Request, principal: Principal, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    from plugins.analytical.config import settings

    crm = _crm(request)
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        flash = read_flash(request)
        return analytics_page(
            ctx,
            "analytical/campaigns.html",
            status_code=status_code,
            rows=list(session.scalars(select(Campaign).order_by(Campaign.id.desc()))),
            segment_names=dict(session.execute(select(Segment.id, Segment.name)).all()),
            defaults=settings(crm),
            status_labels=STATUS_LABELS,
            message=flash["message"],
            error=error or flash["error"],
        )


@router.get("/campaigns", response_class=HTMLResponse, openapi_extra=access(CAMPAIGN_READ))
def campaigns_page(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """Campaigns, newest first, and the form to create one."""
    require(principal, CAMPAIGN_READ)
    return _campaign_list(request, principal)


def _optional_int(form: FormData, name: str) -> int | None:
    text = str(form.get(name) or "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise Invalid({name: "a whole number is needed"})
    return int(text)


@router.post("/campaigns", openapi_extra=access(CAMPAIGN_CREATE))
async def create_campaign(
    request: Request, principal: Principal = Depends(ui_principal)
) -> Response:
    """Create a draft campaign; invalid input shows the list again (422) naming the field."""
    require(principal, CAMPAIGN_CREATE)
    form = await _form(request)
    crm = _crm(request)
    try:
        segment_id = _optional_int(form, "segment_id")
        if segment_id is None:
            raise Invalid({"segment_id": "choose a segment"})
        with _writing(request) as session:
            campaign = campaigns.create_campaign(
                session,
                crm,
                str(form.get("name") or ""),
                segment_id,
                _optional_int(form, "control_percent"),
                _optional_int(form, "response_days"),
                principal.user.id,
            )
            campaign_id = campaign.id
    except Invalid as exc:
        return _campaign_list(request, principal, str(exc), 422)
    return flash_redirect(
        request, f"/analytical/campaigns/{campaign_id}", message=N_("Campaign created.")
    )


def _campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no campaign {campaign_id}")
    return campaign


def results_chart(ctx: UIContext, result: campaigns.Results) -> dict[str, Any]:
    """Response rate (percent) of targets against control."""
    rates = [result.target.rate, result.control.rate]
    return {
        "labels": [ctx.gettext(N_("Targets")), ctx.gettext(N_("Control"))],
        "series": [
            {
                "label": ctx.gettext(N_("Response rate")),
                "data": [None if r is None else round(r * 100, 1) for r in rates],
            }
        ],
        "percent": True,
    }


@router.get(
    "/campaigns/{campaign_id:int}", response_class=HTMLResponse, openapi_extra=access(CAMPAIGN_READ)
)
def campaign_page(
    request: Request, campaign_id: int, principal: Principal = Depends(ui_principal)
) -> HTMLResponse:
    """A campaign: status, group sizes, freeze and hand-off forms, results with the uplift."""
    from plugins.operational.models import MailTemplate

    require(principal, CAMPAIGN_READ)
    crm = _crm(request)
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        campaign = _campaign(session, campaign_id)
        result = campaigns.results(session, crm, campaign)
        segment = session.get(Segment, campaign.segment_id) if campaign.segment_id else None
        return analytics_page(
            ctx,
            "analytical/campaign.html",
            campaign=campaign,
            segment=segment,
            result=result,
            chart=results_chart(ctx, result) if result else None,
            templates=list(session.scalars(select(MailTemplate).order_by(MailTemplate.name))),
            status_labels=STATUS_LABELS,
            currency=crm.settings.default_currency,
            **read_flash(request),
        )


@router.post("/campaigns/{campaign_id:int}/freeze", openapi_extra=access(CAMPAIGN_CREATE))
async def freeze_campaign(
    request: Request, campaign_id: int, principal: Principal = Depends(ui_principal)
) -> Response:
    """Freeze the list now, holding out the control group."""
    require(principal, CAMPAIGN_CREATE)
    form = await _form(request)
    here = f"/analytical/campaigns/{campaign_id}"
    crm = _crm(request)
    try:
        with _writing(request) as session:
            campaign = _campaign(session, campaign_id)
            campaigns.freeze(session, crm, campaign, _version(form))
            counts = {"targets": campaign.targets, "controls": campaign.controls}
    except (Invalid, Conflict) as exc:
        return flash_redirect(request, here, error=str(exc))
    except (StaleVersion, StaleDataError):
        return flash_redirect(request, here, error=STALE)
    text = N_("Frozen: %(targets)s targets, %(controls)s in the control group.")
    return flash_redirect(request, here, message=Msg(text, **counts))


@router.post("/campaigns/{campaign_id:int}/send", openapi_extra=access(CAMPAIGN_SEND))
async def send_campaign(
    request: Request, campaign_id: int, principal: Principal = Depends(ui_principal)
) -> Response:
    """Hand the targets to a new draft mailing with the chosen template."""
    require(principal, CAMPAIGN_SEND)
    form = await _form(request)
    here = f"/analytical/campaigns/{campaign_id}"
    crm = _crm(request)
    try:
        template_id = _optional_int(form, "template_id")
        if template_id is None:
            raise Invalid({"template_id": "choose a mail template"})
        with _writing(request) as session:
            campaign = _campaign(session, campaign_id)
            mailing = campaigns.send_to_mailing(
                crm, session, campaign, template_id, user=principal.user, version=_version(form)
            )
            mailing_id = mailing.id
    except (Invalid, Conflict) as exc:
        return flash_redirect(request, here, error=str(exc))
    except (StaleVersion, StaleDataError):
        return flash_redirect(request, here, error=STALE)
    text = N_("Handed to draft mailing %(id)s: schedule it from the mailings.")
    return flash_redirect(request, here, message=Msg(text, id=mailing_id))
