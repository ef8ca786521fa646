"""Discord messages per incident group: when incident grouping is on, the bot keeps one message
per group (``discord_group_messages``, keyed by the group) instead of one per incident.

Nothing existing changes: ``discord_messages`` keeps its rows, and incidents posted one by one
before this migration go on being edited in their own messages.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "discord_group_messages",
        sa.Column("group_id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("nonce", sa.String(length=25), nullable=False),
        sa.Column("rendered_event_id", sa.BigInteger(), nullable=True),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["incident_groups.id"],
            name=op.f("fk_discord_group_messages_group_id_incident_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", name=op.f("pk_discord_group_messages")),
    )


def downgrade() -> None:
    # The groups' messages stay in Discord; below 0012 nothing edits them any more.
    op.drop_table("discord_group_messages")
