"""The core's tables: module state, users, roles and permissions, tokens, audit, checklist."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.audit import Audited
from core.db import Base, UTCDateTime, utcnow

# Module states, as Odoo names them; the ``to_*`` states exist only while an operation runs.
UNINSTALLED = "uninstalled"
INSTALLED = "installed"
DISABLED = "disabled"
TO_INSTALL = "to_install"
TO_UPGRADE = "to_upgrade"
TO_REMOVE = "to_remove"
TO_DISABLE = "to_disable"
TRANSIENT_STATES = (TO_INSTALL, TO_UPGRADE, TO_REMOVE, TO_DISABLE)


class ModuleState(Base):
    """Where a module stands in its lifecycle."""

    __tablename__ = "core_module"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    state: Mapped[str] = mapped_column(String(20), default=UNINSTALLED)
    installed_version: Mapped[str | None] = mapped_column(String(40))
    previous_state: Mapped[str | None] = mapped_column(String(20))
    operation_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class User(Audited, Base):
    """A person who signs in to the CRM."""

    __tablename__ = "core_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255), info={"audit": False})
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    language: Mapped[str] = mapped_column(String(10), default="en")
    initial_password: Mapped[bool] = mapped_column(Boolean, default=False)
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, info={"audit": False})
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("core_team.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    roles: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def role_names(self) -> list[str]:
        """Names of this user's roles."""
        return sorted(r.role for r in self.roles)


class Role(Base):
    """A named set of permissions; the core's and the plugins' declarations are synced here."""

    __tablename__ = "core_role"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    module: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(Text, default="")
    #: Which records its holders see: ``own``, ``team`` or ``all`` (see ``core.records``).
    scope: Mapped[str] = mapped_column(String(10), default="all", server_default="all")


class Team(Base):
    """A group of users (a sales team, a department); record rules scope work to it."""

    __tablename__ = "core_team"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    label: Mapped[str] = mapped_column(String(200))


class Permission(Base):
    """The right to perform one action on one model, as ``model:action``."""

    __tablename__ = "core_permission"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    module: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(Text, default="")


class RolePermission(Base):
    """A permission granted to a role."""

    __tablename__ = "core_role_permission"

    role: Mapped[str] = mapped_column(
        ForeignKey("core_role.name", ondelete="CASCADE"), primary_key=True
    )
    permission: Mapped[str] = mapped_column(
        ForeignKey("core_permission.name", ondelete="CASCADE"), primary_key=True
    )


class UserRole(Base):
    """A role held by a user."""

    __tablename__ = "core_user_role"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("core_user.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(
        ForeignKey("core_role.name", ondelete="CASCADE"), primary_key=True
    )
    user: Mapped[User] = relationship(back_populates="roles")


class ApiToken(Base):
    """A bearer token for the API. Only its SHA-256 hash and a short prefix are stored."""

    __tablename__ = "core_api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("core_user.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="joined")


class AuditLog(Base):
    """One audited action. Rows are append-only: triggers refuse UPDATE and DELETE."""

    __tablename__ = "core_audit_log"
    __table_args__ = (
        Index("ix_core_audit_log_model_record", "model", "record_id"),
        Index("ix_core_audit_log_action_actor_at", "action", "actor", "at"),
        Index("ix_core_audit_log_action_ip_at", "action", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(254), default="system")
    action: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(80))
    record_id: Mapped[str | None] = mapped_column(String(80))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    detail: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(String(45))


class Attestation(Base):
    """A person's confirmation of a checklist item; the newest one per item counts."""

    __tablename__ = "core_attestation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    check_id: Mapped[str] = mapped_column(String(60), index=True)
    by_email: Mapped[str] = mapped_column(String(254))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Setting(Base):
    """A setting changed at run time (not from the environment), as JSON."""

    __tablename__ = "core_setting"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# The customer tables live with the customer code; importing them here puts every core table
# on ``Base.metadata`` whenever the core's models are loaded.
from core.customers.models import Customer, CustomerIdentity, CustomerTag  # noqa: E402, F401
from core.webhooks.models import WebhookDelivery, WebhookEndpoint  # noqa: E402, F401
