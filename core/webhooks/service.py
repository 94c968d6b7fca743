"""Managing webhook endpoints and their deliveries, in the caller's transaction.

Used by ``crm webhooks`` and the admin page. Every refusal is a :class:`WebhookError` whose
message names the field (``url``, ``events``, ``description``, ``status``) and the reason;
nothing is changed then. Endpoints are audited (their secret left out); rotating a secret is
recorded in the audit log too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core import audit
from core.db import utcnow
from core.webhooks import ALL_EVENTS, PING, declared_events
from core.webhooks.errors import WebhookError
from core.webhooks.models import (
    DELIVERED,
    FAILED,
    PENDING,
    STATUSES,
    WebhookDelivery,
    WebhookEndpoint,
)
from core.webhooks.outbox import add_deliveries, forget_endpoints, wake_after_commit
from core.webhooks.signing import new_secret
from core.webhooks.targets import check_target

if TYPE_CHECKING:
    from core.runtime import Crm

__all__ = [
    "WebhookError",
    "add_endpoint",
    "delivery_data",
    "endpoint_data",
    "get_delivery",
    "get_endpoint",
    "list_deliveries",
    "list_endpoints",
    "redeliver",
    "remove_endpoint",
    "rotate_secret",
    "send_ping",
    "update_endpoint",
]

MAX_DESCRIPTION = 200


def _url(crm: Crm, url: str) -> str:
    text = (url or "").strip()
    check_target(text, crm.settings.webhooks_allow_private)
    return text


def _events(crm: Crm, events: Iterable[str]) -> list[str]:
    if isinstance(events, str):
        events = [events]
    chosen: list[str] = []
    for name in events:
        name = str(name).strip()
        if name and name not in chosen:
            chosen.append(name)
    if not chosen:
        raise WebhookError(f"events: choose at least one event, or {ALL_EVENTS!r} for all")
    known = declared_events(crm)
    unknown = [name for name in chosen if name != ALL_EVENTS and name not in known]
    if unknown:
        raise WebhookError(
            f"events: unknown event {', '.join(map(repr, unknown))};"
            f" declared: {', '.join(sorted(known))} (or {ALL_EVENTS!r} for all)"
        )
    return chosen


def _description(description: str) -> str:
    text = (description or "").strip()
    if len(text) > MAX_DESCRIPTION:
        raise WebhookError(f"description: at most {MAX_DESCRIPTION} characters, got {len(text)}")
    return text


def add_endpoint(
    session: Session,
    crm: Crm,
    url: str,
    events: list[str],
    description: str = "",
    created_by_id: int | None = None,
) -> tuple[WebhookEndpoint, str]:
    """Register ``url`` for ``events`` (names, or ``"*"``); returns it and its new secret.

    The URL is checked as at delivery time (``core.webhooks.targets``). The secret is shown
    to the admin once; the receiver needs it to verify signatures.
    """
    endpoint = WebhookEndpoint(
        url=_url(crm, url),
        events=_events(crm, events),
        description=_description(description),
        secret=new_secret(),
        active=True,
        created_by_id=created_by_id,
    )
    session.add(endpoint)
    session.flush()
    forget_endpoints(session)
    return endpoint, endpoint.secret


def get_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    """The endpoint ``endpoint_id``; ``WebhookError`` when there is none."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise WebhookError(f"webhook endpoint {endpoint_id} does not exist")
    return endpoint


def update_endpoint(
    session: Session,
    crm: Crm,
    endpoint_id: int,
    *,
    url: str | None = None,
    events: list[str] | None = None,
    description: str | None = None,
    active: bool | None = None,
) -> WebhookEndpoint:
    """Change what is given of an endpoint; deactivating it pauses its deliveries."""
    endpoint = get_endpoint(session, endpoint_id)
    changes: dict[str, Any] = {}
    if url is not None:
        changes["url"] = _url(crm, url)
    if events is not None:
        changes["events"] = _events(crm, events)
    if description is not None:
        changes["description"] = _description(description)
    if active is not None:
        changes["active"] = bool(active)
    for name, value in changes.items():
        setattr(endpoint, name, value)
    session.flush()
    forget_endpoints(session)
    if changes.get("active"):
        wake_after_commit(session, crm)
    return endpoint


def remove_endpoint(session: Session, endpoint_id: int) -> None:
    """Delete an endpoint with its deliveries, pending ones included."""
    endpoint = get_endpoint(session, endpoint_id)
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    session.delete(endpoint)
    session.flush()
    forget_endpoints(session)


def rotate_secret(session: Session, endpoint_id: int) -> str:
    """Give the endpoint a new secret and return it; requests are signed with it from now on
    (deliveries still pending included)."""
    endpoint = get_endpoint(session, endpoint_id)
    endpoint.secret = new_secret()
    session.flush()
    audit.record(
        session,
        "rotate_secret",
        audit.model_name(endpoint),
        endpoint.id,
        detail="webhook signing secret replaced",
    )
    return endpoint.secret


def list_endpoints(session: Session) -> list[WebhookEndpoint]:
    """Every endpoint, oldest first."""
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def list_deliveries(
    session: Session,
    endpoint_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[WebhookDelivery]:
    """Deliveries, newest first: of one endpoint, in one status, older than ``before_id``."""
    if status is not None and status not in STATUSES:
        raise WebhookError(f"status: {status!r} is not one of {', '.join(STATUSES)}")
    if not 1 <= limit <= 1000:
        raise WebhookError(f"limit: must be between 1 and 1000, got {limit}")
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if before_id is not None:
        query = query.where(WebhookDelivery.id < before_id)
    return list(session.scalars(query))


def get_delivery(session: Session, delivery_id: int) -> WebhookDelivery:
    """The delivery ``delivery_id``; ``WebhookError`` when there is none."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise WebhookError(f"webhook delivery {delivery_id} does not exist")
    return delivery


def _require_active(endpoint: WebhookEndpoint) -> None:
    if not endpoint.active:
        raise WebhookError(f"webhook endpoint {endpoint.id} is inactive; activate it first")


def redeliver(session: Session, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again, due now.

    A ``delivered`` or ``failed`` delivery is copied into a new pending one (same event id and
    body, so the receiver can tell it is the same event), and the copy is returned; a pending
    one is made due now. A delivery being sent at this moment is refused.
    """
    original = get_delivery(session, delivery_id)
    _require_active(get_endpoint(session, original.endpoint_id))
    now = utcnow()
    if original.status == PENDING:
        if original.locked_until is not None and original.locked_until > now:
            raise WebhookError(f"webhook delivery {delivery_id} is being sent right now")
        original.next_attempt_at = now
        session.flush()
        return original
    if original.status not in (DELIVERED, FAILED):
        raise WebhookError(f"webhook delivery {delivery_id} has an unknown status")
    copy = WebhookDelivery(
        endpoint_id=original.endpoint_id,
        event_id=original.event_id,
        event=original.event,
        body=original.body,
        status=PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(copy)
    session.flush()
    return copy


def send_ping(session: Session, crm: Crm, endpoint_id: int) -> WebhookDelivery:
    """Queue a ``ping`` event for this endpoint only (whatever it subscribes to)."""
    endpoint = get_endpoint(session, endpoint_id)
    _require_active(endpoint)
    event_id = add_deliveries(session, crm, [endpoint.id], PING, {"endpoint_id": endpoint.id})
    return session.scalars(
        select(WebhookDelivery).where(
            WebhookDelivery.event_id == event_id, WebhookDelivery.endpoint_id == endpoint.id
        )
    ).one()


def endpoint_data(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """An endpoint as plain data, without its secret."""
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": list(endpoint.events or ()),
        "description": endpoint.description,
        "active": endpoint.active,
        "created_at": endpoint.created_at.isoformat() if endpoint.created_at else None,
        "updated_at": endpoint.updated_at.isoformat() if endpoint.updated_at else None,
    }


def delivery_data(delivery: WebhookDelivery) -> dict[str, Any]:
    """A delivery as plain data (its body left out)."""

    def when(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": delivery.id,
        "endpoint_id": delivery.endpoint_id,
        "event": delivery.event,
        "event_id": delivery.event_id,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": when(delivery.next_attempt_at) if delivery.status == PENDING else None,
        "last_attempt_at": when(delivery.last_attempt_at),
        "delivered_at": when(delivery.delivered_at),
        "response_status": delivery.response_status,
        "duration_ms": delivery.duration_ms,
        "error": delivery.error,
        "created_at": when(delivery.created_at),
    }
