"""Analytical module: customer classes, lifetime value, profitability, behaviour snapshots,
saved segments and campaigns; a summary column on runs for aggregated results.

Revision ID: analytical_0002
"""

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision = "analytical_0002"
down_revision = "analytical_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the snapshot, segment and campaign tables."""
    op.add_column("analytical_run", sa.Column("summary", sa.JSON(), nullable=True))
    op.create_table(
        "analytical_segment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["core_user.id"],
            name=op.f("fk_analytical_segment_created_by_core_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytical_segment")),
        sa.UniqueConstraint("name", name=op.f("uq_analytical_segment_name")),
    )
    op.create_index(
        op.f("ix_analytical_segment_created_at"), "analytical_segment", ["created_at"], unique=False
    )
    op.create_table(
        "analytical_behaviour",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("first_order", sa.Date(), nullable=False),
        sa.Column("last_order", sa.Date(), nullable=False),
        sa.Column("mean_gap_days", sa.Float(), nullable=True),
        sa.Column("days_since_last", sa.Integer(), nullable=False),
        sa.Column("probability_alive", sa.Float(), nullable=True),
        sa.Column("churn_risk", sa.String(length=10), nullable=False),
        sa.Column("churn_reason", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["core_customer.id"],
            name=op.f("fk_analytical_behaviour_customer_id_core_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["analytical_run.id"],
            name=op.f("fk_analytical_behaviour_run_id_analytical_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "customer_id", name=op.f("pk_analytical_behaviour")),
    )
    op.create_index(
        op.f("ix_analytical_behaviour_customer_id"),
        "analytical_behaviour",
        ["customer_id"],
        unique=False,
    )
    op.create_index(
        "ix_analytical_behaviour_risk",
        "analytical_behaviour",
        ["run_id", "churn_risk"],
        unique=False,
    )
    op.create_table(
        "analytical_campaign",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("control_percent", sa.Integer(), nullable=False),
        sa.Column("response_days", sa.Integer(), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("frozen_at", UTCDateTime(), nullable=True),
        sa.Column("targets", sa.Integer(), nullable=False),
        sa.Column("controls", sa.Integer(), nullable=False),
        sa.Column("mailing_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["core_user.id"],
            name=op.f("fk_analytical_campaign_created_by_core_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["mailing_id"],
            ["operational_mailing.id"],
            name=op.f("fk_analytical_campaign_mailing_id_operational_mailing"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["analytical_segment.id"],
            name=op.f("fk_analytical_campaign_segment_id_analytical_segment"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytical_campaign")),
    )
    op.create_index(
        op.f("ix_analytical_campaign_created_at"),
        "analytical_campaign",
        ["created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_analytical_campaign_name"), "analytical_campaign", ["name"], unique=False
    )
    op.create_index(
        op.f("ix_analytical_campaign_status"), "analytical_campaign", ["status"], unique=False
    )
    op.create_table(
        "analytical_class",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("klass", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["core_customer.id"],
            name=op.f("fk_analytical_class_customer_id_core_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["analytical_run.id"],
            name=op.f("fk_analytical_class_run_id_analytical_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "customer_id", name=op.f("pk_analytical_class")),
    )
    op.create_index(
        op.f("ix_analytical_class_customer_id"), "analytical_class", ["customer_id"], unique=False
    )
    op.create_index(
        "ix_analytical_class_klass", "analytical_class", ["run_id", "klass"], unique=False
    )
    op.create_table(
        "analytical_clv",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("frequency", sa.Integer(), nullable=False),
        sa.Column("recency", sa.Float(), nullable=False),
        sa.Column("t", sa.Float(), nullable=False),
        sa.Column("monetary_minor", sa.BigInteger(), nullable=False),
        sa.Column("expected_purchases", sa.Float(), nullable=False),
        sa.Column("probability_alive", sa.Float(), nullable=False),
        sa.Column("clv_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["core_customer.id"],
            name=op.f("fk_analytical_clv_customer_id_core_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["analytical_run.id"],
            name=op.f("fk_analytical_clv_run_id_analytical_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "customer_id", name=op.f("pk_analytical_clv")),
    )
    op.create_index(
        op.f("ix_analytical_clv_customer_id"), "analytical_clv", ["customer_id"], unique=False
    )
    op.create_index(
        "ix_analytical_clv_value", "analytical_clv", ["run_id", "clv_minor"], unique=False
    )
    op.create_table(
        "analytical_profit",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("revenue_minor", sa.BigInteger(), nullable=False),
        sa.Column("cogs_minor", sa.BigInteger(), nullable=False),
        sa.Column("cost_to_serve_minor", sa.BigInteger(), nullable=False),
        sa.Column("margin_minor", sa.BigInteger(), nullable=False),
        sa.Column("tier", sa.String(length=1), nullable=False),
        sa.Column("lines_without_cost", sa.Integer(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=True),
        sa.Column("preferred_channel", sa.String(length=30), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["core_customer.id"],
            name=op.f("fk_analytical_profit_customer_id_core_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["analytical_run.id"],
            name=op.f("fk_analytical_profit_run_id_analytical_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "customer_id", name=op.f("pk_analytical_profit")),
    )
    op.create_index(
        op.f("ix_analytical_profit_customer_id"), "analytical_profit", ["customer_id"], unique=False
    )
    op.create_index(
        "ix_analytical_profit_margin", "analytical_profit", ["run_id", "margin_minor"], unique=False
    )
    op.create_index(
        "ix_analytical_profit_tier", "analytical_profit", ["run_id", "tier"], unique=False
    )
    op.create_table(
        "analytical_campaign_member",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("grp", sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["analytical_campaign.id"],
            name=op.f("fk_analytical_campaign_member_campaign_id_analytical_campaign"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["core_customer.id"],
            name=op.f("fk_analytical_campaign_member_customer_id_core_customer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id", "customer_id", name=op.f("pk_analytical_campaign_member")
        ),
    )
    op.create_index(
        op.f("ix_analytical_campaign_member_customer_id"),
        "analytical_campaign_member",
        ["customer_id"],
        unique=False,
    )
    op.create_index(
        "ix_analytical_campaign_member_group",
        "analytical_campaign_member",
        ["campaign_id", "grp"],
        unique=False,
    )


def downgrade() -> None:
    """Drop them again."""
    op.drop_table("analytical_campaign_member")
    op.drop_table("analytical_profit")
    op.drop_table("analytical_clv")
    op.drop_table("analytical_class")
    op.drop_table("analytical_campaign")
    op.drop_table("analytical_behaviour")
    op.drop_table("analytical_segment")
    with op.batch_alter_table("analytical_run") as batch:
        batch.drop_column("summary")
