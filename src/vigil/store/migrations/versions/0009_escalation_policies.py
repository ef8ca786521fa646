"""Escalation policies (named steps of channels an unacknowledged incident goes through), and
channels' delivery mode (realtime, or an hourly or daily digest).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 19:30:00

A new table and three channel columns with defaults: every existing row is kept, every
existing channel stays realtime, and a database without policies notifies exactly as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "escalation_policies",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("repeat_minutes", sa.Integer(), nullable=True),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("severities", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_escalation_policies")),
    )
    with op.batch_alter_table("notification_channels") as batch:
        batch.add_column(
            sa.Column("delivery", sa.String(length=16), server_default="realtime", nullable=False)
        )
        batch.add_column(
            sa.Column("digest_at", sa.String(length=8), server_default="09:00", nullable=False)
        )
        batch.add_column(
            sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("notification_channels") as batch:
        batch.drop_column("timezone")
        batch.drop_column("digest_at")
        batch.drop_column("delivery")
    op.drop_table("escalation_policies")
