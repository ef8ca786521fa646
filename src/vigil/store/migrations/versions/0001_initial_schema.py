"""Initial schema, and the default rule catalogue (DESIGN section 2).

Revision ID: 0001
Revises:
Create Date: 2026-11-27 10:50:27.518338
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vigil.core.catalogue import DEFAULT_RULES

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "viewer",
                "admin",
                "ingest",
                name="token_role",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metric", sa.String(length=100), nullable=True),
        sa.Column("incident_id", sa.Uuid(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_at", "events", ["at"], unique=False)
    op.create_index("ix_events_incident_id", "events", ["incident_id"], unique=False)

    op.create_table(
        "incident_daily_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column(
            "severity",
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
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "severity", name=op.f("pk_incident_daily_counts")),
    )
    op.create_table(
        "rules",
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("warning", sa.Double(), nullable=True),
        sa.Column("critical", sa.Double(), nullable=True),
        sa.Column(
            "direction",
            sa.Enum(
                "above",
                "below",
                name="direction",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("breaches_required", sa.Integer(), nullable=False),
        sa.Column("recoveries_required", sa.Integer(), nullable=False),
        sa.Column("recovery", sa.Double(), nullable=True),
        sa.Column(
            "aggregate",
            sa.Enum(
                "max",
                "avg",
                "sum",
                "min",
                name="aggregate",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("metric", name=op.f("pk_rules")),
    )
    op.create_table(
        "samples",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("instance", sa.String(length=100), nullable=False),
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_samples")),
    )
    op.create_index("ix_samples_metric_time", "samples", ["metric", "time"], unique=False)
    op.create_index("ix_samples_time", "samples", ["time"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "viewer",
                "admin",
                name="user_role",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column(
            "severity",
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
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "acknowledged",
                "resolved",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "resolution",
            sa.Enum(
                "auto",
                "manual",
                name="resolution",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=True,
        ),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("peak_value", sa.Double(), nullable=False),
        sa.Column("last_value", sa.Double(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=100), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("resolved_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["metric"], ["rules.metric"], name=op.f("fk_incidents_metric_rules")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    op.create_index(
        "ix_incidents_metric_triggered_at_id",
        "incidents",
        ["metric", "triggered_at", "id"],
        unique=False,
    )
    op.create_index("ix_incidents_resolved_at", "incidents", ["resolved_at"], unique=False)
    op.create_index(
        "ix_incidents_severity_triggered_at_id",
        "incidents",
        ["severity", "triggered_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_incidents_status_triggered_at_id",
        "incidents",
        ["status", "triggered_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_incidents_triggered_at_id", "incidents", ["triggered_at", "id"], unique=False
    )
    op.create_index(
        "uq_incidents_open_metric",
        "incidents",
        ["metric"],
        unique=True,
        sqlite_where=sa.text("status != 'resolved'"),
        postgresql_where=sa.text("status != 'resolved'"),
    )

    op.create_table(
        "notification_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "sent",
                "failed",
                name="outbox_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_notification_outbox_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_outbox")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_notification_outbox_idempotency_key")),
    )
    op.create_index(
        "ix_notification_outbox_event_id", "notification_outbox", ["event_id"], unique=False
    )
    op.create_index(
        "ix_notification_outbox_sent_at", "notification_outbox", ["sent_at"], unique=False
    )
    op.create_index(
        "ix_notification_outbox_status_next_attempt_at",
        "notification_outbox",
        ["status", "next_attempt_at"],
        unique=False,
    )

    op.create_table(
        "rule_states",
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column("breach_streak", sa.Integer(), nullable=False),
        sa.Column("normal_streak", sa.Integer(), nullable=False),
        sa.Column("critical_streak", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["metric"],
            ["rules.metric"],
            name=op.f("fk_rule_states_metric_rules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("metric", name=op.f("pk_rule_states")),
    )
    _seed_default_rules()


def _seed_default_rules() -> None:
    # The catalogue is read from the core rather than copied here, so a fresh database starts
    # with the rules this version of Vigil ships; databases migrated earlier keep theirs.
    rules = sa.table(
        "rules",
        *(sa.column(name) for name in _RULE_COLUMNS),
    )
    op.bulk_insert(
        rules,
        [{name: rule.to_dict()[name] for name in _RULE_COLUMNS} for rule in DEFAULT_RULES],
    )


_RULE_COLUMNS = (
    "metric",
    "display_name",
    "description",
    "unit",
    "warning",
    "critical",
    "direction",
    "enabled",
    "breaches_required",
    "recoveries_required",
    "recovery",
    "aggregate",
)


def downgrade() -> None:
    # Children first; dropping a table drops its indexes.
    for table in (
        "rule_states",
        "notification_outbox",
        "incidents",
        "users",
        "samples",
        "rules",
        "incident_daily_counts",
        "events",
        "api_tokens",
    ):
        op.drop_table(table)
