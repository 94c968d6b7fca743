"""Customers, their identities and tags.

Revision ID: core_0002
Revises: core_0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision = "core_0002"
down_revision = "core_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the customer tables."""
    op.create_table(
        "core_customer",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("given_name", sa.String(100)),
        sa.Column("family_name", sa.String(100)),
        sa.Column(
            "company_id",
            sa.Integer(),
            sa.ForeignKey(
                "core_customer.id",
                ondelete="SET NULL",
                name="fk_core_customer_company_id_core_customer",
            ),
        ),
        sa.Column("address", sa.Text()),
        sa.Column("country", sa.String(2)),
        sa.Column("language", sa.String(10)),
        sa.Column(
            "owner_id",
            sa.Integer(),
            sa.ForeignKey(
                "core_user.id", ondelete="SET NULL", name="fk_core_customer_owner_id_core_user"
            ),
        ),
        sa.Column("source_channel", sa.String(30)),
        sa.Column("external_ref", sa.String(100)),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column(
            "search_key",
            sa.String(200).with_variant(sa.String(200, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.UniqueConstraint("external_ref", name="uq_core_customer_external_ref"),
    )
    op.create_index("ix_core_customer_search_key", "core_customer", ["search_key", "id"])
    op.create_index("ix_core_customer_owner_id", "core_customer", ["owner_id", "id"])
    op.create_index("ix_core_customer_company_id", "core_customer", ["company_id"])
    op.create_table(
        "core_customer_identity",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "customer_id",
            sa.Integer(),
            sa.ForeignKey(
                "core_customer.id",
                ondelete="CASCADE",
                name="fk_core_customer_identity_customer_id_core_customer",
            ),
            nullable=False,
        ),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("value", sa.String(254), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("channel", "value", name="uq_core_customer_identity"),
    )
    op.create_index(
        "ix_core_customer_identity_customer_id", "core_customer_identity", ["customer_id"]
    )
    op.create_table(
        "core_customer_tag",
        sa.Column(
            "customer_id",
            sa.Integer(),
            sa.ForeignKey(
                "core_customer.id",
                ondelete="CASCADE",
                name="fk_core_customer_tag_customer_id_core_customer",
            ),
            primary_key=True,
        ),
        sa.Column("tag", sa.String(50), primary_key=True),
    )
    op.create_index("ix_core_customer_tag_tag", "core_customer_tag", ["tag", "customer_id"])


def downgrade() -> None:
    """Drop the customer tables."""
    op.drop_table("core_customer_tag")
    op.drop_table("core_customer_identity")
    op.drop_table("core_customer")
