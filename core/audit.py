"""The audit log: who did what, when, with the values before and after.

Models that inherit :class:`Audited` are recorded automatically on every insert, update and
delete flushed through a session. Actions that are not row changes (login, export, refused
access) are recorded with :func:`record`. Rows are append-only: database triggers refuse
UPDATE and DELETE on ``core_audit_log``.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, insert, inspect
from sqlalchemy.orm import Session

from core.db import utcnow


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user, or a named system process."""

    label: str = "system"
    user_id: int | None = None
    ip: str | None = None


_actor: contextvars.ContextVar[Actor] = contextvars.ContextVar("crm_actor", default=Actor())  # noqa: B039 (frozen)


REQUEST_KEY = "crm_request"


def current_actor(session: Session | None = None) -> Actor:
    """The actor of ``session``'s web request if it has one, else of the current command."""
    if session is not None:
        request = session.info.get(REQUEST_KEY)
        actor = getattr(getattr(request, "state", None), "actor", None)
        if actor is not None:
            return actor
    return _actor.get()


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Attribute audit rows written inside the block to ``actor``."""
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)


class Audited:
    """Mixin: inserts, updates and deletes of this model are written to the audit log.

    Columns with ``info={"audit": False}`` (password hashes) are left out of the record.
    """

    __audit_model__: str | None = None


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def model_name(obj: Any) -> str:
    """The name an object's model has in the audit log and in permissions."""
    cls = type(obj)
    return getattr(cls, "__audit_model__", None) or cls.__tablename__


def snapshot(obj: Any) -> dict[str, Any]:
    """The audited column values of ``obj``."""
    mapper = inspect(obj).mapper
    return {
        col.key: _plain(getattr(obj, col.key))
        for col in mapper.column_attrs
        if col.columns[0].info.get("audit", True)
    }


def _changes(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    state = inspect(obj)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for col in state.mapper.column_attrs:
        if not col.columns[0].info.get("audit", True):
            continue
        history = state.attrs[col.key].history
        if history.has_changes():
            before[col.key] = _plain(history.deleted[0]) if history.deleted else None
            after[col.key] = _plain(history.added[0]) if history.added else None
    return before, after


def _primary_key(obj: Any) -> str | None:
    # Read from the attributes: during after_flush new objects have no identity key yet.
    parts = inspect(obj).mapper.primary_key_from_instance(obj)
    if all(part is None for part in parts):
        return None
    return ",".join(str(part) for part in parts)


def record(
    session: Session,
    action: str,
    model: str,
    record_id: object = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    detail: str | None = None,
    actor: Actor | None = None,
) -> None:
    """Write one audit row in ``session``'s transaction."""
    from core.models import AuditLog

    who = actor or current_actor(session)
    session.connection().execute(
        insert(AuditLog.__table__).values(
            at=utcnow(),
            actor_id=who.user_id,
            actor=who.label,
            action=action,
            model=model,
            record_id=None if record_id is None else str(record_id),
            before=_plain(before) if before is not None else None,
            after=_plain(after) if after is not None else None,
            detail=detail,
            ip=who.ip,
        )
    )


@event.listens_for(Session, "before_flush")
def _collect(session: Session, _context: Any, _instances: Any) -> None:
    pending = session.info.setdefault("crm_audit", [])
    for obj in session.new:
        if isinstance(obj, Audited):
            pending.append(("create", obj, None))
    for obj in session.dirty:
        if isinstance(obj, Audited) and session.is_modified(obj, include_collections=False):
            before, after = _changes(obj)
            if after:
                pending.append(("update", obj, (before, after)))
    for obj in session.deleted:
        if isinstance(obj, Audited):
            pending.append(("delete", obj, (snapshot(obj), None)))


@event.listens_for(Session, "after_flush")
def _write(session: Session, _context: Any) -> None:
    pending = session.info.pop("crm_audit", [])
    for action, obj, values in pending:
        if action == "create":
            before, after = None, snapshot(obj)
        else:
            before, after = values
        record(session, action, model_name(obj), _primary_key(obj), before, after)
