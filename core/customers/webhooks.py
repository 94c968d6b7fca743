"""The customer events sent to outbound webhooks, and their payloads.

Each ``publish_*`` function builds one event's payload (JSON-safe: ids, ISO 8601 times, never
secrets) and publishes it inside the caller's transaction, so a rollback publishes nothing.
The catalogue with examples is docs/webhook-events.md.
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

CREATED = "customer.created"
UPDATED = "customer.updated"
DELETED = "customer.deleted"
MERGED = "customer.merged"
IMPORTED = "customers.imported"


def events() -> list[WebhookEvent]:
    """The customer events the core declares."""
    from core.webhooks import WebhookEvent

    return [
        WebhookEvent(
            CREATED, N_("Customer created"), "The new customer, with identities and tags."
        ),
        WebhookEvent(
            UPDATED,
            N_("Customer changed"),
            "The customer as it is now, and each changed field before and after.",
        ),
        WebhookEvent(DELETED, N_("Customer deleted"), "The customer's last state."),
        WebhookEvent(
            MERGED,
            N_("Customers merged"),
            "The surviving customer's id and state, and the id of the customer merged into it.",
        ),
        WebhookEvent(
            IMPORTED,
            N_("Customers imported"),
            "One summary per import: how many customers were created, updated, left unchanged.",
        ),
    ]


def publish_created(session: Session, crm: Crm, customer: Mapping[str, Any]) -> None:
    """``customer.created`` with ``customer`` (as :func:`core.customers.service.as_dict`)."""
    publish(session, crm, CREATED, {"customer": customer})


def publish_updated(
    session: Session,
    crm: Crm,
    customer: Mapping[str, Any],
    changes: Mapping[str, tuple[Any, Any]],
    actor_id: int | None,
) -> None:
    """``customer.updated``: the customer now and ``changes`` as ``{field: {before, after}}``."""
    publish(
        session,
        crm,
        UPDATED,
        {
            "customer": customer,
            "changes": {
                name: {"before": before, "after": after}
                for name, (before, after) in changes.items()
            },
            "actor_id": actor_id,
        },
    )


def publish_deleted(session: Session, crm: Crm, customer: Mapping[str, Any]) -> None:
    """``customer.deleted`` with the customer's last state."""
    publish(session, crm, DELETED, {"customer": customer})


def publish_merged(
    session: Session,
    crm: Crm,
    survivor: Mapping[str, Any],
    merged_id: int,
    conflicts: Mapping[str, Any],
) -> None:
    """``customer.merged``: ``merged_id`` went into ``survivor`` (its state after the merge)."""
    publish(
        session,
        crm,
        MERGED,
        {
            "survivor_id": survivor["id"],
            "merged_id": merged_id,
            "survivor": survivor,
            "conflicts": conflicts,
        },
    )


def publish_imported(
    session: Session,
    crm: Crm,
    *,
    source: str,
    created: int,
    updated: int,
    unchanged: int,
    rejected: int,
) -> None:
    """``customers.imported``: one summary of a whole import, never one event per row."""
    publish(
        session,
        crm,
        IMPORTED,
        {
            "source": source,
            "created": created,
            "updated": updated,
            "unchanged": unchanged,
            "rejected": rejected,
        },
    )
