"""Flap detection: each series' flap history and state, and whether an incident is flapping.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 19:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Server defaults: the rows already there are calm series and incidents not flapping.
    with op.batch_alter_table("rule_states") as batch:
        batch.add_column(
            sa.Column(
                "flap_history", sa.String(length=100), server_default=sa.text("''"), nullable=False
            )
        )
        batch.add_column(
            sa.Column("flapping", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(
            sa.Column("flapping", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("flapping")
    with op.batch_alter_table("rule_states") as batch:
        batch.drop_column("flapping")
        batch.drop_column("flap_history")
