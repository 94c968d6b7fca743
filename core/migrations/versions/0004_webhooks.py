"""Outbound webhooks: endpoints and their deliveries.

Revision ID: core_0004
Revises: core_0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision = "core_0004"
down_revision = "core_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the webhook endpoint and delivery tables."""
    op.create_table(
        "core_webhook_endpoint",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "created_by_id",
            sa.Integer(),
            sa.ForeignKey(
                "core_user.id",
                ondelete="SET NULL",
                name="fk_core_webhook_endpoint_created_by_id_core_user",
            ),
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "core_webhook_delivery",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column(
            "endpoint_id",
            sa.Integer(),
            sa.ForeignKey(
                "core_webhook_endpoint.id",
                ondelete="CASCADE",
                name="fk_core_webhook_delivery_endpoint_id_core_webhook_endpoint",
            ),
            nullable=False,
        ),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event", sa.String(100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("locked_until", UTCDateTime()),
        sa.Column("last_attempt_at", UTCDateTime()),
        sa.Column("delivered_at", UTCDateTime()),
        sa.Column("response_status", sa.Integer()),
        sa.Column("duration_ms", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_core_webhook_delivery_event_id", "core_webhook_delivery", ["event_id"])
    op.create_index(
        "ix_core_webhook_delivery_status_next_attempt_at",
        "core_webhook_delivery",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        "ix_core_webhook_delivery_endpoint_id_id", "core_webhook_delivery", ["endpoint_id", "id"]
    )


def downgrade() -> None:
    """Drop the webhook tables."""
    op.drop_table("core_webhook_delivery")
    op.drop_table("core_webhook_endpoint")
