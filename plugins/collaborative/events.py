"""What other modules announce reaches the people following the record or its customer.

Both hooks run after the transaction that caused them committed, so each writes its
notifications in a write session of its own. :func:`plugins.collaborative.notify.notify` leaves
out the person who acted and anyone who may not see the record.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

from core import records
from core.events import RecordEvent
from core.i18n import N_
from plugins.collaborative.followers import follower_ids
from plugins.collaborative.notify import Subject, notify

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.runtime import Crm

CUSTOMER_CHANGED = N_("Customer changed")
_MAX_VALUE = 200


def _occurrence(*parts: object) -> str:
    """A notification key unique to one occurrence (at most 120 characters)."""
    head = ":".join(str(part)[:60] for part in parts)
    return f"{head[:100]}:{uuid.uuid4().hex[:16]}"


def _link(crm: Crm, record_type: str, record_id: int) -> str | None:
    kind = records.record_types(crm).get(record_type)
    return kind.link(record_id) if kind else None


def audience(session: Session, event: RecordEvent) -> list[int]:
    """Followers of the record and of its customer, and the event's own recipients, once."""
    people: set[int] = set(follower_ids(session, event.record_type, event.record_id))
    if event.customer_id is not None:
        people.update(follower_ids(session, "customer", event.customer_id))
    people.update(event.recipients)
    return sorted(people)


def _plain(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, list | tuple | set):
        return ", ".join(str(item) for item in value) or "—"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    text = str(value)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def describe(changes: dict[str, Any]) -> str:
    """One line per changed field: ``name: before → after``."""
    lines = []
    for name, change in sorted(changes.items()):
        if isinstance(change, list | tuple) and len(change) == 2:
            lines.append(f"{name}: {_plain(change[0])} → {_plain(change[1])}")
        else:
            lines.append(f"{name}: {_plain(change)}")
    return "\n".join(lines)


def on_record_event(crm: Crm, event: RecordEvent) -> None:
    """Tell the followers of the record and of its customer, and ``event.recipients``."""
    with crm.db.write() as session:
        people = audience(session, event)
        if not people:
            return
        subject = Subject(
            key=_occurrence("event", event.record_type, event.record_id, event.verb),
            kind="event",
            label=event.label,
            title=event.title,
            body=describe(event.changes) if event.changes else "",
            url=_link(crm, event.record_type, event.record_id),
            record_type=event.record_type,
            record_id=event.record_id,
            customer_id=event.customer_id,
            actor_id=event.actor_id,
        )
        notify(crm, session, people, subject)


def on_customer_updated(
    crm: Crm, customer: dict[str, Any], changes: dict[str, Any], actor_id: int | None
) -> None:
    """Tell the customer's followers which fields changed, and to what (not the one who did)."""
    if not changes:
        return
    customer_id = customer["id"]
    with crm.db.write() as session:
        people = follower_ids(session, "customer", customer_id)
        if not people:
            return
        subject = Subject(
            key=_occurrence("change", "customer", customer_id, customer.get("version", "")),
            kind="change",
            label=CUSTOMER_CHANGED,
            title=str(customer.get("display_name") or f"#{customer_id}"),
            body=describe(changes),
            url=_link(crm, "customer", customer_id),
            record_type="customer",
            record_id=customer_id,
            customer_id=customer_id,
            actor_id=actor_id,
        )
        notify(crm, session, people, subject)
