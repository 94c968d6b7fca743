"""Snapshot tables of the analytical module: each computation is stored with its as-of date
and parameters, and pages read the snapshots instead of recomputing."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import Audited
from core.db import Base, UTCDateTime, utcnow

MONEY = {"widget": "money"}


def _run_fk() -> ForeignKey:
    return ForeignKey("analytical_run.id", ondelete="CASCADE")


def _customer_fk() -> ForeignKey:
    return ForeignKey("core_customer.id", ondelete="CASCADE")


class Run(Base):
    """One computation: what (``kind``), as of when, with which parameters, how many rows."""

    __tablename__ = "analytical_run"
    __table_args__ = (Index("ix_analytical_run_kind", "kind", "as_of", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    as_of: Mapped[dt.date] = mapped_column(Date)
    params: Mapped[dict | None] = mapped_column(JSON)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Small aggregated results pages draw directly (matrices, series, chart points).
    summary: Mapped[dict | None] = mapped_column(JSON)


class RfmScore(Base):
    """A customer's recency, frequency and monetary value, their 1-5 scores and segment."""

    __tablename__ = "analytical_rfm"
    __table_args__ = (Index("ix_analytical_rfm_segment", "run_id", "segment"),)

    run_id: Mapped[int] = mapped_column(
        ForeignKey("analytical_run.id", ondelete="CASCADE"), primary_key=True
    )
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("core_customer.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    recency_days: Mapped[int] = mapped_column(Integer)
    frequency: Mapped[int] = mapped_column(Integer)
    monetary_minor: Mapped[int] = mapped_column(BigInteger)
    r: Mapped[int] = mapped_column(Integer)
    f: Mapped[int] = mapped_column(Integer)
    m: Mapped[int] = mapped_column(Integer)
    segment: Mapped[str] = mapped_column(String(30))


class CustomerClass(Base):
    """A customer's class for staff: loyal, potential, new or unaware (and why)."""

    __tablename__ = "analytical_class"
    __table_args__ = (Index("ix_analytical_class_klass", "run_id", "klass"),)

    run_id: Mapped[int] = mapped_column(_run_fk(), primary_key=True)
    customer_id: Mapped[int] = mapped_column(_customer_fk(), primary_key=True, index=True)
    klass: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(200))


class ClvScore(Base):
    """A customer's calibration summary and BG/NBD + Gamma-Gamma predictions."""

    __tablename__ = "analytical_clv"
    __table_args__ = (Index("ix_analytical_clv_value", "run_id", "clv_minor"),)

    run_id: Mapped[int] = mapped_column(_run_fk(), primary_key=True)
    customer_id: Mapped[int] = mapped_column(_customer_fk(), primary_key=True, index=True)
    frequency: Mapped[int] = mapped_column(Integer)
    recency: Mapped[float] = mapped_column(Float)
    t: Mapped[float] = mapped_column(Float)
    monetary_minor: Mapped[int] = mapped_column(BigInteger, info=MONEY)
    expected_purchases: Mapped[float] = mapped_column(Float)
    probability_alive: Mapped[float] = mapped_column(Float)
    clv_minor: Mapped[int] = mapped_column(BigInteger, info=MONEY)


class Profit(Base):
    """A customer's revenue, cost of goods, cost to serve, margin, value tier and needs."""

    __tablename__ = "analytical_profit"
    __table_args__ = (
        Index("ix_analytical_profit_tier", "run_id", "tier"),
        Index("ix_analytical_profit_margin", "run_id", "margin_minor"),
    )

    run_id: Mapped[int] = mapped_column(_run_fk(), primary_key=True)
    customer_id: Mapped[int] = mapped_column(_customer_fk(), primary_key=True, index=True)
    revenue_minor: Mapped[int] = mapped_column(BigInteger, info=MONEY)
    cogs_minor: Mapped[int] = mapped_column(BigInteger, info=MONEY)
    cost_to_serve_minor: Mapped[int] = mapped_column(BigInteger, info=MONEY)
    margin_minor: Mapped[int] = mapped_column(BigInteger, info=MONEY)
    tier: Mapped[str] = mapped_column(String(1))
    #: Lines whose product has no cost: the margin is overstated by their cost.
    lines_without_cost: Mapped[int] = mapped_column(Integer, default=0)
    categories: Mapped[list | None] = mapped_column(JSON)
    preferred_channel: Mapped[str | None] = mapped_column(String(30))


class Behaviour(Base):
    """A customer's purchase rhythm and churn risk."""

    __tablename__ = "analytical_behaviour"
    __table_args__ = (Index("ix_analytical_behaviour_risk", "run_id", "churn_risk"),)

    run_id: Mapped[int] = mapped_column(_run_fk(), primary_key=True)
    customer_id: Mapped[int] = mapped_column(_customer_fk(), primary_key=True, index=True)
    orders: Mapped[int] = mapped_column(Integer)
    first_order: Mapped[dt.date] = mapped_column(Date)
    last_order: Mapped[dt.date] = mapped_column(Date)
    mean_gap_days: Mapped[float | None] = mapped_column(Float)
    days_since_last: Mapped[int] = mapped_column(Integer)
    probability_alive: Mapped[float | None] = mapped_column(Float)
    churn_risk: Mapped[str] = mapped_column(String(10))
    churn_reason: Mapped[str] = mapped_column(String(200))


class Segment(Audited, Base):
    """A saved dynamic segment: a definition evaluated whenever it is used."""

    __tablename__ = "analytical_segment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    definition: Mapped[dict] = mapped_column(JSON)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("core_user.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class Campaign(Audited, Base):
    """A targeted campaign: a segment's list frozen, a control group held out, a mailing sent,
    and the response of targets against control measured."""

    __tablename__ = "analytical_campaign"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    segment_id: Mapped[int | None] = mapped_column(
        ForeignKey("analytical_segment.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(10), default="draft", index=True)
    control_percent: Mapped[int] = mapped_column(Integer, default=10)
    response_days: Mapped[int] = mapped_column(Integer, default=30)
    #: Secret per campaign: the control draw is a keyed hash of it and the customer id.
    seed: Mapped[str] = mapped_column(String(64))
    frozen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    targets: Mapped[int] = mapped_column(Integer, default=0)
    controls: Mapped[int] = mapped_column(Integer, default=0)
    mailing_id: Mapped[int | None] = mapped_column(
        ForeignKey("operational_mailing.id", ondelete="SET NULL")
    )
    created_by: Mapped[int | None] = mapped_column(ForeignKey("core_user.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class CampaignMember(Base):
    """A customer of a frozen campaign list, in the target or the control group."""

    __tablename__ = "analytical_campaign_member"
    __table_args__ = (Index("ix_analytical_campaign_member_group", "campaign_id", "grp"),)

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("analytical_campaign.id", ondelete="CASCADE"), primary_key=True
    )
    customer_id: Mapped[int] = mapped_column(_customer_fk(), primary_key=True, index=True)
    grp: Mapped[str] = mapped_column(String(10))


ALL_MODELS = (
    Run,
    RfmScore,
    CustomerClass,
    ClvScore,
    Profit,
    Behaviour,
    Segment,
    Campaign,
    CampaignMember,
)
