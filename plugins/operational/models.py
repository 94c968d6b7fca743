"""Tables of the operational module: products and orders, interactions, the sales pipeline,
activities, mailings, tickets with SLA, and satisfaction surveys.

Money is an integer count of the currency's minor unit (``*_minor``) next to its currency code;
VND has no minor unit. Order lines are plain rows (imports write millions of them); the order,
the opportunity and the ticket are audited.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import Audited
from core.db import Base, UTCDateTime, utcnow

MONEY = {"widget": "money"}

INTERACTION_KINDS = ("call", "email", "meeting", "chat", "visit", "note")
CHANNELS = ("phone", "email", "zalo", "facebook", "website", "in_person")
DIRECTIONS = ("inbound", "outbound", "internal")
ORDER_STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled", "returned")
STAGE_KINDS = ("open", "won", "lost")
ACTIVITY_KINDS = ("call", "meeting", "email", "todo")
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
TICKET_STATUSES = ("new", "open", "pending", "resolved", "closed")
RECIPIENT_STATUSES = ("queued", "sent", "failed", "replied", "unsubscribed")


def _customer_fk(ondelete: str = "CASCADE") -> ForeignKey:
    return ForeignKey("core_customer.id", ondelete=ondelete)


def _user_fk() -> ForeignKey:
    return ForeignKey("core_user.id", ondelete="SET NULL")


class Product(Audited, Base):
    """Something the business sells, with its price and cost (for margins)."""

    __tablename__ = "operational_product"
    __audit_model__ = "operational.product"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    category: Mapped[str | None] = mapped_column(String(100), index=True)
    price_minor: Mapped[int] = mapped_column(BigInteger, default=0, info=MONEY)
    cost_minor: Mapped[int | None] = mapped_column(BigInteger, info=MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    upgrade_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("operational_product.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class Order(Audited, Base):
    """An order of a customer: lines, or only order-level amounts when lines are unknown."""

    __tablename__ = "operational_order"
    __audit_model__ = "operational.order"
    __table_args__ = (
        Index("ix_operational_order_customer_placed", "customer_id", "placed_at"),
        Index("ix_operational_order_placed_at", "placed_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int] = mapped_column(_customer_fk())
    channel: Mapped[str | None] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20), default="placed")
    placed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(BigInteger, default=0, info=MONEY)
    cost_minor: Mapped[int | None] = mapped_column(BigInteger, info=MONEY)
    owner_id: Mapped[int | None] = mapped_column(_user_fk())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class OrderLine(Base):
    """One product on an order: quantity, unit price, discount, and the net amount."""

    __tablename__ = "operational_order_line"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("operational_order.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("operational_product.id", ondelete="SET NULL"), index=True
    )
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_price_minor: Mapped[int] = mapped_column(BigInteger, info=MONEY)
    discount_minor: Mapped[int] = mapped_column(BigInteger, default=0, info=MONEY)
    amount_minor: Mapped[int] = mapped_column(BigInteger, info=MONEY)


class Interaction(Audited, Base):
    """Something that happened with a customer on some channel: the customer timeline."""

    __tablename__ = "operational_interaction"
    __audit_model__ = "operational.interaction"
    __table_args__ = (
        Index("ix_operational_interaction_customer", "customer_id", "occurred_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(_customer_fk())
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str] = mapped_column(String(10), default="outbound")
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(_user_fk())
    opportunity_id: Mapped[int | None] = mapped_column(
        ForeignKey("operational_opportunity.id", ondelete="SET NULL"), index=True
    )
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("operational_ticket.id", ondelete="SET NULL"), index=True
    )
    source: Mapped[str] = mapped_column(String(20), default="manual")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Stage(Base):
    """A stage of a pipeline; ``team_id`` NULL is the default pipeline every team starts with."""

    __tablename__ = "operational_stage"
    __table_args__ = (UniqueConstraint("team_id", "name", name="uq_operational_stage_team_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("core_team.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(100))
    sequence: Mapped[int] = mapped_column(Integer, default=10)
    probability: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(10), default="open")


class LostReason(Base):
    """Why deals are lost (a short list the business agrees on)."""

    __tablename__ = "operational_lost_reason"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    label: Mapped[str] = mapped_column(String(200))


class Opportunity(Audited, Base):
    """A possible sale moving through the stages of its team's pipeline."""

    __tablename__ = "operational_opportunity"
    __audit_model__ = "operational.opportunity"
    __table_args__ = (
        Index("ix_operational_opportunity_stage", "stage", "id"),
        Index("ix_operational_opportunity_owner", "owner_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(_customer_fk(), index=True)
    title: Mapped[str] = mapped_column(String(200), index=True)
    expected_revenue_minor: Mapped[int] = mapped_column(BigInteger, default=0, info=MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    probability: Mapped[int] = mapped_column(Integer, default=10)
    probability_overridden: Mapped[bool] = mapped_column(Boolean, default=False)
    expected_close: Mapped[dt.date | None] = mapped_column(Date)
    owner_id: Mapped[int | None] = mapped_column(_user_fk())
    team_id: Mapped[int | None] = mapped_column(ForeignKey("core_team.id", ondelete="SET NULL"))
    stage: Mapped[str] = mapped_column(String(40), default="new")
    lost_reason_id: Mapped[int | None] = mapped_column(
        ForeignKey("operational_lost_reason.id", ondelete="SET NULL")
    )
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class Activity(Audited, Base):
    """A call, meeting, e-mail or to-do scheduled for a user; done, it logs an interaction."""

    __tablename__ = "operational_activity"
    __audit_model__ = "operational.activity"
    __table_args__ = (
        Index("ix_operational_activity_agenda", "user_id", "done_at", "due_at"),
        Index("ix_operational_activity_due", "due_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    customer_id: Mapped[int | None] = mapped_column(_customer_fk(), index=True)
    opportunity_id: Mapped[int | None] = mapped_column(
        ForeignKey("operational_opportunity.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(_user_fk())
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    remind_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    interaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("operational_interaction.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class MailTemplate(Audited, Base):
    """A mailing's subject and body: sandboxed Jinja2 with the customer's fields."""

    __tablename__ = "operational_mail_template"
    __audit_model__ = "operational.mail_template"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class Mailing(Audited, Base):
    """A template sent to a list of customers at a scheduled time."""

    __tablename__ = "operational_mailing"
    __audit_model__ = "operational.mailing"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    template_id: Mapped[int] = mapped_column(
        ForeignKey("operational_mail_template.id", ondelete="RESTRICT")
    )
    audience: Mapped[dict | None] = mapped_column(JSON)
    scheduled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    created_by: Mapped[int | None] = mapped_column(_user_fk())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class MailingRecipient(Base):
    """One customer of a mailing and what happened to their mail."""

    __tablename__ = "operational_mailing_recipient"
    __table_args__ = (
        UniqueConstraint("mailing_id", "customer_id", name="uq_operational_recipient"),
        Index("ix_operational_recipient_status", "mailing_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailing_id: Mapped[int] = mapped_column(
        ForeignKey("operational_mailing.id", ondelete="CASCADE")
    )
    customer_id: Mapped[int] = mapped_column(_customer_fk(), index=True)
    email: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    replied_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Unsubscribe(Base):
    """An address that asked for no more mailings."""

    __tablename__ = "operational_unsubscribe"

    email: Mapped[str] = mapped_column(String(254), primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(_customer_fk("SET NULL"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SlaPolicy(Base):
    """Response and resolution targets, in minutes, for one ticket priority."""

    __tablename__ = "operational_sla_policy"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    priority: Mapped[str] = mapped_column(String(10), unique=True)
    first_response_minutes: Mapped[int] = mapped_column(Integer)
    resolution_minutes: Mapped[int] = mapped_column(Integer)


class Ticket(Audited, Base):
    """A customer's request to service, with SLA due times from the policy of its priority."""

    __tablename__ = "operational_ticket"
    __audit_model__ = "operational.ticket"
    __table_args__ = (
        Index("ix_operational_ticket_status", "status", "id"),
        Index("ix_operational_ticket_assignee", "assignee_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(_customer_fk(), index=True)
    subject: Mapped[str] = mapped_column(String(200), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    status: Mapped[str] = mapped_column(String(10), default="new")
    assignee_id: Mapped[int | None] = mapped_column(_user_fk())
    team_id: Mapped[int | None] = mapped_column(ForeignKey("core_team.id", ondelete="SET NULL"))
    first_response_due: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolution_due: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    first_responded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class Survey(Base):
    """A satisfaction survey: a one-time link (only its hash is stored), a 1-5 rating, a comment."""

    __tablename__ = "operational_survey"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(_customer_fk(), index=True)
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("operational_ticket.id", ondelete="CASCADE"), index=True
    )
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("operational_order.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    rating: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


ALL_MODELS = (
    Product,
    Order,
    OrderLine,
    Interaction,
    Stage,
    LostReason,
    Opportunity,
    Activity,
    MailTemplate,
    Mailing,
    MailingRecipient,
    Unsubscribe,
    SlaPolicy,
    Ticket,
    Survey,
)
