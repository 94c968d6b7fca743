"""Snapshot tables of the analytical module: each computation is stored with its as-of date
and parameters, and pages read the snapshots instead of recomputing."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime, utcnow


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


ALL_MODELS = (Run, RfmScore)
