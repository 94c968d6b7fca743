"""What the smart-selling module does when an order is placed or a customer changes owner.

``order_placed`` is called after the order's transaction committed. In one write transaction
of its own, the alerts the order converts are credited first, then the customer's alerts are
raised again: a customer who bought the suggested product converts the alert and is not
offered it anew. A failure here is logged and leaves the order as it is (it is already stored).

``customer_updated`` with a new owner moves the customer's open alerts to that owner, in one
write transaction of its own; closed alerts stay with whoever owned them (the performance pages
count them for that salesperson). A failure is logged and leaves the customer as it is.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.runtime import Crm

log = logging.getLogger("crm.smart_sales.events")


def on_order_placed(crm: Crm, order: dict[str, Any]) -> None:
    """Credit the alerts ``order`` converts, then raise its customer's new alerts."""
    from plugins.smart_sales import alerts

    try:
        with crm.db.write() as session:
            alerts.credit_order(crm, session, order)
            alerts.generate(crm, session, customer_ids=[order["customer_id"]], source="order")
    except Exception:  # the order is committed: never let alerts break placing it
        log.exception("smart_sales: alerts for order %s failed", order.get("id"))


def on_customer_updated(
    crm: Crm, customer: dict[str, Any], changes: dict[str, Any], actor_id: int | None
) -> None:
    """When the customer's owner changed, give their open alerts to the new owner."""
    if "owner_id" not in (changes or {}):
        return
    try:
        with crm.db.write() as session:
            move_open_alerts(session, customer["id"], actor_id)
    except Exception:  # the customer is committed: never let alerts break changing it
        log.exception("smart_sales: moving the alerts of customer %s failed", customer.get("id"))


def move_open_alerts(session: Session, customer_id: int, actor_id: int | None = None) -> list[int]:
    """Give the open alerts of ``customer_id`` to the customer's current owner (nobody when it
    has none); returns the ids of the alerts moved.

    The owner is read from the customer as it is now, not from the change that triggered the
    move, so two owner changes in quick succession end with the last one. Each moved alert's
    version rises (a stale page cannot act on it unseen) and the audit log records the move,
    by ``actor_id`` when given. Closed alerts keep their owner.
    """
    from core import audit
    from core.customers.models import Customer
    from core.models import User
    from plugins.smart_sales.models import OPEN_STATES, Alert

    found = session.execute(select(Customer.owner_id).where(Customer.id == customer_id)).first()
    if found is None:  # deleted meanwhile: its alerts went with it
        return []
    owner = found.owner_id
    other = Alert.owner_id.is_not(None) if owner is None else Alert.owner_id.is_distinct_from(owner)
    moving = session.execute(
        select(Alert.id, Alert.owner_id)
        .where(Alert.customer_id == customer_id, Alert.state.in_(OPEN_STATES), other)
        .order_by(Alert.id)
        .with_for_update()
    ).all()
    if not moving:
        return []
    ids = [row.id for row in moving]
    session.execute(
        update(Alert)
        .where(Alert.id.in_(ids))
        .values(owner_id=owner, version=Alert.version + 1)
        .execution_options(synchronize_session=False)
    )
    actor = None
    if actor_id is not None:
        email = session.scalar(select(User.email).where(User.id == actor_id))
        actor = audit.Actor(label=email or f"user {actor_id}", user_id=actor_id)
    model = Alert.__audit_model__ or Alert.__tablename__
    for row in moving:
        audit.record(
            session,
            "update",
            model,
            row.id,
            before={"owner_id": row.owner_id},
            after={"owner_id": owner},
            actor=actor,
        )
    return ids
