"""Flap detection: each series' flap history and state, and whether an incident is flapping.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 19:40:00
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHANNELS = sa.table("notification_channels", sa.column("id"), sa.column("events", sa.JSON()))


def _channel_events(change: Callable[[list[str]], list[str]]) -> None:
    bind = op.get_bind()
    for ident, events in bind.execute(sa.select(_CHANNELS.c.id, _CHANNELS.c.events)).all():
        changed = change(list(events or []))
        if changed != events:
            bind.execute(_CHANNELS.update().where(_CHANNELS.c.id == ident).values(events=changed))


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
    # A channel told of openings is told that a series flaps (it replaces the openings).
    _channel_events(
        lambda events: (
            [*events, "flapping"] if "opened" in events and "flapping" not in events else events
        )
    )


def downgrade() -> None:
    _channel_events(lambda events: [e for e in events if e != "flapping"])
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("flapping")
    with op.batch_alter_table("rule_states") as batch:
        batch.drop_column("flapping")
        batch.drop_column("flap_history")
