"""Interactions: everything that happened with a customer, on every channel (the timeline)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugins.operational.models import CHANNELS, DIRECTIONS, INTERACTION_KINDS, Interaction


def log(
    session: Session,
    customer_id: int,
    kind: str,
    channel: str,
    subject: str,
    *,
    direction: str = "outbound",
    body: str | None = None,
    user_id: int | None = None,
    occurred_at: dt.datetime | None = None,
    source: str = "manual",
    opportunity_id: int | None = None,
    ticket_id: int | None = None,
) -> Interaction:
    """Record an interaction; ``ValueError`` names a bad kind, channel or direction."""
    if kind not in INTERACTION_KINDS:
        raise ValueError(f"kind must be one of {', '.join(INTERACTION_KINDS)}")
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}")
    subject = subject.strip()
    if not subject:
        raise ValueError("subject must not be empty")
    interaction = Interaction(
        customer_id=customer_id,
        kind=kind,
        channel=channel,
        direction=direction,
        subject=subject[:200],
        body=body,
        user_id=user_id,
        source=source,
        opportunity_id=opportunity_id,
        ticket_id=ticket_id,
    )
    if occurred_at is not None:
        interaction.occurred_at = occurred_at
    session.add(interaction)
    session.flush()
    return interaction


def timeline(
    session: Session,
    customer_id: int,
    channel: str | None = None,
    limit: int = 50,
    before: tuple[dt.datetime, int] | None = None,
) -> list[Interaction]:
    """The customer's interactions, newest first, optionally on one channel (keyset pages)."""
    query = select(Interaction).where(Interaction.customer_id == customer_id)
    if channel:
        query = query.where(Interaction.channel == channel)
    if before is not None:
        query = query.where(
            (Interaction.occurred_at < before[0])
            | ((Interaction.occurred_at == before[0]) & (Interaction.id < before[1]))
        )
    query = query.order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(limit)
    return list(session.scalars(query))


def as_dict(interaction: Interaction) -> dict[str, Any]:
    """Plain data for the API."""
    return {
        name: getattr(interaction, name)
        for name in (
            "id",
            "customer_id",
            "kind",
            "channel",
            "direction",
            "subject",
            "body",
            "occurred_at",
            "user_id",
            "opportunity_id",
            "ticket_id",
            "source",
        )
    }


__all__ = ["as_dict", "log", "timeline"]
