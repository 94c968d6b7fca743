"""Tables of the collaborative module.

Teams are the core's ``core_team``; this module adds what a department needs (its kind, its
lead, members with a role), customers' account teams, and the generic conversation: messages,
mentions and followers refer to any record by ``(record_type, record_id)``, a
:class:`core.records.RecordType` name and id, the way Odoo's chatter refers to ``(model,
res_id)``. Rows pointing to a customer also carry ``customer_id``, so deleting the customer
deletes them and record rules can filter them in SQL.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
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

#: Kinds of department (``[collaborative] team_kinds`` may replace the list).
TEAM_KINDS = ("sales", "service", "marketing", "finance", "operations", "other")
MESSAGE_KINDS = ("note", "comment", "event")
HANDOFF_STATUSES = ("pending", "accepted", "returned", "cancelled")
EMAIL_CHOICES = ("off", "immediate", "digest")
#: ``none``: not to be mailed; ``pending``: waiting for ``crm collaborative deliver``;
#: ``digest``: waiting for the user's daily digest; ``sent``; ``failed`` (see ``delivery``).
EMAIL_STATUSES = ("none", "pending", "digest", "sent", "failed")
PARTNER_KINDS = ("supplier", "distributor", "reseller", "referral", "service_provider")
PARTNER_RELATIONS = ("referred_by", "served_by", "supplied_by", "sold_by", "involved")


def _user_fk(ondelete: str = "SET NULL") -> ForeignKey:
    return ForeignKey("core_user.id", ondelete=ondelete)


def _team_fk(ondelete: str = "CASCADE") -> ForeignKey:
    return ForeignKey("core_team.id", ondelete=ondelete)


def _customer_fk() -> ForeignKey:
    return ForeignKey("core_customer.id", ondelete="CASCADE")


class TeamProfile(Audited, Base):
    """What a department is: its kind and its lead (who hand-offs escalate to)."""

    __tablename__ = "collaborative_team"

    team_id: Mapped[int] = mapped_column(_team_fk(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), default="other")
    lead_id: Mapped[int | None] = mapped_column(_user_fk(), index=True)
    description: Mapped[str] = mapped_column(Text, default="")


class Member(Audited, Base):
    """A user in a team, with their role there; a user may belong to several teams."""

    __tablename__ = "collaborative_member"

    team_id: Mapped[int] = mapped_column(_team_fk(), primary_key=True)
    user_id: Mapped[int] = mapped_column(_user_fk("CASCADE"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(60), default="member")
    joined_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AccountTeam(Audited, Base):
    """The team responsible for a customer; its members see the customer (record rule)."""

    __tablename__ = "collaborative_account_team"

    customer_id: Mapped[int] = mapped_column(_customer_fk(), primary_key=True)
    team_id: Mapped[int] = mapped_column(_team_fk(), index=True)
    assigned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    assigned_by: Mapped[int | None] = mapped_column(_user_fk())


class Message(Audited, Base):
    """A note (internal), a comment (tells followers) or an event line on any record.

    ``parent_id`` threads replies under a message; ``version`` guards edits.
    """

    __tablename__ = "collaborative_message"
    __table_args__ = (
        Index("ix_collaborative_message_record", "record_type", "record_id", "id"),
        Index("ix_collaborative_message_customer", "customer_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_type: Mapped[str] = mapped_column(String(60))
    record_id: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[int | None] = mapped_column(_customer_fk())
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("collaborative_message.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(_user_fk())
    kind: Mapped[str] = mapped_column(String(10), default="comment")
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    edited_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class Mention(Base):
    """A user or a team mentioned in a message (exactly one of the two is set)."""

    __tablename__ = "collaborative_mention"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("collaborative_message.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(_user_fk("CASCADE"))
    team_id: Mapped[int | None] = mapped_column(_team_fk())


class Follower(Base):
    """A user following a record: comments and changes on it reach them.

    ``reason`` says how they came to follow it: ``manual``, ``author``, ``mentioned``,
    ``handoff``.
    """

    __tablename__ = "collaborative_follower"
    __table_args__ = (
        UniqueConstraint(
            "record_type", "record_id", "user_id", name="uq_collaborative_follower_record_user"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_type: Mapped[str] = mapped_column(String(60))
    record_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(_user_fk("CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(20), default="manual")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notification(Base):
    """One thing one user is told about: shown in their inbox, and mailed per their choice.

    ``key`` makes it unique per user (``message:42``): a user mentioned twice in one message,
    or both by name and through a team, is told once. The ``email_*`` columns drive delivery
    (claim, hand-over to the SMTP server, sent), as the operational module's mailings do.
    """

    __tablename__ = "collaborative_notification"
    __table_args__ = (
        UniqueConstraint("user_id", "key", name="uq_collaborative_notification_user_key"),
        Index("ix_collaborative_notification_user", "user_id", "read_at", "id"),
        Index("ix_collaborative_notification_email", "email_status", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(_user_fk("CASCADE"))
    key: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(120))
    title: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(String(300))
    record_type: Mapped[str | None] = mapped_column(String(60))
    record_id: Mapped[int | None] = mapped_column(Integer)
    customer_id: Mapped[int | None] = mapped_column(_customer_fk(), index=True)
    actor_id: Mapped[int | None] = mapped_column(_user_fk())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    email_status: Mapped[str] = mapped_column(String(10), default="none")
    email_attempts: Mapped[int] = mapped_column(Integer, default=0)
    email_claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    email_handover_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    emailed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    email_error: Mapped[str | None] = mapped_column(Text)


class Preference(Base):
    """How a user wants to be told: in the inbox, and by e-mail at once, daily, or never."""

    __tablename__ = "collaborative_preference"

    user_id: Mapped[int] = mapped_column(_user_fk("CASCADE"), primary_key=True)
    in_app: Mapped[bool] = mapped_column(Boolean, default=True)
    email: Mapped[str] = mapped_column(String(10), default="immediate")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Digest(Base):
    """One user's daily digest for one day: the unique pair is what keeps it from going twice."""

    __tablename__ = "collaborative_digest"
    __table_args__ = (UniqueConstraint("user_id", "day", name="uq_collaborative_digest_user_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(_user_fk("CASCADE"))
    day: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="claimed")
    items: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    handover_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)


class Handoff(Audited, Base):
    """A record handed from one team to another, waiting for it to accept or return it."""

    __tablename__ = "collaborative_handoff"
    __table_args__ = (
        Index("ix_collaborative_handoff_to", "to_team_id", "status", "deadline"),
        Index("ix_collaborative_handoff_record", "record_type", "record_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_type: Mapped[str] = mapped_column(String(60))
    record_id: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[int | None] = mapped_column(_customer_fk())
    from_team_id: Mapped[int | None] = mapped_column(_team_fk("SET NULL"))
    to_team_id: Mapped[int] = mapped_column(_team_fk())
    created_by: Mapped[int | None] = mapped_column(_user_fk())
    message: Mapped[str] = mapped_column(Text, default="")
    deadline: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    decided_by: Mapped[int | None] = mapped_column(_user_fk())
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class Partner(Audited, Base):
    """A company in the customer's value chain: supplier, distributor, reseller, referrer..."""

    __tablename__ = "collaborative_partner"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    website: Mapped[str | None] = mapped_column(String(300))
    notes: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class PartnerContact(Audited, Base):
    """A person at a partner; ``user_id`` is their sign-in when customers are shared with them."""

    __tablename__ = "collaborative_partner_contact"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner_id: Mapped[int] = mapped_column(
        ForeignKey("collaborative_partner.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    position: Mapped[str] = mapped_column(String(100), default="")
    user_id: Mapped[int | None] = mapped_column(_user_fk(), unique=True)


class PartnerLink(Audited, Base):
    """A partner's part in a customer or an opportunity (referred by, served by...)."""

    __tablename__ = "collaborative_partner_link"
    __table_args__ = (
        UniqueConstraint(
            "partner_id",
            "record_type",
            "record_id",
            "relation",
            name="uq_collaborative_partner_link",
        ),
        Index("ix_collaborative_partner_link_record", "record_type", "record_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner_id: Mapped[int] = mapped_column(
        ForeignKey("collaborative_partner.id", ondelete="CASCADE")
    )
    record_type: Mapped[str] = mapped_column(String(60))
    record_id: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[int | None] = mapped_column(_customer_fk(), index=True)
    relation: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Share(Audited, Base):
    """A customer shared with one user (a partner's contact), who sees that customer only."""

    __tablename__ = "collaborative_share"

    customer_id: Mapped[int] = mapped_column(_customer_fk(), primary_key=True)
    user_id: Mapped[int] = mapped_column(_user_fk("CASCADE"), primary_key=True, index=True)
    granted_by: Mapped[int | None] = mapped_column(_user_fk())
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")


ALL_MODELS = (
    TeamProfile,
    Member,
    AccountTeam,
    Message,
    Mention,
    Follower,
    Notification,
    Preference,
    Digest,
    Handoff,
    Partner,
    PartnerContact,
    PartnerLink,
    Share,
)
