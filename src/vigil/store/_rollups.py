"""Compacted history: raw samples older than ``sample_raw_hours`` rolled into one-minute
buckets (``sample_rollups``, see ``vigil.core.rollups``), and the readers' half of it.

Compaction goes in batches, each one transaction that deletes a batch of old samples
(``DELETE ... RETURNING``: the delete is what claims them) and adds them to their buckets
(``INSERT ... ON CONFLICT`` adding counts and sums). So a crash mid-way leaves every sample
either still raw or counted in its bucket, never both, and a compaction running twice, or two
at once on PostgreSQL (the second's delete finds the rows gone), counts nothing twice. A sample
pushed late, into a minute already compacted, is merged into that bucket next time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Double,
    Integer,
    String,
    and_,
    case,
    cast,
    delete,
    func,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from vigil.core.rollups import Bucket, Rollup, bucket_start, buckets_of
from vigil.store import models
from vigil.store._base import StoreBase, check_int, check_time

MAX_RAW_HOURS = 366 * 24
MAX_BATCH = 100_000
_TABLE = models.sample_rollups

Row = tuple[datetime, str, str, float]


def compaction_cutoff(now: datetime, raw_hours: int) -> datetime:
    """Samples before this are compacted: ``raw_hours`` back, at a bucket's start (so a minute
    is compacted whole, never a part of it now and the rest at the next cleanup)."""
    check_time("now", now)
    check_int("sample_raw_hours", raw_hours, 1, MAX_RAW_HOURS)
    return bucket_start(now - timedelta(hours=raw_hours))


class Rollups(StoreBase):
    async def compact_samples(
        self,
        *,
        now: datetime,
        raw_hours: int,
        batch_size: int = 5000,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Roll the samples older than ``raw_hours`` into their minute buckets and delete
        them, ``batch_size`` at a time, each batch its own transaction; how many were
        compacted. ``progress(count)`` is called after every batch."""
        cutoff = compaction_cutoff(now, raw_hours)
        check_int("batch_size", batch_size, 1, MAX_BATCH)
        compacted = 0
        while True:
            count = await self._compact_batch(cutoff, batch_size)
            compacted += count
            if progress is not None and count:
                progress(count)
            if count < batch_size:
                return compacted

    async def due_for_compaction(self, *, now: datetime, raw_hours: int) -> int:
        """How many raw samples a compaction now would roll up."""
        cutoff = compaction_cutoff(now, raw_hours)
        samples = models.samples
        async with self._read("counting samples to compact") as connection:
            found = await connection.scalar(
                select(func.count()).select_from(samples).where(samples.c.time < cutoff)
            )
        return int(found or 0)

    async def _compact_batch(self, cutoff: datetime, batch_size: int) -> int:
        samples = models.samples
        # The times as the driver gives them (SQLite's text, PostgreSQL's aware datetimes):
        # through the column's type they cost a conversion per row, and a batch needs only
        # its minutes.
        sqlite = self._dialect == "sqlite"
        time = type_coerce(samples.c.time, String if sqlite else DateTime(timezone=True))
        batch = select(samples.c.id).where(samples.c.time < cutoff).limit(batch_size)
        claim = (
            delete(samples)
            .where(samples.c.id.in_(batch))
            .returning(samples.c.id, samples.c.metric, samples.c.instance, time, samples.c.value)
        )
        async with self._write("compacting samples") as connection:
            rows = (await connection.execute(claim)).all()
            if rows:
                buckets = _sqlite_buckets(rows) if sqlite else _buckets(rows)
                await self._add_to_buckets(connection, buckets)
        return len(rows)

    async def _add_to_buckets(
        self, connection: AsyncConnection, buckets: Mapping[tuple[str, datetime, str], Bucket]
    ) -> None:
        statement = self._upsert(_TABLE)
        new = statement.excluded
        lowest: Any
        highest: Any
        if self._dialect == "postgresql":
            lowest, highest = func.least, func.greatest
        else:  # SQLite's min() and max() of two arguments are scalar
            lowest, highest = func.min, func.max
        statement = statement.on_conflict_do_update(
            index_elements=[_TABLE.c.metric, _TABLE.c.start, _TABLE.c.instance],
            set_={
                "count": _TABLE.c["count"] + new["count"],
                "sum": _TABLE.c["sum"] + new["sum"],
                "min": lowest(_TABLE.c["min"], new["min"]),
                "max": highest(_TABLE.c["max"], new["max"]),
                "last": case(
                    (new.last_at >= _TABLE.c.last_at, new["last"]), else_=_TABLE.c["last"]
                ),
                "last_at": case(
                    (new.last_at >= _TABLE.c.last_at, new.last_at), else_=_TABLE.c.last_at
                ),
            },
        )
        await connection.execute(
            statement,
            [
                {
                    "metric": metric,
                    "start": start,
                    "instance": instance,
                    "count": bucket.count,
                    "min": bucket.min,
                    "max": bucket.max,
                    "sum": bucket.sum,
                    "last": bucket.last,
                    "last_at": bucket.last_at,
                }
                for (metric, start, instance), bucket in sorted(buckets.items())
            ],
        )

    def _rollup_statistics(self, start: Any, end: Any, origin: Any, width: Any, *where: Any) -> Any:
        """A chart's buckets from the rollups: ``(metric, index, mean, min, max, count)``
        per metric and chart bucket, for the minutes starting in ``[start, end)`` of the rows
        ``where`` selects (by metric, by instance); ``origin`` is ``start`` in epoch seconds
        (``_bucket``). Each a value, or a bound parameter of a statement built once."""
        index = self._bucket(_TABLE.c.start, origin, width).label("bucket")
        return (
            select(
                _TABLE.c.metric,
                index,
                func.sum(_TABLE.c["sum"]) / func.sum(_TABLE.c["count"]),
                func.min(_TABLE.c["min"]),
                func.max(_TABLE.c["max"]),
                func.sum(_TABLE.c["count"]),
            )
            .where(*where, _TABLE.c.start >= start, _TABLE.c.start < end)
            .group_by(_TABLE.c.metric, literal_column("bucket"))
        )

    def _bucket(self, column: Any, origin: Any, width: Any) -> ColumnElement[int]:
        """``floor((time - origin) / width)`` in SQL, ``origin`` in epoch seconds (a number
        or a bound parameter, as ``width``); times are never before ``origin`` here."""
        if self._dialect == "postgresql":
            epoch = func.extract("epoch", column)
            return cast(func.floor((epoch - origin) / width), BigInteger)
        # SQLite stores UTC text "YYYY-MM-DD HH:MM:SS.ffffff": whole seconds from strftime,
        # the fraction from the text itself (julianday would blur bucket edges).
        seconds = cast(func.strftime("%s", column), Integer) + cast(func.substr(column, 20), Double)
        return cast((seconds - origin) / width, Integer)

    async def _rollup_chunks(
        self,
        *,
        start: datetime,
        end: datetime,
        metrics: Sequence[str] | None,
        chunk: int,
        rollup: Mapping[str, Rollup],
    ) -> AsyncIterator[list[Row]]:
        """The buckets starting in ``[start, end)`` as rows ``(start, metric, instance,
        value)``, the value the figure ``rollup`` names for the metric (the mean for any
        other), in time order, ``chunk`` at a time (one query each, resumed after the last)."""
        conditions = [_TABLE.c.start >= start, _TABLE.c.start < end]
        if metrics is not None:
            conditions.append(_TABLE.c.metric.in_(metrics))
        after: tuple[datetime, str, str] | None = None
        while True:
            statement = select(
                _TABLE.c.start,
                _TABLE.c.metric,
                _TABLE.c.instance,
                _TABLE.c["count"],
                _TABLE.c["min"],
                _TABLE.c["max"],
                _TABLE.c["sum"],
                _TABLE.c["last"],
                _TABLE.c.last_at,
            ).where(*conditions)
            if after is not None:
                at, metric, instance = after
                statement = statement.where(
                    or_(
                        _TABLE.c.start > at,
                        and_(_TABLE.c.start == at, _TABLE.c.metric > metric),
                        and_(
                            _TABLE.c.start == at,
                            _TABLE.c.metric == metric,
                            _TABLE.c.instance > instance,
                        ),
                    )
                )
            statement = statement.order_by(
                _TABLE.c.start, _TABLE.c.metric, _TABLE.c.instance
            ).limit(chunk)
            async with self._read("reading rollups") as connection:
                rows = (await connection.execute(statement)).all()
            if not rows:
                return
            yield [
                (
                    at,
                    metric,
                    instance,
                    Bucket(count, low, high, total, last, last_at).value(
                        rollup.get(metric, Rollup.MEAN)
                    ),
                )
                for at, metric, instance, count, low, high, total, last, last_at in rows
            ]
            if len(rows) < chunk:
                return
            after = (rows[-1][0], rows[-1][1], rows[-1][2])


def _buckets(rows: Sequence[Any]) -> dict[tuple[str, datetime, str], Bucket]:
    """Claimed samples ``(id, metric, instance, time, value)``, aware times, summed up by
    minute (``vigil.core.rollups.buckets``), in the order they were stored."""
    return buckets_of(
        (row[1], row[2], row[3], float(row[4])) for row in sorted(rows, key=lambda row: row[0])
    )


def _sqlite_buckets(rows: Sequence[Any]) -> dict[tuple[str, datetime, str], Bucket]:
    """``_buckets`` of SQLite's rows, their times as stored: naive UTC text of fixed width
    ("2026-12-03 08:00:59.250000"), whose first 16 characters are the minute."""
    grouped: dict[tuple[str, str, str], list[Any]] = {}
    for row in sorted(rows, key=lambda row: (row[3], row[0])):
        grouped.setdefault((row[1], row[3][:16], row[2]), []).append(row)
    return {
        (metric, datetime.fromisoformat(minute + ":00+00:00"), instance): _summed(
            group, datetime.fromisoformat(group[-1][3] + "+00:00")
        )
        for (metric, minute, instance), group in grouped.items()
    }


def _summed(group: list[Any], last_at: datetime) -> Bucket:
    values = [float(row[4]) for row in group]
    return Bucket(len(values), min(values), max(values), sum(values), values[-1], last_at)
