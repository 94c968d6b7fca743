"""Points earned per order.

Revision ID: loyalty_0002
"""

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision = "loyalty_0002"
down_revision = "loyalty_0001"
branch_labels = None
depends_on = None

TABLE = "loyalty_points"


def upgrade() -> None:
    """Create the points ledger."""
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("order_ref", sa.String(length=64), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["core_customer.id"],
            name=op.f(f"fk_{TABLE}_customer_id_core_customer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
        sa.UniqueConstraint("order_id", name=op.f(f"uq_{TABLE}_order_id")),
    )
    op.create_index(op.f(f"ix_{TABLE}_customer_id"), TABLE, ["customer_id"])


def downgrade() -> None:
    """Drop the points ledger."""
    op.drop_table(TABLE)
