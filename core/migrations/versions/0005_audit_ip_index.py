"""An index for counting the failed sign-ins of one address (login throttling per IP).

Revision ID: core_0005
Revises: core_0004
Create Date: 2026-12-10
"""

from alembic import op

revision = "core_0005"
down_revision = "core_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Index the audit log by action, address and time."""
    op.create_index("ix_core_audit_log_action_ip_at", "core_audit_log", ["action", "ip", "at"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_core_audit_log_action_ip_at", table_name="core_audit_log")
