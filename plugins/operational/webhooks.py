"""The operational module's webhook events and their payloads.

Each ``publish_*`` function builds one event's payload (ids, money as integer minor units with
its currency, ISO 8601 times; never survey tokens) and publishes it inside the caller's
transaction. The catalogue with examples is docs/webhook-events.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.i18n import N_

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.runtime import Crm
    from core.webhooks import WebhookEvent
    from plugins.operational.models import Opportunity, Order, Ticket

ORDER_PLACED = "order.placed"
TICKET_OPENED = "ticket.opened"
TICKET_RESOLVED = "ticket.resolved"
DEAL_WON = "deal.won"
DEAL_LOST = "deal.lost"
LINE_FIELDS = (
    "product_id",
    "sku",
    "quantity",
    "unit_price_minor",
    "discount_minor",
    "amount_minor",
)


def events() -> list[WebhookEvent]:
    """The events this module declares."""
    from core.webhooks import WebhookEvent

    return [
        WebhookEvent(
            ORDER_PLACED,
            N_("Order placed"),
            "The order with its total and lines (SKU, quantity, amounts in minor units).",
        ),
        WebhookEvent(TICKET_OPENED, N_("Ticket opened"), "The new ticket and its SLA due times."),
        WebhookEvent(TICKET_RESOLVED, N_("Ticket resolved"), "The ticket, resolved."),
        WebhookEvent(DEAL_WON, N_("Deal won"), "The opportunity moved into a won stage."),
        WebhookEvent(
            DEAL_LOST, N_("Deal lost"), "The opportunity moved into a lost stage, with the reason."
        ),
    ]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _publish(session: Session, crm: Crm, event: str, data: dict[str, Any]) -> None:
    from core.webhooks import publish

    publish(session, crm, event, data)


def order_payload(order: Order, lines: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``order.placed``'s data: the order and its lines as ``create_order`` checked them."""
    return {
        "order": {
            "id": order.id,
            "ref": order.ref,
            "customer_id": order.customer_id,
            "owner_id": order.owner_id,
            "placed_at": _iso(order.placed_at),
            "status": order.status,
            "channel": order.channel,
            "currency": order.currency,
            "total_minor": order.total_minor,
            "lines": [{key: line[key] for key in LINE_FIELDS} for line in lines],
        }
    }


def publish_order_placed(
    session: Session, crm: Crm, order: Order, lines: Sequence[dict[str, Any]]
) -> None:
    """Publish ``order.placed`` for ``order``."""
    _publish(session, crm, ORDER_PLACED, order_payload(order, lines))


def ticket_payload(ticket: Ticket, actor_id: int | None) -> dict[str, Any]:
    """``ticket.opened`` and ``ticket.resolved``'s data: the ticket and who acted."""
    return {
        "ticket": {
            "id": ticket.id,
            "customer_id": ticket.customer_id,
            "subject": ticket.subject,
            "priority": ticket.priority,
            "status": ticket.status,
            "assignee_id": ticket.assignee_id,
            "team_id": ticket.team_id,
            "created_at": _iso(ticket.created_at),
            "first_response_due": _iso(ticket.first_response_due),
            "resolution_due": _iso(ticket.resolution_due),
            "first_responded_at": _iso(ticket.first_responded_at),
            "resolved_at": _iso(ticket.resolved_at),
        },
        "actor_id": actor_id,
    }


def publish_ticket(
    session: Session, crm: Crm, event: str, ticket: Ticket, actor_id: int | None
) -> None:
    """Publish ``ticket.opened`` or ``ticket.resolved`` (``event``) for ``ticket``."""
    _publish(session, crm, event, ticket_payload(ticket, actor_id))


def deal_payload(session: Session, deal: Opportunity, actor_id: int | None) -> dict[str, Any]:
    """``deal.won`` and ``deal.lost``'s data: the opportunity, its lost reason, who acted."""
    from plugins.operational.models import LostReason

    reason = session.get(LostReason, deal.lost_reason_id) if deal.lost_reason_id else None
    return {
        "deal": {
            "id": deal.id,
            "customer_id": deal.customer_id,
            "title": deal.title,
            "stage": deal.stage,
            "currency": deal.currency,
            "expected_revenue_minor": deal.expected_revenue_minor,
            "probability": deal.probability,
            "owner_id": deal.owner_id,
            "team_id": deal.team_id,
            "expected_close": _iso(deal.expected_close),
            "closed_at": _iso(deal.closed_at),
            "lost_reason_id": deal.lost_reason_id,
            "lost_reason": reason.label if reason is not None else None,
        },
        "actor_id": actor_id,
    }


def publish_deal(
    session: Session, crm: Crm, event: str, deal: Opportunity, actor_id: int | None
) -> None:
    """Publish ``deal.won`` or ``deal.lost`` (``event``) for ``deal``."""
    _publish(session, crm, event, deal_payload(session, deal, actor_id))
