"""The operational module's webhook events and their payloads.

Each ``publish_*`` function builds one event's payload (ids, money as integer minor units with
its currency, ISO 8601 times; never survey tokens) and publishes it inside the caller's
transaction. The catalogue with examples is docs/webhook-events.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.i18n import N_
from core.webhooks import publish

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


def order_payload(order: Order, lines: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``order.placed``'s data: what the ``order_placed`` hook receives, plus the owner, with
    the time as ISO 8601."""
    from plugins.operational.orders import placed_payload

    placed = placed_payload(order, lines)
    return {"order": {**placed, "placed_at": placed["placed_at"], "owner_id": order.owner_id}}


def publish_order_placed(
    session: Session, crm: Crm, order: Order, lines: Sequence[dict[str, Any]]
) -> None:
    """Publish ``order.placed`` for ``order``."""
    publish(session, crm, ORDER_PLACED, order_payload(order, lines))


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
            "created_at": ticket.created_at,
            "first_response_due": ticket.first_response_due,
            "resolution_due": ticket.resolution_due,
            "first_responded_at": ticket.first_responded_at,
            "resolved_at": ticket.resolved_at,
        },
        "actor_id": actor_id,
    }


def publish_ticket(
    session: Session, crm: Crm, event: str, ticket: Ticket, actor_id: int | None
) -> None:
    """Publish ``ticket.opened`` or ``ticket.resolved`` (``event``) for ``ticket``."""
    publish(session, crm, event, ticket_payload(ticket, actor_id))


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
            "expected_close": deal.expected_close,
            "closed_at": deal.closed_at,
            "lost_reason_id": deal.lost_reason_id,
            "lost_reason": reason.label if reason is not None else None,
        },
        "actor_id": actor_id,
    }


def publish_deal(
    session: Session, crm: Crm, event: str, deal: Opportunity, actor_id: int | None
) -> None:
    """Publish ``deal.won`` or ``deal.lost`` (``event``) for ``deal``."""
    publish(session, crm, event, deal_payload(session, deal, actor_id))
