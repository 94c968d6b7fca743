"""The module's table: notes on customers.

A change here needs a new revision in ``migrations/``; the test ``test_migrations_match_models``
fails until the two agree.
"""

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import Audited
from core.db import Base, UTCDateTime, utcnow


class Note(Audited, Base):
    """A note about a customer; saving one writes the audit log (``Audited``)."""

    __tablename__ = "loyalty_note"
    __audit_model__ = "loyalty.note"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Merging customers re-points this column to the survivor; deleting one deletes its notes.
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("core_customer.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("core_user.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    # Optimistic locking: a form saved from an outdated page is refused, not applied.
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class PointsEntry(Base):
    """The points a customer earned for one order: one row per order, so an order counts once.

    ``order_id`` is the operational module's order id; it has no foreign key, because the order
    table belongs to that module (read orders through its ``order_placed`` hook, not its tables).
    """

    __tablename__ = "loyalty_points"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("core_customer.id", ondelete="CASCADE"), index=True
    )
    order_id: Mapped[int] = mapped_column(Integer, unique=True)
    order_ref: Mapped[str] = mapped_column(String(64))
    points: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
