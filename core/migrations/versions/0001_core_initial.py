"""Core tables: modules, users, roles, permissions, tokens, audit log, attestations, settings.

Revision ID: core_0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision = "core_0001"
down_revision = None
branch_labels = ("core",)
depends_on = None


def upgrade() -> None:
    """Create the core tables and make the audit log append-only."""
    op.create_table(
        "core_module",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("installed_version", sa.String(40)),
        sa.Column("previous_state", sa.String(20)),
        sa.Column("operation_started_at", UTCDateTime()),
        sa.Column("last_error", sa.Text()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "core_user",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("language", sa.String(10), nullable=False),
        sa.Column("initial_password", sa.Boolean(), nullable=False),
        sa.Column("password_changed_at", UTCDateTime()),
        sa.Column("session_epoch", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("email", name="uq_core_user_email"),
    )
    op.create_table(
        "core_role",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("module", sa.String(40), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
    )
    op.create_table(
        "core_permission",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("module", sa.String(40), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
    )
    op.create_table(
        "core_role_permission",
        sa.Column(
            "role",
            sa.String(40),
            sa.ForeignKey(
                "core_role.name", ondelete="CASCADE", name="fk_core_role_permission_role_core_role"
            ),
            primary_key=True,
        ),
        sa.Column(
            "permission",
            sa.String(100),
            sa.ForeignKey(
                "core_permission.name",
                ondelete="CASCADE",
                name="fk_core_role_permission_permission_core_permission",
            ),
            primary_key=True,
        ),
    )
    op.create_table(
        "core_user_role",
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey(
                "core_user.id", ondelete="CASCADE", name="fk_core_user_role_user_id_core_user"
            ),
            primary_key=True,
        ),
        sa.Column(
            "role",
            sa.String(40),
            sa.ForeignKey(
                "core_role.name", ondelete="CASCADE", name="fk_core_user_role_role_core_role"
            ),
            primary_key=True,
        ),
    )
    op.create_table(
        "core_api_token",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey(
                "core_user.id", ondelete="CASCADE", name="fk_core_api_token_user_id_core_user"
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime()),
        sa.Column("last_used_at", UTCDateTime()),
        sa.Column("revoked_at", UTCDateTime()),
        sa.UniqueConstraint("token_hash", name="uq_core_api_token_token_hash"),
    )
    op.create_table(
        "core_audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_id", sa.Integer()),
        sa.Column("actor", sa.String(254), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("model", sa.String(80), nullable=False),
        sa.Column("record_id", sa.String(80)),
        sa.Column("before", sa.JSON()),
        sa.Column("after", sa.JSON()),
        sa.Column("detail", sa.Text()),
        sa.Column("ip", sa.String(45)),
    )
    op.create_index("ix_core_audit_log_model_record", "core_audit_log", ["model", "record_id"])
    op.create_index(
        "ix_core_audit_log_action_actor_at", "core_audit_log", ["action", "actor", "at"]
    )
    op.create_table(
        "core_attestation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("check_id", sa.String(60), nullable=False),
        sa.Column("by_email", sa.String(254), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_core_attestation_check_id", "core_attestation", ["check_id"])
    op.create_table(
        "core_setting",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.JSON()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    _make_audit_append_only()


def _make_audit_append_only() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER core_audit_log_no_{verb.lower()} BEFORE {verb} ON core_audit_log "
                "BEGIN SELECT RAISE(ABORT, 'core_audit_log is append-only'); END"
            )
        return
    op.execute(
        "CREATE FUNCTION core_audit_log_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'core_audit_log is append-only'; END $$ LANGUAGE plpgsql"
    )
    op.execute(
        "CREATE TRIGGER core_audit_log_no_change BEFORE UPDATE OR DELETE ON core_audit_log "
        "FOR EACH ROW EXECUTE FUNCTION core_audit_log_append_only()"
    )
    op.execute(
        "CREATE TRIGGER core_audit_log_no_truncate BEFORE TRUNCATE ON core_audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION core_audit_log_append_only()"
    )


def downgrade() -> None:
    """Drop every core table."""
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP TRIGGER IF EXISTS core_audit_log_no_change ON core_audit_log")
        op.execute("DROP TRIGGER IF EXISTS core_audit_log_no_truncate ON core_audit_log")
        op.execute("DROP FUNCTION IF EXISTS core_audit_log_append_only()")
    for table in (
        "core_setting",
        "core_attestation",
        "core_audit_log",
        "core_api_token",
        "core_user_role",
        "core_role_permission",
        "core_permission",
        "core_role",
        "core_user",
        "core_module",
    ):
        op.drop_table(table)
