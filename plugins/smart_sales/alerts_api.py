"""REST endpoints for sales alerts, under ``/api/smart_sales/``.

- ``GET /alerts``: my inbox (``scope=mine``) or my team's (``scope=team``, needs
  ``smart_sales.alert:team``, else 403), filtered by ``state`` (open states by default) and
  ``kind``, sorted by ``priority`` (tier A first, then expected value), ``value`` or ``recent``;
  keyset pages (``cursor`` = ``next_cursor`` of the previous page).
- ``GET /alerts/count``: ``{"count": n, "open": m}``: ``count`` is my alerts waiting for
  action (new or seen: what the navigation badge shows), ``open`` every open one of mine
  (acted included).
- ``GET /alerts/{id}``: one alert; 404 when it does not exist or its customer is hidden. Reading
  changes nothing: ``POST /alerts/{id}/seen`` marks it seen (only its owner's opening counts;
  the inbox and the alert page call it when the owner opens the alert).
- ``POST /alerts/{id}/act`` and ``/alerts/{id}/dismiss`` (``{"reason", "note", "version"}``):
  409 with ``current`` when ``version`` is not the current one, 422 naming the field for a
  bad reason or a closed alert.
- ``GET /customers/{id}/offers``: the customer's next best offers (and open churn alert);
  404 when the customer is hidden.

Read routes are ``async def`` and query synchronously (see ``core.web.deps``); routes that
write are plain ``def``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session

from core import audit, i18n, records
from core.runtime import Crm
from core.web import problems
from core.web.access import access
from core.web.deps import Principal, get_crm, read_session, require_permission
from core.web.inputs import BODY, Id, Version
from plugins.smart_sales import alerts
from plugins.smart_sales.models import DISMISS_REASONS, OPEN_STATES, Alert

router = APIRouter(tags=["smart_sales: alerts"])

READ = alerts.READ
UPDATE = alerts.UPDATE
#: States of an alert still waiting for its owner: what the badge counts.
WAITING_STATES = ("new", "seen")
MAX_LIMIT = 200
STALE = {409: {"description": "stale version (body holds `current`)"}}
INVALID = {422: {"description": "bad reason or note, or the alert is closed (`loc` names it)"}}
HIDDEN = {404: {"description": "no such alert, or its customer is hidden from you"}}

Scope = Literal["mine", "team"]
Sort = Literal["priority", "value", "recent"]
Kind = Literal["cross_sell", "up_sell", "churn"]
State = Literal["new", "seen", "acted", "converted", "dismissed", "expired"]


class AlertOut(BaseModel):
    """An alert: the facts (``reason_data``), and ``headline`` and ``reason`` phrased in the
    signed-in user's language. Money in minor units of ``currency``."""

    id: int
    customer_id: int
    customer_name: str | None
    kind: str
    product_id: int | None
    product_name: str | None
    product_sku: str | None
    from_product_id: int | None
    from_product_name: str | None
    rule_id: int | None
    rule_key: str | None
    run_id: int | None
    owner_id: int | None
    source: str
    state: str
    open: bool
    probability: float
    price_minor: int
    margin_minor: int
    expected_value_minor: int
    currency: str
    value_tier: str | None
    headline: str
    reason: str
    reason_data: dict[str, Any]
    raised_at: dt.datetime
    expires_at: dt.datetime
    seen_at: dt.datetime | None
    acted_at: dt.datetime | None
    acted_by: int | None
    closed_at: dt.datetime | None
    dismissed_by: int | None
    dismiss_reason: str | None
    dismiss_note: str | None
    converted_order_id: int | None
    credited_minor: int
    version: int


class AlertPage(BaseModel):
    """A page of alerts; pass ``next_cursor`` as ``cursor`` for the next one."""

    items: list[AlertOut]
    next_cursor: str | None


class CountOut(BaseModel):
    """``count``: my alerts waiting for action (new, seen), the navigation badge;
    ``open``: all my open alerts (acted ones too)."""

    count: int
    open: int


class ActIn(BaseModel):
    """The ``version`` of the alert the client read (optional: without it, no check)."""

    model_config = BODY
    version: Version | None = Field(None, ge=1)


class DismissIn(ActIn):
    """Why the alert is dismissed: ``reason`` one of ``not_relevant``, ``already_has``,
    ``bad_timing``, ``customer_declined``, ``other``; an optional ``note``."""

    reason: Literal[*DISMISS_REASONS]
    note: str | None = Field(None, max_length=alerts.NOTE_LIMIT)


class OffersOut(BaseModel):
    """A customer's next best offers, highest expected value first, and their open churn
    alert if any."""

    customer_id: int
    items: list[AlertOut]
    churn: AlertOut | None


# --- shared with the pages -------------------------------------------------------------------


class BadCursor(ValueError):
    """A cursor this listing did not produce."""


def customer_names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    """Display names of the customers ``ids``."""
    from core.customers.models import Customer

    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(Customer.id, Customer.display_name).where(Customer.id.in_(wanted))
    ).all()
    return dict(rows)


def dicts(session: Session, rows: list[Alert]) -> list[dict[str, Any]]:
    """``alerts.as_dict`` of each row, with its customer's name (two queries in all)."""
    products = alerts.products_for(session, rows)
    names = customer_names(session, (a.customer_id for a in rows))
    return [alerts.as_dict(a, products, names.get(a.customer_id)) for a in rows]


def _rank(alert: Alert) -> int:
    return alerts.TIER_RANK.get(alert.value_tier or "", len(alerts.TIER_RANK))


def cursor_of(alert: Alert, sort: str) -> str:
    """The cursor that continues a listing sorted by ``sort`` after ``alert``."""
    if sort == "priority":
        values: list[Any] = [_rank(alert), alert.expected_value_minor, alert.id]
    elif sort == "value":
        values = [alert.expected_value_minor, alert.id]
    else:
        values = [alert.raised_at.isoformat(), alert.id]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode(cursor: str, sort: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise BadCursor("this cursor is not valid; start from the first page") from None
    size = 3 if sort == "priority" else 2
    if not isinstance(values, list) or len(values) != size:
        raise BadCursor("this cursor does not belong to this sort; start from the first page")
    if sort == "recent":
        try:
            moment = dt.datetime.fromisoformat(str(values[0]))
        except ValueError:
            raise BadCursor("this cursor is not valid; start from the first page") from None
        if moment.tzinfo is None:
            raise BadCursor("this cursor is not valid; start from the first page")
        values[0] = moment
        numbers = values[1:]
    else:
        numbers = values
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in numbers):
        raise BadCursor("this cursor is not valid; start from the first page")
    return values


def _after(sort: str, values: list[Any]) -> ColumnElement[bool]:
    """Rows after the cursor in ``inbox_query``'s order for ``sort``."""
    ev, ident = Alert.expected_value_minor, Alert.id
    if sort == "priority":
        rank, value, last = values
        tier = alerts.tier_rank()
        return or_(
            tier > rank,
            and_(tier == rank, or_(ev < value, and_(ev == value, ident > last))),
        )
    if sort == "value":
        value, last = values
        return or_(ev < value, and_(ev == value, ident > last))
    moment, last = values
    return or_(Alert.raised_at < moment, and_(Alert.raised_at == moment, ident < last))


def page_of(
    session: Session,
    query: Select[Any],
    sort: str,
    cursor: str | None,
    limit: int,
) -> tuple[list[Alert], str | None]:
    """One keyset page of ``query`` (an ``alerts.inbox_query`` sorted by ``sort``) after
    ``cursor``; the rows and the cursor of the next page (``None`` on the last one).
    Raises ``BadCursor``."""
    if cursor:
        query = query.where(_after(sort, _decode(cursor, sort)))
    rows = list(session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, cursor_of(rows[-1], sort) if more and rows else None


def waiting_count(crm: Crm | None, session: Session, user: Any) -> int:
    """My visible alerts waiting for action (new or seen): the navigation badge."""
    return alerts.open_count(crm, session, user, WAITING_STATES)


def open_churn(session: Session, customer_id: int) -> Alert | None:
    """The customer's open churn alert (there is at most one: ``open_key`` is unique)."""
    key = alerts.alert_key(customer_id, None)
    return session.scalars(select(Alert).where(Alert.open_key == key)).first()


def seen_by_owner(session: Session, alert: Alert, user: Any) -> bool:
    """Mark ``alert`` seen when ``user`` owns it (a manager reading a seller's alert does not
    count as the seller having seen it); ``True`` when it changed."""
    if alert.owner_id is None or alert.owner_id != user.id:
        return False
    return alerts.mark_seen(session, alert, user)


# --- routes ----------------------------------------------------------------------------------


def _invalid(exc: alerts.AlertError, where: str = "body") -> HTTPException:
    return problems.invalid({exc.field or "alert": str(exc)}, where)


def _speak(principal: Principal) -> None:
    """Phrase headlines and reasons in the user's language (the API's only prose)."""
    i18n.set_language(principal.user.language)


def _get(crm: Crm, session: Session, principal: Principal, alert_id: int) -> Alert:
    found = alerts.get_visible(crm, session, principal.user, alert_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert {alert_id}")
    return found


def _one(session: Session, alert: Alert) -> AlertOut:
    return AlertOut(**dicts(session, [alert])[0])


def _stale(crm: Crm, principal: Principal, alert_id: int) -> JSONResponse:
    """409 with the alert as committed now (read apart from the failed transaction)."""
    with crm.db.session() as fresh:
        alert = _get(crm, fresh, principal, alert_id)
        return problems.stale("alert", alert_id, _one(fresh, alert))


def _transition(request: Request, principal: Principal, alert_id: int, change: Any) -> Any:
    """Run ``change(session, alert)`` in its own transaction (rolled back on error) and answer
    with the alert: 422 for an ``AlertError``, 409 with ``current`` when stale."""
    crm = request.app.state.crm
    _speak(principal)
    try:
        with crm.db.write() as session:
            session.info[audit.REQUEST_KEY] = request
            alert = _get(crm, session, principal, alert_id)
            change(session, alert)
            return _one(session, alert)
    except alerts.AlertError as exc:
        raise _invalid(exc) from None
    except alerts.StaleAlert:
        return _stale(crm, principal, alert_id)


@router.get("/alerts", response_model=AlertPage, openapi_extra=access(READ))
async def list_alerts(
    scope: Scope = "mine",
    state: list[State] | None = Query(None, description="states (open ones by default)"),
    kind: Kind | None = None,
    sort: Sort = "priority",
    cursor: str | None = Query(None, max_length=200, description="next_cursor of a page"),
    limit: int = Query(50, ge=1, le=MAX_LIMIT),
    principal: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> AlertPage:
    """My alerts (``mine``) or my team's (``team``, needs ``smart_sales.alert:team``), of the
    customers I may see."""
    _speak(principal)
    if scope == "team" and not principal.can(alerts.TEAM):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"permission {alerts.TEAM} required")
    try:
        query = alerts.inbox_query(
            crm, principal.user, scope=scope, states=state or OPEN_STATES, kind=kind, sort=sort
        )
        rows, next_cursor = page_of(session, query, sort, cursor, limit)
    except alerts.AlertError as exc:
        raise _invalid(exc, "query") from None
    except BadCursor as exc:
        raise problems.invalid({"cursor": str(exc)}, "query") from None
    return AlertPage(items=[AlertOut(**d) for d in dicts(session, rows)], next_cursor=next_cursor)


@router.get("/alerts/count", response_model=CountOut, openapi_extra=access(READ))
async def count_alerts(
    principal: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> CountOut:
    """How many of my alerts wait for action (``count``, the badge) and are open (``open``)."""
    return CountOut(
        count=waiting_count(crm, session, principal.user),
        open=alerts.open_count(crm, session, principal.user),
    )


@router.get(
    "/alerts/{alert_id}",
    response_model=AlertOut,
    responses=HIDDEN,
    openapi_extra=access(READ, scoped=True),
)
async def read_alert(
    alert_id: Id,
    principal: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> AlertOut:
    """One alert (reading it changes nothing; ``POST .../seen`` marks it seen)."""
    _speak(principal)
    return _one(session, _get(crm, session, principal, alert_id))


@router.post(
    "/alerts/{alert_id}/seen",
    response_model=AlertOut,
    responses={**HIDDEN, **STALE},
    openapi_extra=access(UPDATE, scoped=True),
)
def see_alert(
    request: Request,
    alert_id: Id,
    principal: Principal = Depends(require_permission(UPDATE)),
) -> Any:
    """Its owner opened the alert: a new alert becomes seen (others' calls change nothing)."""
    return _transition(
        request,
        principal,
        alert_id,
        lambda session, alert: seen_by_owner(session, alert, principal.user),
    )


@router.post(
    "/alerts/{alert_id}/act",
    response_model=AlertOut,
    responses={**HIDDEN, **STALE, **INVALID},
    openapi_extra=access(UPDATE, scoped=True),
)
def act_on_alert(
    request: Request,
    alert_id: Id,
    body: ActIn | None = None,
    principal: Principal = Depends(require_permission(UPDATE)),
) -> Any:
    """I acted on the alert (offered the product, called the customer): new/seen -> acted."""
    version = body.version if body else None
    return _transition(
        request,
        principal,
        alert_id,
        lambda session, alert: alerts.act(session, alert, principal.user, version),
    )


@router.post(
    "/alerts/{alert_id}/dismiss",
    response_model=AlertOut,
    responses={**HIDDEN, **STALE, **INVALID},
    openapi_extra=access(UPDATE, scoped=True),
)
def dismiss_alert(
    request: Request,
    alert_id: Id,
    body: DismissIn,
    principal: Principal = Depends(require_permission(UPDATE)),
) -> Any:
    """Close an open alert with a reason; the same offer is not raised again for a while
    (``snooze_days``)."""
    return _transition(
        request,
        principal,
        alert_id,
        lambda session, alert: alerts.dismiss(
            session, alert, principal.user, body.reason, body.note, body.version
        ),
    )


@router.get(
    "/customers/{customer_id}/offers",
    response_model=OffersOut,
    responses={404: {"description": "no such customer, or hidden from you"}},
    openapi_extra=access(READ, scoped=True),
)
async def customer_offers(
    customer_id: Id,
    limit: int | None = Query(None, ge=1, le=50, description="default: setting offers_shown"),
    principal: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> OffersOut:
    """The customer's next best offers by expected value, and their open churn alert."""
    _speak(principal)
    if not records.can_see_customer(crm, session, principal.user, customer_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer {customer_id}")
    offers = alerts.next_best_offers(crm, session, customer_id, limit)
    churn = open_churn(session, customer_id)
    out = dicts(session, [*offers, *([churn] if churn else [])])
    return OffersOut(
        customer_id=customer_id,
        items=[AlertOut(**d) for d in out[: len(offers)]],
        churn=AlertOut(**out[-1]) if churn else None,
    )
