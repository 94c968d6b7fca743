"""Writing deliveries in the caller's transaction (:func:`core.webhooks.publish`).

The active endpoints are read once per transaction and kept in ``session.info``, so that
publishing costs one query per transaction, and nothing but building the body when no endpoint
listens. After the transaction commits, a running background deliverer is woken.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session, SessionTransaction

from core.db import utcnow
from core.webhooks import ALL_EVENTS, declared_events
from core.webhooks.models import PENDING, WebhookDelivery, WebhookEndpoint

if TYPE_CHECKING:
    from core.runtime import Crm

_ENDPOINTS = "crm_webhook_endpoints"
_WAKE = "crm_webhook_wake"


def iso(moment: dt.datetime) -> str:
    """``moment`` in UTC as ISO 8601 with milliseconds and a ``Z``."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def body(event_id: str, event_name: str, created_at: dt.datetime, data: Mapping[str, Any]) -> str:
    """The JSON body of a delivery; ``ValueError`` when ``data`` cannot be sent as JSON."""
    if not isinstance(data, Mapping):
        raise ValueError(f"webhook event {event_name!r}: data must be a mapping, not {data!r}")
    payload = {
        "id": event_id,
        "type": event_name,
        "created_at": iso(created_at),
        "data": dict(data),
    }
    try:
        return json.dumps(
            payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_moment
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"webhook event {event_name!r}: data is not JSON-serialisable ({exc}); send money"
            " as integer minor units with a currency code"
        ) from None


def _moment(value: Any) -> str:
    """Dates and times in a payload, as ISO 8601; anything else JSON cannot carry is refused."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def forget_endpoints(session: Session) -> None:
    """Drop the transaction's cached endpoints (after endpoints were changed in it)."""
    session.info.pop(_ENDPOINTS, None)


def subscribers(session: Session, event_name: str) -> list[int]:
    """Ids of the active endpoints subscribed to ``event_name`` (read once per transaction)."""
    endpoints: list[tuple[int, frozenset[str]]] | None = session.info.get(_ENDPOINTS)
    if endpoints is None:
        rows = session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.events)
            .where(WebhookEndpoint.active.is_(True))
            .order_by(WebhookEndpoint.id)
        ).all()
        endpoints = [(row.id, frozenset(row.events or ())) for row in rows]
        session.info[_ENDPOINTS] = endpoints
    return [i for i, events in endpoints if event_name in events or ALL_EVENTS in events]


def add_deliveries(
    session: Session,
    crm: Crm,
    endpoint_ids: list[int],
    event_name: str,
    data: Mapping[str, Any],
) -> str:
    """One pending delivery of a new event per endpoint, due now; returns the event id.

    The body is built (and ``data`` checked) even when no endpoint listens, so that a payload
    that cannot be sent fails the publishing module's own tests, not a customer's business
    transaction on the day an admin registers an endpoint.
    """
    created = utcnow()
    event_id = str(uuid.uuid4())
    text = body(event_id, event_name, created, data)
    if endpoint_ids:
        session.execute(
            insert(WebhookDelivery),
            [
                {
                    "endpoint_id": endpoint_id,
                    "event_id": event_id,
                    "event": event_name,
                    "body": text,
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_at": created,
                    "created_at": created,
                }
                for endpoint_id in endpoint_ids
            ],
        )
        wake_after_commit(session, crm)
    return event_id


def queue(session: Session, crm: Crm, event_name: str, data: Mapping[str, Any]) -> None:
    """See :func:`core.webhooks.publish`."""
    if event_name not in declared_events(crm):
        known = ", ".join(sorted(declared_events(crm)))
        raise ValueError(
            f"webhook event {event_name!r} is not declared by the core or an enabled module"
            f" (declared: {known})"
        )
    add_deliveries(session, crm, subscribers(session, event_name), event_name, data)


def wake_after_commit(session: Session, crm: Crm) -> None:
    """Wake the background deliverer (if this process runs one) once ``session`` commits."""
    session.info[_WAKE] = crm


@event.listens_for(Session, "after_commit")
def _wake(session: Session) -> None:
    crm = session.info.pop(_WAKE, None)
    if crm is not None:
        from core.webhooks import delivery

        delivery.wake(crm)


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    # the outermost transaction only: endpoints read in it may change in the next one
    if transaction.parent is None:
        session.info.pop(_ENDPOINTS, None)
        session.info.pop(_WAKE, None)
