"""Ingest tokens bound to an instance name; signed-out sessions kept in the database.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("instance", sa.String(length=100), nullable=True))
    op.create_table(
        "signed_out_sessions",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("user_name", sa.String(length=100), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_signed_out_sessions")),
    )
    op.create_index(
        op.f("ix_signed_out_sessions_expires_at"), "signed_out_sessions", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_signed_out_sessions_expires_at"), table_name="signed_out_sessions")
    op.drop_table("signed_out_sessions")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("instance")
