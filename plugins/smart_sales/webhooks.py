"""The smart-selling module's webhook events and their payloads.

Every alert raised is published (bulk generation included: publishing is a no-op when no
endpoint listens), and every conversion. Payloads carry ids, money as integer minor units with
the currency, ISO 8601 times. The catalogue with examples is docs/webhook-events.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from core.i18n import N_
from core.webhooks import publish

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.runtime import Crm
    from core.webhooks import WebhookEvent

ALERT_RAISED = "alert.raised"
ALERT_CONVERTED = "alert.converted"
#: Alert columns an insert returns for ``alert.raised``, besides id, customer, product, owner,
#: expected value and title.
RAISED_COLUMNS = (
    "kind",
    "currency",
    "probability",
    "price_minor",
    "margin_minor",
    "value_tier",
    "source",
    "raised_at",
    "expires_at",
)


def events() -> list[WebhookEvent]:
    """The events this module declares."""
    from core.webhooks import WebhookEvent

    return [
        WebhookEvent(
            ALERT_RAISED,
            N_("Sales alert raised"),
            "A cross-sell, up-sell or churn alert for a salesperson, with its expected value.",
        ),
        WebhookEvent(
            ALERT_CONVERTED,
            N_("Sales alert converted"),
            "An order fulfilled an alert; the order and the amount credited to the alert.",
        ),
    ]


def raised_payload(row: Any) -> dict[str, Any]:
    """``alert.raised``'s data from a row the alerts' insert returned."""
    return {
        "alert": {
            "id": row.id,
            "kind": row.kind,
            "customer_id": row.customer_id,
            "product_id": row.product_id,
            "owner_id": row.owner_id,
            "title": row.title,
            "currency": row.currency,
            "probability": float(row.probability),
            "price_minor": row.price_minor,
            "margin_minor": row.margin_minor,
            "expected_value_minor": row.expected_value_minor,
            "value_tier": row.value_tier,
            "source": row.source,
            "raised_at": row.raised_at,
            "expires_at": row.expires_at,
        }
    }


def publish_raised(session: Session, crm: Crm, row: Any) -> None:
    """Publish ``alert.raised`` for one inserted alert."""
    publish(session, crm, ALERT_RAISED, raised_payload(row))


def converted_payload(row: Any, order: Mapping[str, Any], credit: int) -> dict[str, Any]:
    """``alert.converted``'s data: the alert (``row``), the order that converted it (an
    ``order_placed`` payload) and what was credited to the alert, in the order's currency."""
    return {
        "alert": {
            "id": row.id,
            "kind": row.kind,
            "customer_id": order["customer_id"],
            "product_id": row.product_id,
            "owner_id": row.owner_id,
            "title": row.title,
        },
        "order_id": order["id"],
        "currency": row.currency,
        "credited_minor": credit,
    }


def publish_converted(
    session: Session, crm: Crm, row: Any, order: Mapping[str, Any], credit: int
) -> None:
    """Publish ``alert.converted`` for an alert ``order`` converted with ``credit``."""
    publish(session, crm, ALERT_CONVERTED, converted_payload(row, order, credit))
