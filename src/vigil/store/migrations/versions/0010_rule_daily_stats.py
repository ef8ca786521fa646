"""Each rule's noise: per-rule, per-day counters, filled from the history already stored.

The counters are what ``vigil.store._rule_stats`` keeps from now on: incidents opened (on
their trigger day), resolved automatically or manually with their time to resolve (on their
resolution day), acknowledged with their time to acknowledge (on their acknowledgement day),
the part of each resolved incident's time that fell on each day, flapping events, and
notifications sent (on their sending day). The backfill reads the stored incidents, events and
outbox once, adds them up here (the same arithmetic on SQLite and PostgreSQL, no
dialect's date functions) and writes the sums.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 19:30:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTERS = (
    "opened",
    "resolved_auto",
    "resolved_manual",
    "resolve_seconds",
    "incident_seconds",
    "acknowledged",
    "acknowledge_seconds",
    "flaps",
    "notifications_sent",
)
SECONDS = ("resolve_seconds", "incident_seconds", "acknowledge_seconds")
BATCH = 5000


class _UTC(sa.TypeDecorator[datetime]):
    """Times as the store writes them: naive UTC text on SQLite, aware on PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_incidents = sa.table(
    "incidents",
    sa.column("rule", sa.String()),
    sa.column("triggered_at", _UTC()),
    sa.column("resolved_at", _UTC()),
    sa.column("resolution", sa.String()),
    sa.column("acknowledged_at", _UTC()),
)
_events = sa.table(
    "events",
    sa.column("id", sa.BigInteger()),
    sa.column("kind", sa.String()),
    sa.column("rule", sa.String()),
    sa.column("at", _UTC()),
)
_outbox = sa.table(
    "notification_outbox",
    sa.column("event_id", sa.BigInteger()),
    sa.column("status", sa.String()),
    sa.column("sent_at", _UTC()),
)


def upgrade() -> None:
    table = op.create_table(
        "rule_daily_stats",
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *(
            sa.Column(
                name,
                sa.Double() if name in SECONDS else sa.Integer(),
                server_default=sa.text("0"),
                nullable=False,
            )
            for name in COUNTERS
        ),
        sa.PrimaryKeyConstraint("rule", "day", name=op.f("pk_rule_daily_stats")),
    )
    op.create_index(op.f("ix_rule_daily_stats_day"), "rule_daily_stats", ["day"], unique=False)
    assert table is not None
    _backfill(op.get_bind(), table)


def downgrade() -> None:
    op.drop_index(op.f("ix_rule_daily_stats_day"), table_name="rule_daily_stats")
    op.drop_table("rule_daily_stats")


def _backfill(connection: sa.Connection, table: sa.Table) -> None:
    sums: dict[tuple[str, date], dict[str, float]] = {}

    def add(rule: str, day: date, name: str, amount: float) -> None:
        values = sums.setdefault((rule, day), dict.fromkeys(COUNTERS, 0))
        values[name] += amount

    incidents = connection.execute(
        sa.select(
            _incidents.c.rule,
            _incidents.c.triggered_at,
            _incidents.c.resolved_at,
            _incidents.c.resolution,
            _incidents.c.acknowledged_at,
        ).execution_options(yield_per=BATCH)
    )
    for rule, triggered_at, resolved_at, resolution, acknowledged_at in incidents:
        add(rule, triggered_at.date(), "opened", 1)
        if acknowledged_at is not None:
            add(rule, acknowledged_at.date(), "acknowledged", 1)
            waited = (acknowledged_at - triggered_at).total_seconds()
            add(rule, acknowledged_at.date(), "acknowledge_seconds", waited)
        if resolved_at is not None:
            day = resolved_at.date()
            add(rule, day, "resolved_auto" if resolution == "auto" else "resolved_manual", 1)
            add(rule, day, "resolve_seconds", (resolved_at - triggered_at).total_seconds())
            moment = triggered_at
            while moment < resolved_at:
                midnight = datetime.combine(
                    moment.date() + timedelta(days=1), datetime.min.time(), UTC
                )
                until = min(midnight, resolved_at)
                add(rule, moment.date(), "incident_seconds", (until - moment).total_seconds())
                moment = until
    flaps = connection.execute(
        sa.select(_events.c.rule, _events.c.at).where(
            _events.c.kind == "incident.flapping", _events.c.rule.is_not(None)
        )
    )
    for rule, at in flaps:
        add(rule, at.date(), "flaps", 1)
    sent = connection.execute(
        sa.select(_events.c.rule, _outbox.c.sent_at)
        .select_from(_outbox.join(_events, _events.c.id == _outbox.c.event_id))
        .where(
            _outbox.c.status == "sent",
            _outbox.c.sent_at.is_not(None),
            _events.c.rule.is_not(None),
        )
    )
    for rule, sent_at in sent:
        add(rule, sent_at.date(), "notifications_sent", 1)
    rows = [{"rule": rule, "day": day, **values} for (rule, day), values in sorted(sums.items())]
    for start in range(0, len(rows), BATCH):
        connection.execute(table.insert(), rows[start : start + BATCH])
