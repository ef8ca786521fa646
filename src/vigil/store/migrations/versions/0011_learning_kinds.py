"""Anomaly and forecast rules: two more values of ``rules.kind`` and their four fields.

The kind is a VARCHAR(16) with a CHECK constraint on both databases (no native enum type), so
the constraint is replaced; the new columns are nullable, so every existing rule keeps its
row as it was. Going down deletes the rules of the new kinds (the old schema cannot hold
them; their incidents stay in the history, as for any deleted rule).

SQLite replaces a CHECK constraint by rebuilding the table, and dropping the old ``rules``
would take its children's rows with it (ON DELETE CASCADE, foreign keys are on): the streaks
and snoozes are read before the rebuild and written back after it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 20:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vigil.store.migrations.rebuild import keeping_rule_children

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KINDS = ("threshold", "absent", "composite")
NEW_KINDS = (*OLD_KINDS, "anomaly", "forecast")
COLUMNS = ("sensitivity", "horizon", "lookback", "min_history")


def _kinds(values: Sequence[str]) -> str:
    return "kind IN (" + ", ".join(f"'{value}'" for value in values) + ")"


def upgrade() -> None:
    def rebuild() -> None:
        with op.batch_alter_table("rules") as batch:
            batch.drop_constraint(op.f("ck_rules_rule_kind"), type_="check")
            batch.create_check_constraint("rule_kind", _kinds(NEW_KINDS))
            for column in COLUMNS:
                batch.add_column(sa.Column(column, sa.Double(), nullable=True))

    keeping_rule_children(rebuild)


def downgrade() -> None:
    op.execute(
        sa.text(
            "DELETE FROM rule_states WHERE rule IN "
            "(SELECT name FROM rules WHERE kind IN ('anomaly', 'forecast'))"
        )
    )
    op.execute(sa.text("DELETE FROM rules WHERE kind IN ('anomaly', 'forecast')"))

    def rebuild() -> None:
        with op.batch_alter_table("rules") as batch:
            for column in reversed(COLUMNS):
                batch.drop_column(column)
            batch.drop_constraint(op.f("ck_rules_rule_kind"), type_="check")
            batch.create_check_constraint("rule_kind", _kinds(OLD_KINDS))

    keeping_rule_children(rebuild)
