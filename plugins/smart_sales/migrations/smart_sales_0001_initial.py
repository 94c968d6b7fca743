"""Smart-selling module: mining runs and their rules, muted rules, alerts.

Revision ID: smart_sales_0001
"""

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision = "smart_sales_0001"
down_revision = None
branch_labels = ("smart_sales",)
depends_on = "operational_0001"


def upgrade() -> None:
    """Create the smart-selling tables."""
    op.create_table(
        "smart_sales_muted_rule",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("muted_by", sa.Integer(), nullable=True),
        sa.Column("muted_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["muted_by"],
            ["core_user.id"],
            name=op.f("fk_smart_sales_muted_rule_muted_by_core_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_smart_sales_muted_rule")),
    )
    op.create_table(
        "smart_sales_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("baskets", sa.Integer(), nullable=False),
        sa.Column("baskets_capped", sa.Integer(), nullable=False),
        sa.Column("itemsets", sa.Integer(), nullable=False),
        sa.Column("rules", sa.Integer(), nullable=False),
        sa.Column("alerts_raised", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_by", sa.Integer(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["started_by"],
            ["core_user.id"],
            name=op.f("fk_smart_sales_run_started_by_core_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smart_sales_run")),
    )
    op.create_index(
        op.f("ix_smart_sales_run_started_at"), "smart_sales_run", ["started_at"], unique=False
    )
    op.create_index(op.f("ix_smart_sales_run_status"), "smart_sales_run", ["status"], unique=False)
    op.create_table(
        "smart_sales_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("antecedent_ids", sa.JSON(), nullable=False),
        sa.Column("consequent_ids", sa.JSON(), nullable=False),
        sa.Column("antecedent", sa.JSON(), nullable=False),
        sa.Column("consequent", sa.JSON(), nullable=False),
        sa.Column("support", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("lift", sa.Float(), nullable=False),
        sa.Column("leverage", sa.Float(), nullable=False),
        sa.Column("conviction", sa.Float(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["smart_sales_run.id"],
            name=op.f("fk_smart_sales_rule_run_id_smart_sales_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smart_sales_rule")),
    )
    op.create_index(
        "ix_smart_sales_rule_run_key", "smart_sales_rule", ["run_id", "key"], unique=False
    )
    op.create_table(
        "smart_sales_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("from_product_id", sa.Integer(), nullable=True),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("rule_key", sa.String(length=200), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.JSON(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("margin_minor", sa.BigInteger(), nullable=False),
        sa.Column("expected_value_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("value_tier", sa.String(length=1), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("open_key", sa.String(length=60), nullable=True),
        sa.Column("raised_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=True),
        sa.Column("acted_at", UTCDateTime(), nullable=True),
        sa.Column("acted_by", sa.Integer(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("dismissed_by", sa.Integer(), nullable=True),
        sa.Column("dismiss_reason", sa.String(length=20), nullable=True),
        sa.Column("dismiss_note", sa.Text(), nullable=True),
        sa.Column("converted_order_id", sa.Integer(), nullable=True),
        sa.Column("credited_minor", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["acted_by"],
            ["core_user.id"],
            name=op.f("fk_smart_sales_alert_acted_by_core_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["converted_order_id"],
            ["operational_order.id"],
            name=op.f("fk_smart_sales_alert_converted_order_id_operational_order"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["core_customer.id"],
            name=op.f("fk_smart_sales_alert_customer_id_core_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dismissed_by"],
            ["core_user.id"],
            name=op.f("fk_smart_sales_alert_dismissed_by_core_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["from_product_id"],
            ["operational_product.id"],
            name=op.f("fk_smart_sales_alert_from_product_id_operational_product"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["core_user.id"],
            name=op.f("fk_smart_sales_alert_owner_id_core_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["operational_product.id"],
            name=op.f("fk_smart_sales_alert_product_id_operational_product"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["smart_sales_rule.id"],
            name=op.f("fk_smart_sales_alert_rule_id_smart_sales_rule"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["smart_sales_run.id"],
            name=op.f("fk_smart_sales_alert_run_id_smart_sales_run"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smart_sales_alert")),
        sa.UniqueConstraint("open_key", name=op.f("uq_smart_sales_alert_open_key")),
    )
    op.create_index(
        "ix_smart_sales_alert_customer", "smart_sales_alert", ["customer_id", "state"], unique=False
    )
    op.create_index(
        op.f("ix_smart_sales_alert_expires_at"), "smart_sales_alert", ["expires_at"], unique=False
    )
    op.create_index(
        "ix_smart_sales_alert_owner_state",
        "smart_sales_alert",
        ["owner_id", "state", "expected_value_minor"],
        unique=False,
    )
    op.create_index(
        op.f("ix_smart_sales_alert_product_id"), "smart_sales_alert", ["product_id"], unique=False
    )
    op.create_index("ix_smart_sales_alert_raised", "smart_sales_alert", ["raised_at"], unique=False)
    op.create_index(
        op.f("ix_smart_sales_alert_rule_id"), "smart_sales_alert", ["rule_id"], unique=False
    )


def downgrade() -> None:
    """Drop the smart-selling tables."""
    op.drop_table("smart_sales_alert")
    op.drop_table("smart_sales_rule")
    op.drop_table("smart_sales_run")
    op.drop_table("smart_sales_muted_rule")
