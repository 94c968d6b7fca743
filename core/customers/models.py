"""Customer tables: customers, their identities on every channel, and tags."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.audit import Audited
from core.db import Base, UTCDateTime, utcnow

PERSON = "person"
COMPANY = "company"
KINDS = (PERSON, COMPANY)
#: The fields people and imports may set (the rest the database keeps).
EDITABLE_FIELDS = (
    "kind",
    "display_name",
    "given_name",
    "family_name",
    "company_id",
    "address",
    "country",
    "language",
    "owner_id",
    "source_channel",
    "external_ref",
)


class Customer(Audited, Base):
    """A person or a company the business sells to.

    ``search_key`` is the display name made case- and accent-insensitive
    (:func:`core.normalize.search_key`); it is kept up to date on every write and indexed for
    prefix search. ``version`` increases on every update (optimistic locking).
    """

    __tablename__ = "core_customer"
    __audit_model__ = "customer"
    __table_args__ = (
        Index("ix_core_customer_search_key", "search_key", "id"),
        Index("ix_core_customer_owner_id", "owner_id", "id"),
        Index("ix_core_customer_company_id", "company_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), default=PERSON)
    display_name: Mapped[str] = mapped_column(String(200))
    given_name: Mapped[str | None] = mapped_column(String(100))
    family_name: Mapped[str | None] = mapped_column(String(100))
    company_id: Mapped[int | None] = mapped_column(
        ForeignKey("core_customer.id", ondelete="SET NULL")
    )
    address: Mapped[str | None] = mapped_column(Text)
    country: Mapped[str | None] = mapped_column(String(2))
    language: Mapped[str | None] = mapped_column(String(10))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id", ondelete="SET NULL"))
    source_channel: Mapped[str | None] = mapped_column(String(30))
    external_ref: Mapped[str | None] = mapped_column(String(100), unique=True)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    # Byte-order ("C") collation on PostgreSQL so that prefix ranges use the index.
    search_key: Mapped[str] = mapped_column(
        String(200).with_variant(String(200, collation="C"), "postgresql"), info={"audit": False}
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    identities: Mapped[list[CustomerIdentity]] = relationship(
        back_populates="customer",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="CustomerIdentity.id",
    )
    tag_rows: Mapped[list[CustomerTag]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="CustomerTag.tag"
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    @property
    def tags(self) -> list[str]:
        """The customer's tags, sorted."""
        return [t.tag for t in self.tag_rows]


class CustomerIdentity(Base):
    """One way to recognise a customer: a channel and a normalised value, unique per channel."""

    __tablename__ = "core_customer_identity"
    __table_args__ = (UniqueConstraint("channel", "value", name="uq_core_customer_identity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("core_customer.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="identities")


class CustomerTag(Base):
    """A tag on a customer."""

    __tablename__ = "core_customer_tag"
    __table_args__ = (Index("ix_core_customer_tag_tag", "tag", "customer_id"),)

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("core_customer.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(50), primary_key=True)
