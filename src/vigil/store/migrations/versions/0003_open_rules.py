"""The open rule model: rules keyed by name, of several kinds, per instance (issue 13).

Every existing rule becomes the rule named after its metric; incidents, streaks, events and
snoozes learn the rule's name (the metric, for everything written before), and the one open
incident guarantee moves from (metric) to (rule, series).

SQLite rebuilds a table to change its keys, and a rebuilt parent table would take its
children's rows with it (ON DELETE CASCADE, foreign keys are on): so the children let go of
``rules`` first, ``rules`` is rebuilt, and they take hold of it again by name.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("status != 'resolved'")


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    # 1. The children let go of rules.metric.
    for table in ("incidents", "rule_states", "snoozes"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_metric_rules", type_="foreignkey")

    # 2. Rules: a name of their own (their metric, for every existing rule) and the new fields.
    with op.batch_alter_table("rules") as batch:
        batch.add_column(sa.Column("name", sa.String(length=100), nullable=True))
        batch.add_column(
            sa.Column(
                "kind",
                _enum("rule_kind", "threshold", "absent", "composite"),
                nullable=False,
                server_default="threshold",
            )
        )
        batch.add_column(sa.Column("absent_for", sa.Double(), nullable=True))
        batch.add_column(sa.Column("condition", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column(
                "severity", _enum("rule_severity", "normal", "warning", "critical"), nullable=True
            )
        )
        batch.add_column(
            sa.Column(
                "split_by",
                _enum("split_by", "none", "instance"),
                nullable=False,
                server_default="none",
            )
        )
        batch.add_column(
            sa.Column(
                "no_data",
                _enum("no_data", "keep", "ok", "alerting"),
                nullable=False,
                server_default="keep",
            )
        )
        batch.add_column(sa.Column("stale_after", sa.Double(), nullable=True))
    op.execute("UPDATE rules SET name = metric")
    with op.batch_alter_table("rules") as batch:
        batch.drop_constraint("pk_rules", type_="primary")
        batch.alter_column("name", existing_type=sa.String(length=100), nullable=False)
        batch.alter_column("metric", existing_type=sa.String(length=100), nullable=True)
        batch.create_primary_key("pk_rules", ["name"])
        batch.alter_column("kind", server_default=None)
        batch.alter_column("split_by", server_default=None)
        batch.alter_column("no_data", server_default=None)
    op.create_index("ix_rules_metric", "rules", ["metric"], unique=False)

    # 3. Streaks per (rule, series).
    with op.batch_alter_table("rule_states") as batch:
        batch.alter_column("metric", new_column_name="rule", existing_type=sa.String(length=100))
        batch.add_column(
            sa.Column("series", sa.String(length=100), nullable=False, server_default="")
        )
    with op.batch_alter_table("rule_states") as batch:
        batch.drop_constraint("pk_rule_states", type_="primary")
        batch.create_primary_key("pk_rule_states", ["rule", "series"])
        batch.alter_column("series", server_default=None)
        batch.create_foreign_key(
            "fk_rule_states_rule_rules", "rules", ["rule"], ["name"], ondelete="CASCADE"
        )

    # 4. Snoozes key by the rule's name (the column keeps its name: it held the metric, which
    #    was the rule's name, and still does for every rule named after its metric).
    with op.batch_alter_table("snoozes") as batch:
        batch.create_foreign_key(
            "fk_snoozes_metric_rules", "rules", ["metric"], ["name"], ondelete="CASCADE"
        )

    # 5. Incidents: rule, series, condition, term values, no data; one open per (rule, series).
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("rule", sa.String(length=100), nullable=True))
        batch.add_column(
            sa.Column("series", sa.String(length=100), nullable=False, server_default=sa.text("''"))
        )
        batch.add_column(sa.Column("condition", sa.Text(), nullable=True))
        batch.add_column(sa.Column("term_values", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("no_data", sa.Boolean(), nullable=False, server_default=sa.text("false"))
        )
    op.execute("UPDATE incidents SET rule = metric")
    op.drop_index("uq_incidents_open_metric", table_name="incidents")
    with op.batch_alter_table("incidents") as batch:
        batch.alter_column("rule", existing_type=sa.String(length=100), nullable=False)
    op.create_index(
        "uq_incidents_open_rule_series",
        "incidents",
        ["rule", "series"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_index(
        "ix_incidents_rule_triggered_at_id", "incidents", ["rule", "triggered_at", "id"]
    )

    # 6. Events name their rule (a rule's history).
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("rule", sa.String(length=100), nullable=True))
    op.execute("UPDATE events SET rule = metric WHERE metric IS NOT NULL")
    op.create_index("ix_events_rule_id", "events", ["rule", "id"])


def downgrade() -> None:
    # What the 0002 schema cannot hold goes: rules not named after their metric (and
    # composites), their streaks and snoozes, and incidents of other rules or split series.
    # A rule's history in events stays (the payloads keep every field).
    kept = "(SELECT name FROM rules WHERE name = metric)"
    op.execute(f"DELETE FROM snoozes WHERE metric NOT IN {kept}")
    op.execute(f"DELETE FROM rule_states WHERE series != '' OR rule NOT IN {kept}")
    op.execute(f"DELETE FROM incidents WHERE series != '' OR rule NOT IN {kept} OR rule != metric")
    op.execute("DELETE FROM rules WHERE metric IS NULL OR name != metric")

    op.drop_index("ix_events_rule_id", table_name="events")
    # Not a batch rebuild: dropping the events table would cascade to the outbox. SQLite has
    # had DROP COLUMN since 3.35.
    op.execute("ALTER TABLE events DROP COLUMN rule")

    op.drop_index("ix_incidents_rule_triggered_at_id", table_name="incidents")
    op.drop_index("uq_incidents_open_rule_series", table_name="incidents")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("no_data")
        batch.drop_column("term_values")
        batch.drop_column("condition")
        batch.drop_column("series")
        batch.drop_column("rule")
    op.create_index(
        "uq_incidents_open_metric",
        "incidents",
        ["metric"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )

    with op.batch_alter_table("snoozes") as batch:
        batch.drop_constraint("fk_snoozes_metric_rules", type_="foreignkey")
    with op.batch_alter_table("rule_states") as batch:
        batch.drop_constraint("fk_rule_states_rule_rules", type_="foreignkey")
        batch.drop_constraint("pk_rule_states", type_="primary")
    with op.batch_alter_table("rule_states") as batch:
        batch.drop_column("series")
        batch.alter_column("rule", new_column_name="metric", existing_type=sa.String(length=100))
    with op.batch_alter_table("rule_states") as batch:
        batch.create_primary_key("pk_rule_states", ["metric"])

    op.drop_index("ix_rules_metric", table_name="rules")
    with op.batch_alter_table("rules") as batch:
        batch.drop_constraint("pk_rules", type_="primary")
        batch.alter_column("metric", existing_type=sa.String(length=100), nullable=False)
        batch.create_primary_key("pk_rules", ["metric"])
    with op.batch_alter_table("rules") as batch:
        for enum in ("rule_kind", "rule_severity", "split_by", "no_data"):
            batch.drop_constraint(op.f(f"ck_rules_{enum}"), type_="check")
        for column in (
            "stale_after",
            "no_data",
            "split_by",
            "severity",
            "condition",
            "absent_for",
            "kind",
            "name",
        ):
            batch.drop_column(column)

    for table in ("incidents", "rule_states", "snoozes"):
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(
                f"fk_{table}_metric_rules",
                "rules",
                ["metric"],
                ["metric"],
                ondelete=None if table == "incidents" else "CASCADE",
            )
