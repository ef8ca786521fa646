"""Cancelled outbox rows: a follow-up (an escalation step, a reminder) still waiting when its
incident is acknowledged or resolved is marked ``cancelled`` instead of being sent.

The status is a VARCHAR(16) with a CHECK constraint on both databases (no native enum type),
so the constraint is replaced; every existing row keeps its values. The outbox has no child
tables, so SQLite's rebuild of it loses nothing. Going down makes the cancelled rows
``failed`` with a note (the old schema has no other status that is never sent again).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = ("pending", "sent", "failed")
NEW_STATUSES = (*OLD_STATUSES, "cancelled")


def _statuses(values: Sequence[str]) -> str:
    return "status IN (" + ", ".join(f"'{value}'" for value in values) + ")"


def _replace_constraint(values: Sequence[str]) -> None:
    with op.batch_alter_table("notification_outbox") as batch:
        batch.drop_constraint(op.f("ck_notification_outbox_outbox_status"), type_="check")
        batch.create_check_constraint("outbox_status", _statuses(values))


def upgrade() -> None:
    _replace_constraint(NEW_STATUSES)


def downgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE notification_outbox SET status = 'failed', "
            "last_error = 'cancelled: the incident was acknowledged or resolved first' "
            "WHERE status = 'cancelled'"
        )
    )
    _replace_constraint(OLD_STATUSES)
