"""Tables of the smart-selling module: mining runs and their rules, muted rules, and alerts.

A run stores the parameters it mined with and what it found; its rules name products by id
(alerts follow products) and by SKU as they were at mining time (what the run printed). The
rules of the latest successful run are the ones alerts come from.

An alert is raised for a customer's owner. ``open_key`` is set while the alert is open (new,
seen, acted) and cleared when it closes, and it is unique: there is never more than one open
alert per customer and product (or per customer for churn), even when two servers raise it at
once. Money is an integer count of the currency's minor unit; rule metrics are ratios.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import Audited
from core.db import Base, UTCDateTime, utcnow

MONEY = {"widget": "money"}

ALERT_KINDS = ("cross_sell", "up_sell", "churn")
OPEN_STATES = ("new", "seen", "acted")
CLOSED_STATES = ("converted", "dismissed", "expired")
ALERT_STATES = (*OPEN_STATES, *CLOSED_STATES)
DISMISS_REASONS = ("not_relevant", "already_has", "bad_timing", "customer_declined", "other")
RUN_STATUSES = ("running", "ok", "failed")
#: How an alert came about: a mining run, an order the customer placed, ``crm smart-sales
#: generate`` (up-sell and churn after an analytics refresh), or the demo data.
ALERT_SOURCES = ("mining", "order", "generate", "demo")


def _user_fk() -> ForeignKey:
    return ForeignKey("core_user.id", ondelete="SET NULL")


def _customer_fk() -> ForeignKey:
    return ForeignKey("core_customer.id", ondelete="CASCADE")


def _product_fk(ondelete: str = "CASCADE") -> ForeignKey:
    return ForeignKey("operational_product.id", ondelete=ondelete)


class MiningRun(Base):
    """One mining of the order baskets: its parameters, what it found, how long it took."""

    __tablename__ = "smart_sales_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(10), default="running", index=True)
    #: min_support, min_confidence, min_lift, max_length, max_basket_size, since
    params: Mapped[dict] = mapped_column(JSON)
    baskets: Mapped[int] = mapped_column(Integer, default=0)
    #: baskets with more distinct products than ``max_basket_size``, left out
    baskets_capped: Mapped[int] = mapped_column(Integer, default=0)
    itemsets: Mapped[int] = mapped_column(Integer, default=0)
    rules: Mapped[int] = mapped_column(Integer, default=0)
    alerts_raised: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    started_by: Mapped[int | None] = mapped_column(_user_fk())
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Rule(Base):
    """An association rule X → Y of a run, with its metrics.

    ``key`` identifies the rule across runs (sorted product ids of both sides), so that a
    reviewer's mute outlives the run that found it.
    """

    __tablename__ = "smart_sales_rule"
    __table_args__ = (Index("ix_smart_sales_rule_run_key", "run_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("smart_sales_run.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    antecedent_ids: Mapped[list] = mapped_column(JSON)
    consequent_ids: Mapped[list] = mapped_column(JSON)
    antecedent: Mapped[list] = mapped_column(JSON)  # SKUs at mining time
    consequent: Mapped[list] = mapped_column(JSON)
    support: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    lift: Mapped[float] = mapped_column(Float)
    leverage: Mapped[float] = mapped_column(Float)
    #: ``None`` when infinite (confidence 1)
    conviction: Mapped[float | None] = mapped_column(Float)
    #: baskets holding both sides
    count: Mapped[int] = mapped_column(Integer)


class MutedRule(Audited, Base):
    """A rule a reviewer switched off: it raises no alerts in this run or later ones."""

    __tablename__ = "smart_sales_muted_rule"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    muted_by: Mapped[int | None] = mapped_column(_user_fk())
    muted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Alert(Audited, Base):
    """A suggestion for a salesperson about one customer: offer a product, or win them back.

    ``reason`` holds the facts behind it (the rule's products and metrics, the upgrade, the
    churn signal) as data; screens phrase them in the reader's language. ``expected_value``
    is what acting is worth on average: confidence × price × margin for an offer, the value at
    risk for churn. ``value_tier`` is the customer's tier (A, B, C) when raised.
    """

    __tablename__ = "smart_sales_alert"
    __table_args__ = (
        Index("ix_smart_sales_alert_owner_state", "owner_id", "state", "expected_value_minor"),
        Index("ix_smart_sales_alert_customer", "customer_id", "state"),
        Index("ix_smart_sales_alert_raised", "raised_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(_customer_fk())
    kind: Mapped[str] = mapped_column(String(12))
    #: what the alert is about, as data: the product's name for an offer, the customer's name
    #: for churn (the record type's title in feeds and notifications)
    title: Mapped[str] = mapped_column(String(200), default="")
    product_id: Mapped[int | None] = mapped_column(_product_fk(), index=True)
    #: the product the customer holds that an up-sell upgrades from
    from_product_id: Mapped[int | None] = mapped_column(_product_fk("SET NULL"))
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("smart_sales_rule.id", ondelete="SET NULL"), index=True
    )
    rule_key: Mapped[str | None] = mapped_column(String(200))
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("smart_sales_run.id", ondelete="SET NULL")
    )
    owner_id: Mapped[int | None] = mapped_column(_user_fk())
    source: Mapped[str] = mapped_column(String(10), default="mining")
    reason: Mapped[dict] = mapped_column(JSON)
    probability: Mapped[float] = mapped_column(Float)
    price_minor: Mapped[int] = mapped_column(BigInteger, default=0, info=MONEY)
    margin_minor: Mapped[int] = mapped_column(BigInteger, default=0, info=MONEY)
    expected_value_minor: Mapped[int] = mapped_column(BigInteger, default=0, info=MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    value_tier: Mapped[str | None] = mapped_column(String(1))
    state: Mapped[str] = mapped_column(String(10), default="new")
    #: ``"<customer_id>:<product_id or kind>"`` while open, ``None`` once closed (unique)
    open_key: Mapped[str | None] = mapped_column(String(60), unique=True)
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    acted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    acted_by: Mapped[int | None] = mapped_column(_user_fk())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    dismissed_by: Mapped[int | None] = mapped_column(_user_fk())
    dismiss_reason: Mapped[str | None] = mapped_column(String(20))
    dismiss_note: Mapped[str | None] = mapped_column(Text)
    converted_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("operational_order.id", ondelete="SET NULL")
    )
    credited_minor: Mapped[int] = mapped_column(BigInteger, default=0, info=MONEY)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


ALL_MODELS = (MiningRun, Rule, MutedRule, Alert)
