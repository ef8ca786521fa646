"""Metric history: charts, backtests, and combining instances' latest readings; and the
write path of pushed samples (``write_samples``, the group commit's one transaction)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
from collections.abc import AsyncIterator, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    Double,
    String,
    bindparam,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from vigil.core.errors import ValidationError
from vigil.core.rollups import Rollup
from vigil.core.samples import Sample
from vigil.core.validation import METRIC_PATTERN
from vigil.store import models
from vigil.store._base import (
    SampleValues,
    check_int,
    check_name,
    check_time,
    sqlite_text,
    sqlite_time,
)
from vigil.store._own import fetch_all, run_in_thread
from vigil.store._rollups import Rollups, Row
from vigil.store.engine import run_in_driver
from vigil.store.errors import VigilStorageError, translated_errors
from vigil.store.records import MetricPoint

MAX_POINTS = 10_000
MAX_METRICS = 1000
CHUNK_ROWS = 20_000  # samples read per query when walking a history
ROWS_PER_TURN = 2000  # pushed samples made rows between two turns of the event loop (~2 ms)
# Rows a SQLite INSERT takes at most (``_sqlite_insert``): 1,024 parameters.
ROWS_A_STATEMENT = 256
_SAMPLE_COLUMNS = ("instance", "metric", "time", "value")


class SampleQueries(Rollups):
    _sample_writing: asyncio.Lock | None = None  # one write at a time on ``_sample_writer``
    # A SQLite file: the monitor's last latest-readings answer, brought up to date next time.
    _sqlite_known: _KnownNewest | None = None

    async def write_samples(self, samples: Sequence[Sample]) -> None:
        """Store pushed samples, however many, in one transaction: the group commit's write
        (``vigil.runtime.groupcommit``). The rows go to the driver as plain values: SQLite's
        in a few multi-row INSERTs (``_sqlite_insert``) on a connection of the store's own,
        PostgreSQL's by ``COPY``.
        The samples are core ``Sample``s, checked when they were made."""
        if not samples:
            return
        rows = await self._sample_rows(samples)
        if self._database is not None:
            await self._sqlite_append(rows)
            return
        async with self._write("storing pushed samples") as connection:
            await self._store_sample_rows(connection, rows)

    async def _sample_rows(self, samples: Sequence[Sample]) -> list[SampleValues]:
        """Samples as the driver takes them: SQLite's times as the naive UTC text
        ``UTCDateTime`` stores, PostgreSQL's as they are. A large group leaves the event loop
        a turn every ``ROWS_PER_TURN`` rows."""
        sqlite = self._dialect == "sqlite"
        rows: list[SampleValues] = []
        for start in range(0, len(samples), ROWS_PER_TURN):
            if start:
                await asyncio.sleep(0)
            part = samples[start : start + ROWS_PER_TURN]
            if sqlite:
                # Formatting a time costs more than the rest of a row, and the samples of a
                # push mostly share a few (all of them "now" when the pusher sends none).
                texts: dict[datetime, str] = {}
                for s in part:
                    text = texts.get(s.time)
                    if text is None:
                        text = texts[s.time] = sqlite_text(s.time)
                    rows.append((s.instance, s.metric, text, s.value))
            else:
                rows += [(s.instance, s.metric, s.time, s.value) for s in part]
        return rows

    async def _store_sample_rows(
        self, connection: AsyncConnection, rows: list[SampleValues]
    ) -> None:
        """``rows`` inserted in ``connection``'s transaction: on SQLite a few multi-row
        INSERTs in one hand-off to the driver's thread (``_sqlite_insert``), on PostgreSQL one
        ``COPY`` (asyncpg's binary copy: no statement per row)."""
        if self._dialect != "postgresql":
            raw = await connection.get_raw_connection()
            await run_in_driver(raw.dbapi_connection, _sqlite_insert, rows, False)
            return
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        if not driver.is_in_transaction():
            # SQLAlchemy's asyncpg adapter opens its transaction at the first statement: the
            # copy must not run before it, alone and committed at once.
            await connection.exec_driver_sql("SELECT 1")
        import asyncpg  # the postgres extra: present whenever a PostgreSQL store is open

        try:
            await driver.copy_records_to_table("samples", records=rows, columns=_SAMPLE_COLUMNS)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise VigilStorageError(f"storing samples failed: {type(exc).__name__}: {exc}") from exc

    async def _sqlite_append(self, rows: list[SampleValues]) -> None:
        """``rows`` inserted and committed on the store's own writer connection to the SQLite
        file: one hand-off to the driver's thread (the inserts, the first of which begins the
        transaction, and the commit). Through the pool and SQLAlchemy the same write cost
        eight or more (check-out, begin, execute, commit, the pool's rollback on return), each
        a wake-up of that thread and of the event loop. One write at a time on it."""
        if self._sample_writing is None:
            self._sample_writing = asyncio.Lock()
        async with self._sample_writing:
            try:
                writer = await self._sample_writer.get()
                try:
                    await run_in_thread(writer, _sqlite_insert, rows, True)
                except BaseException:
                    with contextlib.suppress(sqlite3.Error, ValueError):
                        await writer.rollback()
                    raise
            except (sqlite3.Error, ValueError) as exc:  # ValueError: aiosqlite's "closed"
                await self._sample_writer.reset()  # opened afresh next time
                raise VigilStorageError(
                    f"storing pushed samples failed: {type(exc).__name__}: {exc}"
                ) from exc

    async def metric_history(
        self,
        metric: str,
        *,
        start: datetime,
        end: datetime,
        max_points: int = 500,
        instance: str | None = None,
    ) -> list[MetricPoint]:
        """One metric's samples in ``[start, end)``, averaged into at most ``max_points``
        equal time buckets (empty buckets are left out), oldest first. All instances
        together unless ``instance`` is given. Compacted history counts in through its
        minute rollups (those starting in the range), weighted by their counts, with their
        minimum and maximum: a point is the same before and after compaction when it spans
        whole minutes."""
        _check_metric(metric)
        width = _check_range(start, end, max_points)
        parameters = {
            "metric": metric,
            "start": start,
            "end": end,
            "origin": start.timestamp(),
            "width": width,
        }
        if instance is not None:
            parameters["instance"] = check_name("instance", instance)
        raw, rolled = self._built(
            f"metric history {instance is not None}",
            lambda: self._history_statements(by_instance=instance is not None),
        )
        async with self._read("reading metric history") as connection:
            rows = [tuple(row) for row in (await connection.execute(raw, parameters)).all()]
            rows += [tuple(row)[1:] for row in (await connection.execute(rolled, parameters)).all()]
        return _points(_by_index(rows), start=start, width=width, max_points=max_points)

    def _history_statements(self, *, by_instance: bool) -> tuple[Any, Any]:
        """``metric_history``'s two queries, the raw samples' buckets and the rollups', with
        its figures as parameters: built once (``_built``), where building them anew cost
        more than the Python side of the read."""
        table, rollups = models.samples, models.sample_rollups
        origin, width = bindparam("origin", type_=Double), bindparam("width", type_=Double)
        conditions = [
            table.c.metric == bindparam("metric"),
            table.c.time >= bindparam("start"),
            table.c.time < bindparam("end"),
        ]
        which = [rollups.c.metric == bindparam("metric")]
        if by_instance:
            conditions.append(table.c.instance == bindparam("instance"))
            which.append(rollups.c.instance == bindparam("instance"))
        raw = (
            select(self._bucket(table.c.time, origin, width).label("bucket"), *_STATISTICS)
            .where(*conditions)
            # By its name: repeating the expression would compute it three times per row.
            .group_by(literal_column("bucket"))
            .order_by(literal_column("bucket"))
        )
        rolled = self._rollup_statistics(
            bindparam("start"), bindparam("end"), origin, width, *which
        )
        return raw, rolled

    async def metric_histories(
        self, metrics: Collection[str], *, start: datetime, end: datetime, max_points: int = 60
    ) -> dict[str, list[MetricPoint]]:
        """``metric_history`` of several metrics (all instances together) in one query: a
        page of sparklines reads them at once. A metric without samples maps to ``[]``."""
        wanted = sorted(set(metrics))
        if len(wanted) > MAX_METRICS:
            raise ValidationError("metrics", f"at most {MAX_METRICS} at once, got {len(wanted)}")
        for metric in wanted:
            _check_metric(metric)
        width = _check_range(start, end, max_points)
        histories: dict[str, list[MetricPoint]] = {metric: [] for metric in wanted}
        if not wanted:
            return histories
        table = models.samples
        bucket = self._bucket(table.c.time, start.timestamp(), width).label("bucket")
        statement = (
            select(table.c.metric, bucket, *_STATISTICS)
            .where(table.c.metric.in_(wanted), table.c.time >= start, table.c.time < end)
            .group_by(table.c.metric, literal_column("bucket"))
            .order_by(table.c.metric, literal_column("bucket"))
        )
        rolled = self._rollup_statistics(
            start, end, start.timestamp(), width, models.sample_rollups.c.metric.in_(wanted)
        )
        async with self._read("reading metric histories") as connection:
            rows = [tuple(row) for row in (await connection.execute(statement)).all()]
            rows += [tuple(row) for row in (await connection.execute(rolled)).all()]
        rows.sort(key=lambda row: (row[0], int(row[1])))  # stable: raw first in a bucket
        for metric, group in itertools.groupby(rows, key=lambda row: str(row[0])):
            histories[metric] = _points(
                [row[1:] for row in group], start=start, width=width, max_points=max_points
            )
        return histories

    async def sample_chunks(
        self,
        *,
        start: datetime,
        end: datetime,
        metrics: Collection[str] | None = None,
        chunk: int = CHUNK_ROWS,
        rollup: Mapping[str, Rollup] | None = None,
    ) -> AsyncIterator[list[tuple[datetime, str, str, float]]]:
        """The samples in ``[start, end)`` as ``(time, metric, instance, value)``, oldest
        first (the one stored first first among equal times), in lists of at most ``chunk``:
        one query per list, resumed after the last row, so a month of history is never held
        whole. Every metric unless ``metrics`` names some.

        History compacted into minute buckets comes as one row per bucket, at its start,
        worth the figure ``rollup`` names for its metric (``vigil.core.rollups.wanted``
        says which a rule's replay needs; the mean by default), before the raw samples of
        the same moment."""
        check_time("start", start)
        check_time("end", end)
        check_int("chunk", chunk, 1, 100_000)
        wanted: list[str] | None = None
        if metrics is not None:
            wanted = sorted(set(metrics))
            if len(wanted) > MAX_METRICS:
                raise ValidationError("metrics", f"at most {MAX_METRICS}, got {len(wanted)}")
            for metric in wanted:
                _check_metric(metric)
            if not wanted:
                return
        raw = self._raw_chunks(start=start, end=end, metrics=wanted, chunk=chunk)
        rolled = self._rollup_chunks(
            start=start, end=end, metrics=wanted, chunk=chunk, rollup=rollup or {}
        )
        async for rows in _merged(rolled, raw, chunk):
            yield rows

    async def _raw_chunks(
        self, *, start: datetime, end: datetime, metrics: Sequence[str] | None, chunk: int
    ) -> AsyncIterator[list[Row]]:
        table = models.samples
        conditions = [table.c.time >= start, table.c.time < end]
        if metrics is not None:
            conditions.append(table.c.metric.in_(metrics))
        # SQLite's times as their text, parsed below in one C call: through the column's
        # type they cost a regular expression and a conversion per row (most of the read).
        raw = self._dialect == "sqlite"
        time_column = type_coerce(table.c.time, String) if raw else table.c.time
        after: tuple[datetime, int] | None = None
        while True:
            statement = select(
                time_column, table.c.metric, table.c.instance, table.c.value, table.c.id
            ).where(*conditions)
            if after is not None:
                last_time, last_id = after
                statement = statement.where(
                    (table.c.time > last_time)
                    | ((table.c.time == last_time) & (table.c.id > last_id))
                )
            statement = statement.order_by(table.c.time, table.c.id).limit(chunk)
            async with self._read("reading samples") as connection:
                rows = (await connection.execute(statement)).all()
            if not rows:
                return
            if raw:
                chunk_rows = [
                    (sqlite_time(time), metric, instance, float(value))
                    for time, metric, instance, value, _ in rows
                ]
            else:
                chunk_rows = [
                    (time, metric, instance, float(value))
                    for time, metric, instance, value, _ in rows
                ]
            yield chunk_rows
            if len(rows) < chunk:
                return
            after = (chunk_rows[-1][0], rows[-1][4])

    async def latest_values(
        self, *, since: datetime, exclude_instance: str | None = None
    ) -> dict[str, list[float]]:
        """Each (instance, metric)'s newest value at or after ``since``, by metric, leaving out
        one instance (the caller's own, whose fresh readings it has): one cycle's input for
        combining instances (core ``combine``). The monitor's hot query, so no times are parsed
        and no sample objects built."""
        ranked = self._newest(since, exclude_instance)
        statement = select(ranked.c.metric, ranked.c.value).where(ranked.c.rank == 1)
        async with self._read("reading latest values") as connection:
            rows = (await connection.execute(statement)).all()
        values: dict[str, list[float]] = {}
        for metric, value in rows:
            values.setdefault(metric, []).append(value)
        return values

    async def latest_readings(
        self, *, since: datetime, exclude_instance: str | None = None
    ) -> dict[str, dict[str, tuple[float, datetime]]]:
        """Each (instance, metric)'s newest value at or after ``since`` with its sample time:
        ``{metric: {instance: (value, time)}}``, leaving out one instance (the caller's own).
        What the evaluator takes each cycle (``Evaluator.evaluate_series``)."""
        if self._dialect == "sqlite":
            return await self._sqlite_latest_readings(since, exclude_instance)
        return await self._queried_latest_readings(since, exclude_instance)

    async def _queried_latest_readings(
        self, since: datetime, exclude_instance: str | None
    ) -> dict[str, dict[str, tuple[float, datetime]]]:
        ranked = self._newest(since, exclude_instance)
        statement = select(ranked.c.metric, ranked.c.instance, ranked.c.value, ranked.c.time).where(
            ranked.c.rank == 1
        )
        async with self._read("reading latest readings") as connection:
            rows = (await connection.execute(statement)).all()
        readings: dict[str, dict[str, tuple[float, datetime]]] = {}
        for row in rows:
            readings.setdefault(row.metric, {})[row.instance] = (float(row.value), row.time)
        return readings

    async def _sqlite_latest_readings(
        self, since: datetime, exclude_instance: str | None
    ) -> dict[str, dict[str, tuple[float, datetime]]]:
        """``latest_readings`` on a SQLite file, the monitor's one read of a cycle: what the
        query ``_newest`` builds answers, in SQLite's words (``_LATEST_SQLITE``: grouped, not
        ranked), on a read connection of its own (each query one hand-off to the driver's
        thread; through SQLAlchemy and its pool the same read costs nine: begin, cursor,
        execute, fetch, close, and the pool's rollback).

        Incremental (``_sqlite_newest``): only the rows stored since the last call are read,
        not every row of the horizon again, so a monitor reading a few seconds back while
        pushes arrive reads each pushed sample once, not once for every cycle it stays in
        reach."""
        check_time("since", since)
        if self._database is None:  # a ``file:`` URI: through the engine, as SQLite opens it
            sql, parameters = _latest_sqlite(since, exclude_instance)
            with translated_errors("reading latest readings"):
                async with self._connect("reading latest readings") as connection:
                    result = await connection.exec_driver_sql(sql, parameters)
                    rows: Iterable[Any] = result.all()
            newest = {(i, m): (t, row_id, v) for m, i, v, t, row_id in rows}
        else:
            newest = await self._sqlite_newest(sqlite_text(since), exclude_instance)
        readings: dict[str, dict[str, tuple[float, datetime]]] = {}
        for (instance, metric), (time, _, value) in newest.items():
            readings.setdefault(metric, {})[instance] = (float(value), sqlite_time(time))
        return readings

    async def _sqlite_newest(self, since: str, exclude_instance: str | None) -> _SeriesNewest:
        """Each series' newest row (time text, id, value) at or after ``since``, by (instance,
        metric), leaving out ``exclude_instance``: the previous call's answer brought up to
        date with the rows stored since (ids above the highest it saw), the same as ranking
        every row at or after ``since`` afresh.

        Sound because SQLite has one writer at a time, so a row committed after a read has a
        higher id than every row that read saw, and samples are never updated. Answered
        afresh when the previous answer cannot be brought up to date: another instance left
        out, ``since`` moved back (the rules reach further), a row it holds deleted (a
        cleanup), or the highest row it saw gone: only then may SQLite give a new row an id
        below it (the table has no AUTOINCREMENT), which the rows "since" would miss."""
        known = self._sqlite_known
        self._sqlite_known = None  # until this call has succeeded
        self._sqlite_known = await self._reader_run(
            "reading latest readings", _newest_brought_up_to_date, known, since, exclude_instance
        )
        return self._sqlite_known.rows

    def _newest(self, since: datetime, exclude_instance: str | None) -> Any:
        """The interval's samples with each series' rows ranked newest first (the one stored
        last first among equal times): ``rank == 1`` is the series' newest. One pass whatever
        their number (a join back on the newest time returned every row sharing it: a batch
        of samples without times made the monitor's query as slow as the batch was long)."""
        check_time("since", since)
        table = models.samples
        conditions = [table.c.time >= since]
        if exclude_instance is not None:
            conditions.append(table.c.instance != exclude_instance)
        rank = (
            func.row_number()
            .over(
                partition_by=(table.c.instance, table.c.metric),
                order_by=(table.c.time.desc(), table.c.id.desc()),
            )
            .label("rank")
        )
        return (
            select(table.c.instance, table.c.metric, table.c.value, table.c.time, rank)
            .where(*conditions)
            .subquery()
        )


def _newest_brought_up_to_date(
    connection: sqlite3.Connection,
    known: _KnownNewest | None,
    since: str,
    exclude_instance: str | None,
) -> _KnownNewest:
    """``SampleQueries._sqlite_newest``'s answer from ``known`` (the previous one, if any),
    run in the reader connection's thread: its two to four queries in one hand-off."""
    top, print_, before = 0, (), None
    for row_id, *row_print in fetch_all(
        connection, _TOP_SQLITE, (known.upto if known is not None else -1,)
    ):
        if known is not None and row_id == known.upto:
            before = tuple(row_print)
        if row_id > top:
            top, print_ = row_id, tuple(row_print)
    newest: _SeriesNewest | None = None
    if (
        known is not None
        and known.exclude == exclude_instance
        and since >= known.since
        and (known.upto == 0 or before == known.print_)
    ):
        newest = {key: row for key, row in known.rows.items() if row[0] >= since}
        if top > known.upto:  # rows stored since (none at rest: no query)
            sql, parameters = _latest_sqlite_newer(since, exclude_instance, known.upto, top)
            for metric, instance, value, time, row_id in fetch_all(connection, sql, parameters):
                key = (instance, metric)
                held = newest.get(key)
                if held is None or (time, row_id) > held[:2]:
                    newest[key] = (time, row_id, value)
        kept = [row_id for _, row_id, _ in newest.values() if row_id <= known.upto]
        for start in range(0, len(kept), _IDS_A_QUERY):
            part = kept[start : start + _IDS_A_QUERY]
            marks = ", ".join("?" * len(part))
            sql = f"SELECT count(*) FROM samples WHERE id IN ({marks})"
            [(found,)] = fetch_all(connection, sql, part)
            if found != len(part):  # deleted since: read afresh
                newest = None
                break
    if newest is None:
        sql, parameters = _latest_sqlite(since, exclude_instance, upto=top)
        newest = {
            (i, m): (t, row_id, v) for m, i, v, t, row_id in fetch_all(connection, sql, parameters)
        }
    return _KnownNewest(exclude_instance, since, top, print_, newest)


def _sqlite_insert(
    connection: sqlite3.Connection, rows: Sequence[SampleValues], commit: bool
) -> None:
    """``rows`` inserted on ``connection``, in the driver's thread, then committed if
    ``commit``: multi-row INSERTs, not ``executemany``.

    The driver lets go of the GIL for every step of a statement and takes it back after;
    ``executemany`` is one step a row. While the event loop's thread is busy (requests
    arriving), taking the GIL back means waiting for a thread switch, so an ``executemany``
    of pushed samples cost the writing thread 14 us of CPU a row where one statement of 200
    rows cost 4 (a sqlite3 micro-benchmark beside a busy thread; 2.9 and 2.7 without it).

    ``OR FAIL``: a statement of many rows that may stop half-way on a constraint ("ABORT",
    the default) keeps a statement journal to undo its own rows, which SQLite writes to a
    temporary file past 64 KiB: 1.6 times the writing thread's system time, measured in place.
    "FAIL" undoes nothing, so SQLite keeps none, and the caller rolls the whole transaction
    back on any error anyway."""
    for sql, parameters in _sqlite_inserts(rows):
        connection.execute(sql, parameters)
    if commit:
        connection.commit()


def _sqlite_inserts(rows: Sequence[tuple[Any, ...]]) -> Iterator[tuple[str, list[Any]]]:
    """``rows`` as INSERTs of at most ``ROWS_A_STATEMENT`` rows: (statement, parameters).
    Each statement's row count is a power of two, so the driver's statement cache holds a few
    texts whatever the number of rows (340 rows: 256 + 64 + 16 + 4)."""
    start = 0
    while start < len(rows):
        size = ROWS_A_STATEMENT
        while size > len(rows) - start:
            size //= 2
        part = rows[start : start + size]
        yield _insert_statement(size), [value for row in part for value in row]
        start += size


@cache
def _insert_statement(size: int) -> str:
    values = ", ".join(["(?, ?, ?, ?)"] * size)
    return f"INSERT OR FAIL INTO samples ({', '.join(_SAMPLE_COLUMNS)}) VALUES {values}"


async def _merged(
    first: AsyncIterator[list[Row]], second: AsyncIterator[list[Row]], chunk: int
) -> AsyncIterator[list[Row]]:
    """Two streams of rows in time order as one, in lists of at most ``chunk``; ``first``'s
    row first among equal times. Whole lists pass through while the streams do not overlap
    (the common case: rollups end where the raw samples begin)."""
    left: list[Row] = []
    right: list[Row] = []
    left_done = right_done = False
    while True:
        if not left and not left_done:
            left = await anext(first, [])
            left_done = not left
        if not right and not right_done:
            right = await anext(second, [])
            right_done = not right
        if not left or not right:
            if left or right:
                yield left or right
                left, right = [], []
                continue
            return
        if left[-1][0] <= right[0][0]:
            yield left
            left = []
        elif right[-1][0] < left[0][0]:
            yield right
            right = []
        else:  # overlapping: row by row until one list runs out
            out: list[Row] = []
            i = j = 0
            while i < len(left) and j < len(right) and len(out) < chunk:
                if left[i][0] <= right[j][0]:
                    out.append(left[i])
                    i += 1
                else:
                    out.append(right[j])
                    j += 1
            left, right = left[i:], right[j:]
            yield out


_STATISTICS = (
    func.avg(models.samples.c.value),
    func.min(models.samples.c.value),
    func.max(models.samples.c.value),
    func.count(),
)


# ``_newest`` in SQLite's words: each series' newest time among the rows ``where`` says, and
# the rows of that series and time (``among`` those), in the order they were stored: the last
# of a series is its newest (newest time, then the one stored last). A quarter of the cost of
# ranking every row with a window function: the rows are grouped, not sorted.
_LATEST_SQLITE = (
    "SELECT s.metric, s.instance, s.value, s.time, s.id FROM (SELECT instance, metric, "
    "max(time) AS time FROM samples WHERE {where} GROUP BY instance, metric) AS g "
    "JOIN samples AS s ON s.metric = g.metric AND s.time = g.time AND s.instance = g.instance"
    "{among} ORDER BY s.id"
)
# The rows stored since a previous read (by id, the primary key; ``+time`` keeps the time
# index out of it), within the horizon.
_NEWER_SQLITE = "id > ? AND id <= ? AND +time >= ?"
# The highest row's id and what it holds, and those of the row with the given id.
_TOP_SQLITE = (
    "SELECT id, instance, metric, time, value FROM samples "
    "WHERE id = (SELECT max(id) FROM samples) OR id = ?"
)
_IDS_A_QUERY = 500  # ids checked a query (SQLite before 3.32 takes at most 999 parameters)

# A series' newest row: (time as SQLite stores it, id, value), by (instance, metric).
_SeriesNewest = dict[tuple[str, str], tuple[str, int, float]]


@dataclass(frozen=True, slots=True)
class _KnownNewest:
    """What ``_sqlite_newest`` answered last: for ``exclude``, the rows at or after ``since``
    among those up to id ``upto`` (the highest then, holding ``print_``; 0: none)."""

    exclude: str | None
    since: str
    upto: int
    print_: tuple[Any, ...]
    rows: _SeriesNewest


def _latest_sqlite(
    since: datetime | str, exclude_instance: str | None, *, upto: int | None = None
) -> tuple[str, tuple[Any, ...]]:
    """The newest of every series among the rows at or after ``since`` (up to id ``upto``):
    query, parameters."""
    where = "time >= ?"
    parameters: list[Any] = [since if isinstance(since, str) else sqlite_text(since)]
    if upto is not None:
        where += " AND id <= ?"
        parameters.append(upto)
    if upto is None:
        return _excluding(where, parameters, exclude_instance, "", [])
    return _excluding(where, parameters, exclude_instance, " WHERE s.id <= ?", [upto])


def _latest_sqlite_newer(
    since: str, exclude_instance: str | None, after: int, upto: int
) -> tuple[str, tuple[Any, ...]]:
    """The newest of every series among the rows with ids in (``after``, ``upto``] at or
    after ``since``."""
    among = " WHERE s.id > ? AND s.id <= ?"
    return _excluding(_NEWER_SQLITE, [after, upto, since], exclude_instance, among, [after, upto])


def _excluding(
    where: str,
    parameters: list[Any],
    exclude_instance: str | None,
    among: str,
    among_parameters: list[int],
) -> tuple[str, tuple[Any, ...]]:
    """``_LATEST_SQLITE`` for ``where`` and ``among``, leaving out ``exclude_instance``."""
    if exclude_instance is not None:
        where += " AND instance != ?"
        parameters.append(exclude_instance)
    sql = _LATEST_SQLITE.format(where=where, among=among)
    return sql, (*parameters, *among_parameters)


def _check_metric(metric: object) -> None:
    if not isinstance(metric, str) or not METRIC_PATTERN.fullmatch(metric):
        raise ValidationError("metric", f"{metric!r} is not a metric name")


def _check_range(start: datetime, end: datetime, max_points: int) -> float:
    """Check a history's range; the width of one of its buckets, in seconds."""
    check_time("start", start)
    check_time("end", end)
    if end <= start:
        raise ValidationError("end", "must be after start")
    check_int("max_points", max_points, 1, MAX_POINTS)
    return (end - start).total_seconds() / max_points


def _by_index(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Raw and rolled-up bucket rows ``(index, ...)`` in index order (raw first in one)."""
    return sorted(rows, key=lambda row: int(row[0]))


def _points(
    rows: Sequence[Sequence[Any]], *, start: datetime, width: float, max_points: int
) -> list[MetricPoint]:
    """Bucket rows ``(index, mean, min, max, count)`` in index order, as points. Float
    rounding can put a sample just before the end one bucket too far: it is folded into the
    last bucket."""
    points: list[MetricPoint] = []
    last_slot = -1
    for index, mean, low, high, count in rows:
        slot = min(int(index), max_points - 1)
        if slot != last_slot:
            time = start + timedelta(seconds=slot * width)
            points.append(MetricPoint(time, mean, low, high, count))
            last_slot = slot
            continue
        before = points[-1]
        total = before.count + count
        points[-1] = MetricPoint(
            before.time,
            (before.mean * before.count + mean * count) / total,
            min(before.min, low),
            max(before.max, high),
            total,
        )
    return points
