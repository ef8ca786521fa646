"""Sample rollups: metric history older than a day compacted into one-minute buckets.

A rollup holds, per metric, instance and minute, the count, minimum, maximum and sum of the
raw samples it replaced (the mean is sum / count) and the newest of them with its time (so a
late sample merged into a bucket later keeps "last" right). The ``samples`` table is not
touched: compaction (``vigil.store._rollups``) moves rows from it at cleanup time.

Going up creates the empty table: every sample stays where it is. Going down writes each
rollup back as one sample, its mean at the bucket's start, so the older schema's charts and
backtests still see the history (the count, minimum and maximum within the minute cannot be
kept there), and then drops the table.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sample_rollups",
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("instance", sa.String(length=100), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("min", sa.Double(), nullable=False),
        sa.Column("max", sa.Double(), nullable=False),
        sa.Column("sum", sa.Double(), nullable=False),
        sa.Column("last", sa.Double(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("metric", "start", "instance", name=op.f("pk_sample_rollups")),
    )
    op.create_index(op.f("ix_sample_rollups_start"), "sample_rollups", ["start"], unique=False)


def downgrade() -> None:
    # One statement, the same arithmetic on both databases, the times copied as stored.
    op.execute(
        sa.text(
            "INSERT INTO samples (instance, metric, time, value) "
            'SELECT instance, metric, start, "sum" / "count" FROM sample_rollups '
            "ORDER BY start, metric, instance"
        )
    )
    op.drop_index(op.f("ix_sample_rollups_start"), table_name="sample_rollups")
    op.drop_table("sample_rollups")
