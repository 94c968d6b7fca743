"""The module's entries in the unified timeline (``core.timeline``): notes and comments, and
hand-offs (when a record was handed over, and when the receiving team decided).

Each source reads only rows about the customers of the query, and only those on records the
user may see: a note on a ticket the user may not open is left out even on a visible customer.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import aliased

from core.i18n import N_
from core.models import Team, User
from core.records import record_types
from core.timeline import TimelineEntry, TimelineQuery, TimelineSource
from plugins.collaborative.models import Handoff, Message
from plugins.collaborative.records import visible_condition

MESSAGE_LABELS = {"note": N_("Note"), "comment": N_("Comment"), "reply": N_("Reply")}
HANDOFF_LABELS = {
    "pending": N_("Handed over"),
    "accepted": N_("Hand-off accepted"),
    "returned": N_("Hand-off returned"),
    "cancelled": N_("Hand-off cancelled"),
}
TITLE_LENGTH = 140


def sources() -> list[TimelineSource]:
    """Notes and comments; hand-offs."""
    return [
        TimelineSource("note", N_("Notes and comments"), "collaborative.message:read", fetch_notes),
        TimelineSource("handoff", N_("Hand-offs"), "collaborative.handoff:read", fetch_handoffs),
    ]


def _excerpt(text: str, length: int = TITLE_LENGTH) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= length else line[: length - 1] + "…"


def _links(query: TimelineQuery) -> dict[str, Any]:
    return record_types(query.crm)


def _url(kinds: dict[str, Any], record_type: str, record_id: int) -> str | None:
    kind = kinds.get(record_type)
    return None if kind is None else kind.link(record_id)


def fetch_notes(query: TimelineQuery) -> list[TimelineEntry]:
    """Notes and comments about the query's customers, on records the user may see."""
    stmt = (
        select(Message, User.name)
        .outerjoin(User, User.id == Message.author_id)
        .where(Message.customer_id.in_(query.customers), Message.kind.in_(("note", "comment")))
    )
    if query.before is not None:
        stmt = stmt.where(Message.created_at < query.before)
    condition = visible_condition(query.crm, query.user, Message.record_type, Message.record_id)
    if condition is not None:
        stmt = stmt.where(condition)
    stmt = stmt.order_by(Message.created_at.desc(), Message.id.desc()).limit(query.limit)
    kinds = _links(query)
    entries = []
    for message, author in query.session.execute(stmt):
        label = MESSAGE_LABELS["reply" if message.parent_id else message.kind]
        entries.append(
            TimelineEntry(
                at=message.created_at,
                kind="note",
                label=label,
                title=_excerpt(message.body),
                customer_id=message.customer_id,
                url=_url(kinds, message.record_type, message.record_id),
                record_type=message.record_type,
                record_id=message.record_id,
                actor=author,
            )
        )
    return entries


def _handoff_rows(query: TimelineQuery, decided: bool) -> list[Any]:
    source, target = aliased(Team), aliased(Team)
    actor = aliased(User)
    when = Handoff.decided_at if decided else Handoff.created_at
    who = Handoff.decided_by if decided else Handoff.created_by
    stmt = (
        select(Handoff, when, source.label, target.label, actor.name)
        .outerjoin(source, source.id == Handoff.from_team_id)
        .join(target, target.id == Handoff.to_team_id)
        .outerjoin(actor, actor.id == who)
        .where(Handoff.customer_id.in_(query.customers), when.is_not(None))
    )
    if query.before is not None:
        stmt = stmt.where(when < query.before)
    condition = visible_condition(query.crm, query.user, Handoff.record_type, Handoff.record_id)
    if condition is not None:
        stmt = stmt.where(condition)
    return list(
        query.session.execute(stmt.order_by(when.desc(), Handoff.id.desc()).limit(query.limit))
    )


def fetch_handoffs(query: TimelineQuery) -> list[TimelineEntry]:
    """Hand-offs about the query's customers: when each was made and when it was decided."""
    kinds = _links(query)
    entries = []
    for decided in (False, True):
        for handoff, at, from_label, to_label, actor in _handoff_rows(query, decided):
            label = HANDOFF_LABELS["pending"]
            if decided:
                label = HANDOFF_LABELS.get(handoff.status, label)
            title = f"{from_label} → {to_label}" if from_label else f"→ {to_label}"
            entries.append(
                TimelineEntry(
                    at=at,
                    kind="handoff",
                    label=label,
                    title=title,
                    customer_id=handoff.customer_id,
                    url=_url(kinds, handoff.record_type, handoff.record_id),
                    record_type=handoff.record_type,
                    record_id=handoff.record_id,
                    actor=actor,
                    detail=_excerpt(handoff.reason if decided else handoff.message, 300),
                )
            )
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[: query.limit]
