"""Events that fire after the transaction that caused them commits.

Code that changes a record calls :func:`emit` with the session; the hook runs only if and when
that session's transaction commits, once per implementation, with errors logged per plugin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

if TYPE_CHECKING:
    from core.runtime import Crm

_KEY = "crm_events"


def emit(session: Session, crm: Crm, hook: str, **kwargs: Any) -> None:
    """Queue event ``hook`` to be called with ``kwargs`` after ``session`` commits."""
    session.info.setdefault(_KEY, []).append((crm, hook, kwargs))


@event.listens_for(Session, "after_commit")
def _fire(session: Session) -> None:
    for crm, hook, kwargs in session.info.pop(_KEY, []):
        crm.notify(hook, **kwargs)


@event.listens_for(Session, "after_transaction_end")
def _drop(session: Session, transaction: SessionTransaction) -> None:
    # the outermost transaction only: a rolled-back savepoint keeps the events queued
    if transaction.parent is None:
        session.info.pop(_KEY, None)


@dataclass(frozen=True)
class RecordEvent:
    """Something worth telling people about happened to a record (a ticket opened, a deal won).

    Modules announce theirs with :func:`announce`; after commit the ``record_event`` hook
    receives it (the collaborative module notifies the record's followers). ``record_type`` is
    a :class:`core.records.RecordType` name; ``label`` an English msgid saying what happened
    ("Deal won"), translated where it is shown; ``title`` the record's own title;
    ``recipients`` user ids to tell besides the followers (the owner of a new alert).
    """

    record_type: str
    record_id: int
    verb: str
    label: str
    title: str
    customer_id: int | None = None
    actor_id: int | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    recipients: tuple[int, ...] = ()


def announce(session: Session, crm: Crm, event: RecordEvent) -> None:
    """Queue ``event`` for the ``record_event`` hook, called after ``session`` commits."""
    emit(session, crm, "record_event", event=event)
