"""Retention: delete what is older than the settings allow, and compact the metric history
older than ``sample_raw_hours`` into minute rollups (``vigil.store._rollups``), in short batches.

Each batch is its own transaction, so a cleanup of millions of rows holds the write lock
(SQLite) or row locks (PostgreSQL) for one batch at a time and the monitor's cycle slips in
between. Open incidents are never deleted, whatever their age.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Table, delete, exists, func, select, tuple_
from sqlalchemy.sql.elements import ColumnElement

from vigil.core.incidents import Status
from vigil.store import models
from vigil.store._base import check_int, check_time
from vigil.store._rollups import Rollups, compaction_cutoff
from vigil.store.records import CleanupReport, OutboxStatus

# The frequency chart reaches back a year; its counts are kept that long even after the
# incidents they counted are gone.
DAILY_COUNT_DAYS = 366
MAX_BATCH = 100_000
DEFAULT_RAW_HOURS = 24  # as ``Settings.sample_raw_hours``

Progress = Callable[[str, int], None]


@dataclass(frozen=True, slots=True)
class _Target:
    kind: str
    table: Table
    condition: ColumnElement[bool]


class Retention(Rollups):
    async def expired(
        self,
        *,
        now: datetime,
        incident_retention_days: int,
        sample_retention_days: int,
        outbox_retention_days: int = 1,
        sample_raw_hours: int = DEFAULT_RAW_HOURS,
    ) -> CleanupReport:
        """How many rows a cleanup with these settings would delete, and how many samples
        it would compact (for a progress bar)."""
        targets = self._targets(
            now, incident_retention_days, sample_retention_days, outbox_retention_days
        )
        samples = models.samples
        compacted = select(func.count()).where(
            samples.c.time >= now - timedelta(days=sample_retention_days),
            samples.c.time < compaction_cutoff(now, sample_raw_hours),
        )
        counts: dict[str, int] = {}
        async with self._read("counting expired rows") as connection:
            for target in targets:
                counts[target.kind] = int(
                    await connection.scalar(
                        select(func.count()).select_from(target.table).where(target.condition)
                    )
                    or 0
                )
            counts["compacted"] = int(await connection.scalar(compacted) or 0)
        return CleanupReport(**counts)

    async def cleanup(
        self,
        *,
        now: datetime,
        incident_retention_days: int,
        sample_retention_days: int,
        outbox_retention_days: int = 1,
        batch_size: int = 5000,
        progress: Progress | None = None,
        sample_raw_hours: int = DEFAULT_RAW_HOURS,
    ) -> CleanupReport:
        """Delete resolved incidents resolved before the incident retention, events as old,
        samples and rollups before the sample retention, and notifications delivered before
        the outbox retention; then compact the samples older than ``sample_raw_hours`` into
        minute rollups (``compact_samples``). ``progress(kind, count)`` is called after every
        batch (kind ``compacted`` for the compaction's)."""
        check_int("batch_size", batch_size, 1, MAX_BATCH)
        targets = self._targets(
            now, incident_retention_days, sample_retention_days, outbox_retention_days
        )
        compaction_cutoff(now, sample_raw_hours)  # checked before anything is deleted
        deleted: dict[str, int] = {}
        for target in targets:
            deleted[target.kind] = 0
            while True:
                count = await self._delete_batch(target, batch_size)
                deleted[target.kind] += count
                if progress is not None and count:
                    progress(target.kind, count)
                if count < batch_size:
                    break
        # After the samples past retention are gone: those are deleted, not compacted.
        deleted["compacted"] = await self.compact_samples(
            now=now,
            raw_hours=sample_raw_hours,
            batch_size=batch_size,
            progress=None if progress is None else lambda count: progress("compacted", count),
        )
        await self._prune_daily_counts(now)
        await self._prune_groups(now - timedelta(days=incident_retention_days))
        return CleanupReport(**deleted)

    def _targets(
        self,
        now: datetime,
        incident_retention_days: int,
        sample_retention_days: int,
        outbox_retention_days: int,
    ) -> list[_Target]:
        check_time("now", now)
        check_int("incident_retention_days", incident_retention_days, 1, 100_000)
        check_int("sample_retention_days", sample_retention_days, 1, 100_000)
        check_int("outbox_retention_days", outbox_retention_days, 1, 100_000)
        incident_cutoff = now - timedelta(days=incident_retention_days)
        incidents, events, samples, outbox = (
            models.incidents,
            models.events,
            models.samples,
            models.outbox,
        )
        return [
            _Target(
                "incidents",
                incidents,
                # resolved_at is set only on resolved incidents; the status test says so twice.
                (incidents.c.status == Status.RESOLVED)
                & (incidents.c.resolved_at < incident_cutoff),
            ),
            _Target("events", events, events.c.at < incident_cutoff),
            _Target(
                "samples", samples, samples.c.time < now - timedelta(days=sample_retention_days)
            ),
            _Target(
                "rollups",
                models.sample_rollups,
                models.sample_rollups.c.start < now - timedelta(days=sample_retention_days),
            ),
            _Target(
                "outbox",
                outbox,
                (
                    (outbox.c.status == OutboxStatus.SENT)
                    & (outbox.c.sent_at < now - timedelta(days=outbox_retention_days))
                )
                | (
                    (outbox.c.status == OutboxStatus.CANCELLED)
                    & (outbox.c.created_at < now - timedelta(days=outbox_retention_days))
                ),
            ),
            _Target(
                "sessions",
                models.signed_out_sessions,
                models.signed_out_sessions.c.expires_at <= now,
            ),
        ]

    async def _delete_batch(self, target: _Target, batch_size: int) -> int:
        keys = target.table.primary_key.columns.values()
        # A composite key (the rollups') as a row value: one of its columns alone would
        # take every row sharing it.
        key = keys[0] if len(keys) == 1 else tuple_(*keys)
        batch = select(*keys).where(target.condition).limit(batch_size)
        async with self._write(f"deleting old {target.kind}") as connection:
            result = await connection.execute(delete(target.table).where(key.in_(batch)))
        return int(result.rowcount)

    async def _prune_groups(self, cutoff: datetime) -> None:
        """Incident groups whose members were all deleted: nothing is left to show."""
        groups, incidents = models.incident_groups, models.incidents
        members = exists().where(incidents.c.group_id == groups.c.id)
        async with self._write("pruning incident groups") as connection:
            await connection.execute(delete(groups).where(groups.c.opened_at < cutoff, ~members))

    async def _prune_daily_counts(self, now: datetime) -> None:
        table = models.incident_daily_counts
        oldest = now.astimezone(UTC).date() - timedelta(days=DAILY_COUNT_DAYS)
        async with self._write("pruning incident counts") as connection:
            await connection.execute(delete(table).where(table.c.day < oldest))
            # The rules' noise counters too (read for 90 days at most).
            stats = models.rule_daily_stats
            await connection.execute(delete(stats).where(stats.c.day < oldest))
