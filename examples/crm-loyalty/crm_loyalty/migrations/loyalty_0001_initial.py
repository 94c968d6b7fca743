"""Notes on customers.

Revision ID: loyalty_0001
"""

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision = "loyalty_0001"
down_revision = None
branch_labels = ("loyalty",)
depends_on = "core_0002"  # the core revision that creates core_customer and core_user

TABLE = "loyalty_note"


def upgrade() -> None:
    """Create the notes table."""
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["core_customer.id"],
            name=op.f(f"fk_{TABLE}_customer_id_core_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["core_user.id"],
            name=op.f(f"fk_{TABLE}_owner_id_core_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
    )
    op.create_index(op.f(f"ix_{TABLE}_customer_id"), TABLE, ["customer_id"])
    op.create_index(op.f(f"ix_{TABLE}_owner_id"), TABLE, ["owner_id"])


def downgrade() -> None:
    """Drop the notes table."""
    op.drop_table(TABLE)
