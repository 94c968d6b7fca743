"""Teams, the user's team, and each role's record scope (own, team, all).

Revision ID: core_0003
Revises: core_0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0003"
down_revision = "core_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create teams; give users a team and roles a record scope."""
    op.create_table(
        "core_team",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.UniqueConstraint("name", name="uq_core_team_name"),
    )
    with op.batch_alter_table("core_user") as batch:
        batch.add_column(
            sa.Column(
                "team_id",
                sa.Integer(),
                sa.ForeignKey(
                    "core_team.id", ondelete="SET NULL", name="fk_core_user_team_id_core_team"
                ),
                nullable=True,
            )
        )
        batch.create_index("ix_core_user_team_id", ["team_id"])
    with op.batch_alter_table("core_role") as batch:
        batch.add_column(sa.Column("scope", sa.String(10), nullable=False, server_default="all"))


def downgrade() -> None:
    """Drop teams and scopes."""
    with op.batch_alter_table("core_role") as batch:
        batch.drop_column("scope")
    with op.batch_alter_table("core_user") as batch:
        batch.drop_index("ix_core_user_team_id")
        batch.drop_column("team_id")
    op.drop_table("core_team")
