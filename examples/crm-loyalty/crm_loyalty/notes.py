"""Writing and reading notes: the one place the API, the screens, the command and the event
hook go through."""

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import Invalid
from crm_loyalty.models import Note

TITLE_MAX = 200


def add(
    session: Session,
    customer_id: int,
    title: str | None,
    body: str | None = None,
    owner_id: int | None = None,
) -> Note:
    """Add a note to a customer; raises ``Invalid`` naming the field for bad input."""
    note = Note(customer_id=customer_id, title=_title(title), body=body or None, owner_id=owner_id)
    session.add(note)
    session.flush()
    return note


def change(session: Session, note: Note, values: dict[str, Any]) -> None:
    """Set a note's ``customer_id``, ``title`` or ``body``; ``Invalid`` for bad input."""
    if "title" in values:
        values = {**values, "title": _title(values["title"])}
    for name, value in values.items():
        setattr(note, name, value)
    session.flush()


def latest(session: Session, customer_id: int, limit: int = 5) -> list[Note]:
    """A customer's newest notes first."""
    query = select(Note).where(Note.customer_id == customer_id).order_by(Note.id.desc())
    return list(session.scalars(query.limit(limit)))


def stats(session: Session) -> dict[str, int]:
    """How many notes there are, and about how many customers."""
    notes, customers = session.execute(
        select(func.count(), func.count(func.distinct(Note.customer_id)))
    ).one()
    return {"notes": notes, "customers": customers}


def _title(title: str | None) -> str:
    title = (title or "").strip()
    if not title:
        raise Invalid({"title": "must not be empty"})
    if len(title) > TITLE_MAX:
        raise Invalid({"title": f"at most {TITLE_MAX} characters"})
    return title
