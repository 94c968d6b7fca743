"""Events that fire after the transaction that caused them commits.

Code that changes a record calls :func:`emit` with the session; the hook runs only if and when
that session's transaction commits, once per implementation, with errors logged per plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.orm import Session

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


@event.listens_for(Session, "after_rollback")
def _drop(session: Session) -> None:
    session.info.pop(_KEY, None)
