"""Customer merges: what refers to the merged customer by ``(record_type, record_id)`` moves to
the survivor; rows that would then be duplicates are dropped first.

Columns that are foreign keys to the customer (``customer_id``) are moved by the core itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from core.db import utcnow
from plugins.collaborative.models import (
    AccountTeam,
    Follower,
    Handoff,
    Message,
    Notification,
    PartnerLink,
    Share,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def _drop_duplicates(session: Session, model: Any, survivor: int, merged: int, *keys: str) -> None:
    """Delete ``merged``'s rows of ``model`` whose ``keys`` the survivor's rows already have."""
    on_customer = (model.record_type == "customer") if hasattr(model, "record_type") else None
    id_column = model.record_id if on_customer is not None else model.customer_id

    def rows(customer: int) -> Any:
        query = select(*(getattr(model, k) for k in keys)).where(id_column == customer)
        return query if on_customer is None else query.where(on_customer)

    kept = {tuple(row) for row in session.execute(rows(survivor))}
    for row in session.execute(rows(merged)).all():
        if tuple(row) in kept:
            condition = [
                id_column == merged,
                *(getattr(model, k) == v for k, v in zip(keys, row, strict=True)),
            ]
            if on_customer is not None:
                condition.append(on_customer)
            session.execute(delete(model).where(*condition))


def merge_customer(session: Session, survivor: Any, merged: Any) -> None:
    """Move notes, followers, hand-offs, partner links and notifications of ``merged`` (by
    record id) to ``survivor``; keep the survivor's account team, shares and pending hand-off
    (the merged customer's pending one is cancelled)."""
    _drop_duplicates(session, Follower, survivor.id, merged.id, "user_id")
    _drop_duplicates(session, PartnerLink, survivor.id, merged.id, "partner_id", "relation")
    _drop_duplicates(session, Share, survivor.id, merged.id, "user_id")
    pending = (Handoff.record_type == "customer", Handoff.status == "pending")
    if session.scalar(select(Handoff.id).where(*pending, Handoff.record_id == survivor.id)):
        # one pending hand-off per record: the survivor's stands, the merged one's is withdrawn
        session.execute(
            update(Handoff)
            .where(*pending, Handoff.record_id == merged.id)
            .values(
                status="cancelled",
                decided_at=utcnow(),
                reason=f"customer merged into {survivor.id}",
                version=Handoff.version + 1,
            )
            .execution_options(synchronize_session=False)
        )
    if session.get(AccountTeam, survivor.id) is not None:
        session.execute(delete(AccountTeam).where(AccountTeam.customer_id == merged.id))
    for model in (Message, Follower, Handoff, PartnerLink, Notification):
        session.execute(
            update(model)
            .where(model.record_type == "customer", model.record_id == merged.id)
            .values(record_id=survivor.id)
            .execution_options(synchronize_session=False)
        )
