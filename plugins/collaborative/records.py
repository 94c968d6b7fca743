"""Records of any module, by type and id: look them up and decide who may see them.

Everything this module attaches to a record (messages, followers, hand-offs, partner links)
names it by a :class:`core.records.RecordType` name and an id. Whoever reads such a row must be
allowed to see the record itself: :func:`visible_condition` turns that into one SQL condition.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, false, or_, select

from core import records
from core.errors import Invalid, NotFoundError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.auth import SignedIn
    from core.records import RecordType
    from core.runtime import Crm


def kind_of(crm: Crm, name: str, field: str = "record_type") -> RecordType:
    """The record type called ``name``; ``Invalid`` naming ``field`` when no module declares it."""
    kinds = records.record_types(crm)
    if name not in kinds:
        known = ", ".join(sorted(kinds))
        raise Invalid({field: f"unknown record type {name!r}; known: {known}"})
    return kinds[name]


def title_of(session: Session, kind: RecordType, record_id: int) -> str | None:
    """The record's title, ``None`` when it does not exist."""
    row = session.execute(
        select(getattr(kind.model, kind.title)).where(kind.model.id == record_id)
    ).first()
    return None if row is None else str(row[0] or f"#{record_id}")


def titles_of(
    crm: Crm, session: Session, refs: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], str]:
    """Titles of the records ``refs`` name, by ``(record_type, record_id)``: one query per
    record type; records (or types) that no longer exist are left out."""
    wanted: dict[str, set[int]] = {}
    for record_type, record_id in refs:
        wanted.setdefault(record_type, set()).add(record_id)
    kinds = records.record_types(crm)
    found: dict[tuple[str, int], str] = {}
    for record_type, ids in wanted.items():
        kind = kinds.get(record_type)
        if kind is None:
            continue
        rows = session.execute(
            select(kind.model.id, getattr(kind.model, kind.title)).where(kind.model.id.in_(ids))
        )
        for record_id, title in rows:
            found[(record_type, record_id)] = str(title or f"#{record_id}")
    return found


def customer_of(session: Session, kind: RecordType, record_id: int) -> int | None:
    """The id of the customer the record belongs to (``None`` for records without one)."""
    if kind.customer_column is None:
        return None
    return session.scalar(
        select(kind.column(kind.customer_column)).where(kind.model.id == record_id)
    )


def require_visible(
    crm: Crm, session: Session, user: SignedIn, name: str, record_id: int
) -> RecordType:
    """The record type of a record ``user`` may see; ``NotFoundError`` otherwise.

    A record the user may not see answers exactly like one that does not exist.
    """
    kind = kind_of(crm, name)
    if not records.can_see(crm, session, user, kind, record_id):
        raise NotFoundError(f"{name} {record_id} not found")
    return kind


def visible_condition(
    crm: Crm, user: SignedIn, type_column: Any, id_column: Any
) -> ColumnElement[bool] | None:
    """Rows whose ``(type_column, id_column)`` record ``user`` may see; ``None``: all of them.

    One branch per record type the user may read; types they may not read match nothing.
    """
    branches = []
    unrestricted = True
    for kind in records.record_types(crm).values():
        if kind.permission not in user.permissions:
            unrestricted = False
            continue
        rule = records.record_condition(crm, user, kind)
        if rule is None:
            branches.append(type_column == kind.name)
        else:
            unrestricted = False
            branches.append(
                and_(type_column == kind.name, id_column.in_(select(kind.model.id).where(rule)))
            )
    if unrestricted:
        return None
    return or_(*branches) if branches else false()
