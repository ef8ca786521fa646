"""Notification channels, snoozes and maintenance windows; the outbox learns its incident.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 11:13:21.735339
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE_SNOOZE = sa.text("ended_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "notification_channels",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column(
            "min_severity",
            sa.Enum(
                "info",
                "warning",
                "critical",
                name="severity",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("renotify_minutes", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_channels")),
        sa.UniqueConstraint("name", name=op.f("uq_notification_channels_name")),
    )
    op.create_table(
        "snoozes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["metric"],
            ["rules.metric"],
            name=op.f("fk_snoozes_metric_rules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snoozes")),
    )
    op.create_index(
        "uq_snoozes_live_metric",
        "snoozes",
        ["metric"],
        unique=True,
        sqlite_where=LIVE_SNOOZE,
        postgresql_where=LIVE_SNOOZE,
    )
    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "once",
                "weekly",
                name="window_kind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_windows")),
        sa.UniqueConstraint("name", name=op.f("uq_maintenance_windows_name")),
    )

    # SQLite adds a column in place (no table rebuild) when it is nullable or has a default.
    with op.batch_alter_table("notification_outbox") as batch:
        batch.add_column(sa.Column("incident_id", sa.Uuid(), nullable=True))
        batch.add_column(
            sa.Column("repeat", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    op.execute(
        "UPDATE notification_outbox SET incident_id = "
        "(SELECT events.incident_id FROM events WHERE events.id = notification_outbox.event_id)"
    )
    op.create_index(
        "ix_notification_outbox_incident_id_channel",
        "notification_outbox",
        ["incident_id", "channel"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_notification_outbox_incident_id_channel", table_name="notification_outbox")
    with op.batch_alter_table("notification_outbox") as batch:
        batch.drop_column("repeat")
        batch.drop_column("incident_id")
    for table in ("maintenance_windows", "snoozes", "notification_channels"):
        op.drop_table(table)
