"""SQLite rebuilds a table to change most of its shape (alembic's batch mode), and dropping
the old ``rules`` takes its children's rows with it (ON DELETE CASCADE, foreign keys are on).
A migration that rebuilds ``rules`` wraps the rebuild in ``keeping_rule_children``: the
streaks and snoozes are read before and written back after. Other databases alter in place.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

CHILDREN = ("rule_states", "snoozes")  # their rows go when their rule's row goes


def keeping_rule_children(rebuild: Callable[[], None]) -> None:
    """Run ``rebuild`` (a change that rebuilds ``rules``), the rows of its children kept."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        rebuild()
        return
    kept = {
        table: [dict(row._mapping) for row in bind.execute(sa.text(f"SELECT * FROM {table}"))]
        for table in CHILDREN
    }
    rebuild()
    for table, rows in kept.items():
        bind.execute(sa.text(f"DELETE FROM {table}"))
        if rows:
            columns = list(rows[0])
            names = ", ".join(columns)
            values = ", ".join(f":{column}" for column in columns)
            bind.execute(sa.text(f"INSERT INTO {table} ({names}) VALUES ({values})"), rows)
