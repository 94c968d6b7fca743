"""Collaborative module: departments, account teams, conversations on any record, followers,
notifications and digests, hand-offs between teams, the partner network.

Revision ID: collaborative_0001
"""

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision = "collaborative_0001"
down_revision = None
branch_labels = ("collaborative",)
depends_on = "core_0003"


def upgrade() -> None:
    """Create the collaborative tables."""
    op.create_table(
        "collaborative_partner",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("website", sa.String(length=300), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collaborative_partner")),
    )
    op.create_index(
        op.f("ix_collaborative_partner_kind"), "collaborative_partner", ["kind"], unique=False
    )
    op.create_index(
        op.f("ix_collaborative_partner_name"), "collaborative_partner", ["name"], unique=False
    )
    op.create_table(
        "collaborative_digest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=False),
        sa.Column("handover_at", UTCDateTime(), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["core_user.id"],
            name=op.f("fk_collaborative_digest_user_id_core_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collaborative_digest")),
        sa.UniqueConstraint("user_id", "day", name="uq_collaborative_digest_user_day"),
    )
    op.create_table(
        "collaborative_follower",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_type", sa.String(length=60), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["core_user.id"],
            name=op.f("fk_collaborative_follower_user_id_core_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collaborative_follower")),
        sa.UniqueConstraint(
            "record_type", "record_id", "user_id", name="uq_collaborative_follower_record_user"
        ),
    )
    op.create_index(
        op.f("ix_collaborative_follower_user_id"),
        "collaborative_follower",
        ["user_id"],
        unique=False,
    )
    op.create_table(
        "collaborative_member",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=60), nullable=False),
        sa.Column("joined_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["core_team.id"],
            name=op.f("fk_collaborative_member_team_id_core_team"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["core_user.id"],
            name=op.f("fk_collaborative_member_user_id_core_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", "user_id", name=op.f("pk_collaborative_member")),
    )
    op.create_index(
        op.f("ix_collaborative_member_user_id"), "collaborative_member", ["user_id"], unique=False
    )
    op.create_table(
        "collaborative_partner_contact",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("position", sa.String(length=100), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["collaborative_partner.id"],
            name=op.f("fk_collaborative_partner_contact_partner_id_collaborative_partner"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["core_user.id"],
            name=op.f("fk_collaborative_partner_contact_user_id_core_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collaborative_partner_contact")),
        sa.UniqueConstraint("user_id", name=op.f("uq_collaborative_partner_contact_user_id")),
    )
    op.create_index(
        op.f("ix_collaborative_partner_contact_partner_id"),
        "collaborative_partner_contact",
        ["partner_id"],
        unique=False,
    )
    op.create_table(
        "collaborative_preference",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("in_app", sa.Boolean(), nullable=False),
        sa.Column("email", sa.String(length=10), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["core_user.id"],
            name=op.f("fk_collaborative_preference_user_id_core_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_collaborative_preference")),
    )
    op.create_table(
        "collaborative_team",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["core_user.id"],
            name=op.f("fk_collaborative_team_lead_id_core_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["core_team.id"],
            name=op.f("fk_collaborative_team_team_id_core_team"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_collaborative_team")),
    )
    op.create_index(
        op.f("ix_collaborative_team_lead_id"), "collaborative_team", ["lead_id"], unique=False
    )
    op.create_table(
        "collaborative_account_team",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("assigned_at", UTCDateTime(), nullable=False),
        sa.Column("assigned_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["assigned_by"],
            ["core_user.id"],
            name=op.f("fk_collaborative_account_team_assigned_by_core_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["core_customer.id"],
            name=op.f("fk_collaborative_account_team_customer_id_core_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["core_team.id"],
            name=op.f("fk_collaborative_account_team_team_id_core_team"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_collaborative_account_team")),
    )
    op.create_index(
        op.f("ix_collaborative_account_team_team_id"),
        "collaborative_account_team",
        ["team_id"],
        unique=False,
    )
    op.create_table(
        "collaborative_handoff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_type", sa.String(length=60), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("from_team_id", sa.Integer(), nullable=True),
        sa.Column("to_team_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("deadline", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("escalated_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["core_user.id"],
            name=op.f("fk_collaborative_handoff_created_by_core_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["core_customer.id"],
            name=op.f("fk_collaborative_handoff_customer_id_core_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["core_user.id"],
            name=op.f("fk_collaborative_handoff_decided_by_core_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["from_team_id"],
            ["core_team.id"],
            name=op.f("fk_collaborative_handoff_from_team_id_core_team"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["to_team_id"],
            ["core_team.id"],
            name=op.f("fk_collaborative_handoff_to_team_id_core_team"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collaborative_handoff")),
    )
    op.create_index(
        "ix_collaborative_handoff_record",
        "collaborative_handoff",
        ["record_type", "record_id", "id"],
        unique=False,
    )
    op.create_index(
        "ix_collaborative_handoff_to",
        "collaborative_handoff",
        ["to_team_id", "status", "deadline"],
        unique=False,
    )
    op.create_table(
        "collaborative_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_type", sa.String(length=60), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("edited_at", UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["core_user.id"],
            name=op.f("fk_collaborative_message_author_id_core_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["core_customer.id"],
            name=op.f("fk_collaborative_message_customer_id_core_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["collaborative_message.id"],
            name=op.f("fk_collaborative_message_parent_id_collaborative_message"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collaborative_message")),
    )
    op.create_index(
        "ix_collaborative_message_customer",
        "collaborative_message",
        ["customer_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_collaborative_message_parent_id"),
        "collaborative_message",
        ["parent_id"],
        unique=False,
    )
    op.create_index(
        "ix_collaborative_message_record",
        "collaborative_message",
        ["record_type", "record_id", "id"],
        unique=False,
    )
    op.create_table(
        "collaborative_notification",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("label", sa.String(length=120), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("url", sa.String(length=300), nullable=True),
        sa.Column("record_type", sa.String(length=60), nullable=True),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("read_at", UTCDateTime(), nullable=True),
        sa.Column("email_status", sa.String(length=10), nullable=False),
        sa.Column("email_attempts", sa.Integer(), nullable=False),
        sa.Column("email_claimed_at", UTCDateTime(), nullable=True),
        sa.Column("email_handover_at", UTCDateTime(), nullable=True),
        sa.Column("emailed_at", UTCDateTime(), nullable=True),
        sa.Column("email_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["core_user.id"],
            name=op.f("fk_collaborative_notification_actor_id_core_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["core_customer.id"],
            name=op.f("fk_collaborative_notification_customer_id_core_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["core_user.id"],
            name=op.f("fk_collaborative_notification_user_id_core_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collaborative_notification")),
        sa.UniqueConstraint("user_id", "key", name="uq_collaborative_notification_user_key"),
    )
    op.create_index(
        op.f("ix_collaborative_notification_customer_id"),
        "collaborative_notification",
        ["customer_id"],
        unique=False,
    )
    op.create_index(
        "ix_collaborative_notification_email",
        "collaborative_notification",
        ["email_status", "id"],
        unique=False,
    )
    op.create_index(
        "ix_collaborative_notification_user",
        "collaborative_notification",
        ["user_id", "read_at", "id"],
        unique=False,
    )
    op.create_table(
        "collaborative_partner_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("record_type", sa.String(length=60), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("relation", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["core_customer.id"],
            name=op.f("fk_collaborative_partner_link_customer_id_core_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["collaborative_partner.id"],
            name=op.f("fk_collaborative_partner_link_partner_id_collaborative_partner"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collaborative_partner_link")),
        sa.UniqueConstraint(
            "partner_id",
            "record_type",
            "record_id",
            "relation",
            name="uq_collaborative_partner_link",
        ),
    )
    op.create_index(
        op.f("ix_collaborative_partner_link_customer_id"),
        "collaborative_partner_link",
        ["customer_id"],
        unique=False,
    )
    op.create_index(
        "ix_collaborative_partner_link_record",
        "collaborative_partner_link",
        ["record_type", "record_id"],
        unique=False,
    )
    op.create_table(
        "collaborative_share",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("granted_by", sa.Integer(), nullable=True),
        sa.Column("granted_at", UTCDateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["core_customer.id"],
            name=op.f("fk_collaborative_share_customer_id_core_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["granted_by"],
            ["core_user.id"],
            name=op.f("fk_collaborative_share_granted_by_core_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["core_user.id"],
            name=op.f("fk_collaborative_share_user_id_core_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "user_id", name=op.f("pk_collaborative_share")),
    )
    op.create_index(
        op.f("ix_collaborative_share_user_id"), "collaborative_share", ["user_id"], unique=False
    )
    op.create_table(
        "collaborative_mention",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["collaborative_message.id"],
            name=op.f("fk_collaborative_mention_message_id_collaborative_message"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["core_team.id"],
            name=op.f("fk_collaborative_mention_team_id_core_team"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["core_user.id"],
            name=op.f("fk_collaborative_mention_user_id_core_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collaborative_mention")),
    )
    op.create_index(
        op.f("ix_collaborative_mention_message_id"),
        "collaborative_mention",
        ["message_id"],
        unique=False,
    )
    # ### end Alembic commands ###


def downgrade() -> None:
    """Drop the collaborative tables."""
    op.drop_table("collaborative_mention")
    op.drop_table("collaborative_share")
    op.drop_table("collaborative_partner_link")
    op.drop_table("collaborative_notification")
    op.drop_table("collaborative_message")
    op.drop_table("collaborative_handoff")
    op.drop_table("collaborative_account_team")
    op.drop_table("collaborative_team")
    op.drop_table("collaborative_preference")
    op.drop_table("collaborative_partner_contact")
    op.drop_table("collaborative_member")
    op.drop_table("collaborative_follower")
    op.drop_table("collaborative_digest")
    op.drop_table("collaborative_partner")
    # ### end Alembic commands ###
