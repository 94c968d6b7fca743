"""Snapshots: every computation is stored as a ``Run`` (kind, as-of date, parameters) with its
rows, and pages read the newest run of each kind."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session

from plugins.analytical.models import Run

BATCH = 10_000


def replace_run(
    session: Session, kind: str, as_of: dt.date, params: dict[str, Any] | None = None
) -> Run:
    """A new run of ``kind`` as of ``as_of``, replacing an older run of the same kind and date
    (its rows go with it through ``ON DELETE CASCADE`` and an explicit delete for SQLite)."""
    from plugins.analytical.models import ALL_MODELS

    older = list(session.scalars(select(Run.id).where(Run.kind == kind, Run.as_of == as_of)))
    if older:
        for model in ALL_MODELS:
            column = getattr(model, "run_id", None)
            if column is not None:
                session.execute(delete(model).where(column.in_(older)))
        session.execute(delete(Run).where(Run.id.in_(older)))
    run = Run(kind=kind, as_of=as_of, params=params or {}, rows=0)
    session.add(run)
    session.flush()
    return run


def insert_rows(session: Session, table: Table, rows: Iterable[dict[str, Any]]) -> int:
    """Insert ``rows`` into ``table`` in batches; returns how many."""
    count = 0
    iterator: Iterator[dict[str, Any]] = iter(rows)
    while batch := list(islice(iterator, BATCH)):
        session.execute(table.insert(), batch)
        count += len(batch)
    return count


def latest_run(session: Session, kind: str) -> Run | None:
    """The newest run of ``kind`` (latest as-of date, then latest computed)."""
    return session.scalars(
        select(Run).where(Run.kind == kind).order_by(Run.as_of.desc(), Run.id.desc()).limit(1)
    ).first()


def latest_run_id(kind: str) -> Any:
    """A scalar subquery of the newest run id of ``kind``, for filters inside other queries."""
    return (
        select(Run.id)
        .where(Run.kind == kind)
        .order_by(Run.as_of.desc(), Run.id.desc())
        .limit(1)
        .scalar_subquery()
    )
