"""The customer events sent to outbound webhooks, and their payloads.

Each ``publish_*`` function builds one event's payload (JSON-safe: ids, ISO 8601 times, never
secrets) and publishes it inside the caller's transaction, so a rollback publishes nothing.
The catalogue with examples is docs/webhook-events.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from core.i18n import N_

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


def plain(value: Any) -> Any:
    """``value`` with dates and times as ISO 8601 strings, tuples as lists (JSON-safe)."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _publish(session: Session, crm: Crm, event: str, data: dict[str, Any]) -> None:
    from core.webhooks import publish

    publish(session, crm, event, data)


def publish_created(session: Session, crm: Crm, customer: Mapping[str, Any]) -> None:
    """``customer.created`` with ``customer`` (as :func:`core.customers.service.as_dict`)."""
    _publish(session, crm, CREATED, {"customer": plain(customer)})


def publish_updated(
    session: Session,
    crm: Crm,
    customer: Mapping[str, Any],
    changes: Mapping[str, tuple[Any, Any]],
    actor_id: int | None,
) -> None:
    """``customer.updated``: the customer now and ``changes`` as ``{field: {before, after}}``."""
    _publish(
        session,
        crm,
        UPDATED,
        {
            "customer": plain(customer),
            "changes": {
                name: {"before": plain(before), "after": plain(after)}
                for name, (before, after) in changes.items()
            },
            "actor_id": actor_id,
        },
    )


def publish_deleted(session: Session, crm: Crm, customer: Mapping[str, Any]) -> None:
    """``customer.deleted`` with the customer's last state."""
    _publish(session, crm, DELETED, {"customer": plain(customer)})


def publish_merged(
    session: Session,
    crm: Crm,
    survivor: Mapping[str, Any],
    merged_id: int,
    conflicts: Mapping[str, Any],
) -> None:
    """``customer.merged``: ``merged_id`` went into ``survivor`` (its state after the merge)."""
    _publish(
        session,
        crm,
        MERGED,
        {
            "survivor_id": survivor["id"],
            "merged_id": merged_id,
            "survivor": plain(survivor),
            "conflicts": plain(conflicts),
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
    _publish(
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
