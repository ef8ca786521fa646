"""What every part of the repository shares: the engine, transactions, row conversion, checks."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite
from sqlalchemy import Row, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from vigil.core import validation
from vigil.core.errors import NotFoundError, ValidationError
from vigil.core.events import Event
from vigil.core.incidents import Incident
from vigil.core.rules import FIELD_NAMES, Rule
from vigil.core.samples import Sample
from vigil.store import models, records
from vigil.store._own import OwnConnection, connect_own, drive, fetch_all, run_in_thread
from vigil.store._prepared import DrivenConnection, prepared
from vigil.store.engine import SQLITE_BEGIN, SQLITE_BUSY_TIMEOUT_MS, sqlite_path
from vigil.store.errors import VigilStorageError, translated_errors
from vigil.store.listen import EVENTS_CHANNEL
from vigil.store.records import Claim, Delivery

# Event ids come from a sequence, and PostgreSQL hands out sequence values at insert time, not
# at commit: a reader could see id 12 before a slower transaction commits id 11, and then skip
# it. Appending events under this transaction-scoped lock makes commit order id order.
EVENT_LOCK_KEY = 0x56494749_4C455654  # "VIGILEVT"

MAX_PAGE_SIZE = 200
# Set on a connection's info by ``_append_events``; ``_write`` signals the log once it commits.
_APPENDED = "vigil_events_appended"
_T = TypeVar("_T")
SampleValues = tuple[str, str, Any, float]  # a sample's row: instance, metric, time, value


# Built once, as every statement a monitor cycle runs: building one cost more than running it.
_INSERT_EVENT = prepared(models.events.insert().returning(models.events.c.id))


class StoreBase:
    """The engine and the two kinds of transaction. Subclasses add one idea each."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._closed = False  # ``Store.close``: every way to the database refuses from then on
        # A SQLite file named by its path (not by a ``file:`` URI, whose options are SQLite's
        # to apply to every connection): the events' signal file beside it.
        self._database = sqlite_file(engine.url.database) if self._dialect == "sqlite" else None
        self._signal = (
            None
            if self._database is None
            else self._database.with_name(self._database.name + ".events")
        )
        # SQLite files: connections of the store's own, outside the pool (``OwnConnection``):
        # a read-only one for the monitor's one query of every cycle (``_reader_fetch``) and
        # the group commit's sample writer (``_samples``); each opened when first used.
        self._reader = OwnConnection(self._open_reader)
        self._sample_writer = OwnConnection(self._open_sample_writer)
        self._statements: dict[str, Any] = {}  # ``_built``

    async def _reader_fetch(
        self, action: str, sql: str, parameters: Sequence[Any]
    ) -> Iterable[sqlite3.Row]:
        """Run one read query on the reader connection (a SQLite file): one hand-off to the
        driver's thread, none of the pool's or SQLAlchemy's own. Its rows as tuples."""
        return await self._reader_run(action, fetch_all, sql, parameters)

    async def _reader_run(self, action: str, function: Callable[..., _T], *arguments: Any) -> _T:
        """``function(connection, *arguments)`` in the reader connection's thread (a SQLite
        file): however many queries it makes, one hand-off."""
        try:
            return await run_in_thread(await self._reader.get(), function, *arguments)
        except (sqlite3.Error, ValueError) as exc:  # ValueError: aiosqlite's "closed"
            await self._reader.reset()  # opened afresh next time
            raise VigilStorageError(f"{action} failed: {type(exc).__name__}: {exc}") from exc

    async def _open_reader(self) -> aiosqlite.Connection:
        assert self._database is not None  # a SQLite file
        return await connect_own(
            f"{self._database.as_uri()}?mode=ro",
            uri=True,
            isolation_level=None,
            pragmas=[f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}"],
        )

    async def _open_sample_writer(self) -> aiosqlite.Connection:
        assert self._database is not None  # a SQLite file
        # "IMMEDIATE": the insert begins the transaction holding the write lock, so it waits
        # its turn on the busy timeout behind another writer (as the pool's writers do).
        return await connect_own(
            self._database,
            isolation_level="IMMEDIATE",
            pragmas=[
                f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
                "synchronous=NORMAL",
            ],  # as the engine's
        )

    def log_version(self) -> tuple[int, int, int] | None:
        """A token that changes whenever any process may have appended events to the log
        since it was read, or ``None`` when there is no telling (PostgreSQL: its NOTIFY is
        the signal). Read it before reading the log; while it is unchanged, looking again
        finds nothing new. With SQLite it is the signal file's stamp, which every process
        appending events moves after its commit (``_write``): a system call, no query.
        A process killed between its commit and the stamp is noticed at the next stamp, so
        readers still look now and then (``EventWatch``'s recheck)."""
        if self._signal is None:
            return None
        try:
            found = os.stat(self._signal)
        except OSError:
            return (0, 0, 0)  # no process has signalled yet
        return (found.st_mtime_ns, found.st_ino, found.st_size)

    def _connect(self, action: str) -> AsyncConnection:
        """A connection of the engine's pool (to use as ``async with``). Once the store is
        closed, ``VigilStorageError``: the disposed engine would open a new pool that nobody
        closes, as the store's own connections refuse (``OwnConnection``)."""
        if self._closed:
            raise VigilStorageError(f"{action} failed: the store is closed")
        return self._engine.connect()

    @asynccontextmanager
    async def _read(self, action: str) -> AsyncIterator[AsyncConnection]:
        """A read transaction: one consistent snapshot for a count and its page."""
        with translated_errors(action):
            async with self._connect(action) as connection:
                yield connection

    @asynccontextmanager
    async def _write(self, action: str) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed on success, rolled back on any error."""
        with translated_errors(action):
            async with self._connect(action) as connection:
                if self._dialect == "sqlite":
                    connection = await connection.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
                try:
                    async with connection.begin():
                        yield connection
                finally:
                    appended = connection.info.pop(_APPENDED, False)
        if appended and self._signal is not None:
            signal_events(self._signal)

    async def _write_all(
        self, action: str, body: Callable[[AsyncConnection], Coroutine[Any, Any, _T]]
    ) -> _T:
        """``body(connection)`` in a write transaction (as ``_write``), its result. On SQLite
        the whole transaction runs in the driver's thread (``_own.drive``): one hand-off
        however many statements it runs, so ``body`` must wait on nothing but its
        statements."""
        if self._dialect != "sqlite":
            async with self._write(action) as connection:
                return await body(connection)
        with translated_errors(action):
            async with self._connect(action) as connection:
                connection = await connection.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
                raw = await connection.get_raw_connection()
                driver: Any = raw.driver_connection  # an aiosqlite connection
                driven = cast(AsyncConnection, DrivenConnection(connection, driver._conn))
                try:
                    result = await drive(driver, _in_transaction(connection, body, driven))
                finally:
                    appended = connection.info.pop(_APPENDED, False)
        if appended and self._signal is not None:
            signal_events(self._signal)
        return result

    def _upsert(self, table: Table) -> Any:
        """``INSERT ... ON CONFLICT``: the same construct exists for both dialects."""
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _built(self, key: str, build: Callable[[], Any]) -> Any:
        """A statement that is the same every time, built once for this store (its dialect):
        building an upsert's ``excluded`` or an alias's columns anew cost more than running
        the statement, several times over in each monitor cycle that writes."""
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = build()
        return statement

    def _adding_upsert(self, table: Table, keys: Sequence[str], counters: Sequence[str]) -> Any:
        """``INSERT ... ON CONFLICT (keys) DO UPDATE``, adding the new row's ``counters`` to
        the stored ones (built once, ``_built``)."""

        def build() -> Any:
            statement = self._upsert(table)
            return prepared(
                statement.on_conflict_do_update(
                    index_elements=[table.c[key] for key in keys],
                    set_={name: table.c[name] + statement.excluded[name] for name in counters},
                )
            )

        return self._built(f"adding upsert {table.name}", build)

    async def _append_events(
        self,
        connection: AsyncConnection,
        items: Sequence[Event],
        *,
        new_groups: Mapping[uuid.UUID, timedelta] | None = None,
        claim: Claim | None = None,
    ) -> list[Event]:
        """Insert events in order; returns them carrying their new ids. ``new_groups``: the
        incident groups this transaction created (``_group_rows``); ``claim``: the
        notifications' claim, given the channels they name (``_enqueue_notifications``)."""
        if not items:
            return []
        if self._dialect == "postgresql":
            await connection.execute(select(func.pg_advisory_xact_lock(EVENT_LOCK_KEY)))
        stored: list[Event] = []
        for item in items:
            new_id = await connection.scalar(
                _INSERT_EVENT,
                {
                    "kind": item.kind.value,
                    "at": item.at,
                    "metric": item.metric,
                    "rule": item.rule,
                    "incident_id": item.incident.id if item.incident is not None else None,
                    "payload": event_payload(item),
                },
            )
            assert new_id is not None
            stored.append(_with_id(item, int(new_id)))
        # The one place incident events are stored, so the one place their notifications are
        # written: same transaction, same fate.
        await self._enqueue_notifications(connection, stored, new_groups=new_groups, claim=claim)
        await self._count_rule_stats(connection, stored)
        connection.info[_APPENDED] = True
        if self._dialect == "postgresql":
            # Delivered at commit, never for a rolled-back transaction: wakes every instance
            # to read the log (the truth), so the payload is only a hint.
            await connection.execute(select(func.pg_notify(EVENTS_CHANNEL, str(stored[-1].id))))
        return stored

    async def _enqueue_notifications(
        self,
        connection: AsyncConnection,
        events: Sequence[Event],
        *,
        new_groups: Mapping[uuid.UUID, timedelta] | None = None,
        claim: Claim | None = None,
    ) -> None:
        """The outbox's share of storing events: ``_outbox.Outbox`` writes it."""
        raise NotImplementedError

    async def _claim(
        self,
        connection: AsyncConnection,
        *,
        now: datetime,
        lease: timedelta,
        limit: int,
        among: Sequence[Event] | None = None,
    ) -> list[Delivery]:
        """Claiming outbox rows within a transaction: ``_outbox.Outbox`` writes it."""
        raise NotImplementedError

    async def _sample_rows(self, samples: Sequence[Sample]) -> list[SampleValues]:
        """Samples as the driver takes them: ``_samples.SampleQueries`` adds it."""
        raise NotImplementedError

    async def _store_sample_rows(
        self, connection: AsyncConnection, rows: list[SampleValues]
    ) -> None:
        """``_sample_rows`` inserted within ``connection``'s transaction (``_samples``)."""
        raise NotImplementedError

    async def _count_rule_stats(self, connection: AsyncConnection, events: Sequence[Event]) -> None:
        """The rules' noise counters' share: ``_rule_stats.RuleStatsQueries`` adds it."""
        raise NotImplementedError

    async def _count_sent(
        self, connection: AsyncConnection, event_ids: Sequence[int], *, now: datetime
    ) -> None:
        """Notifications settled as sent, counted for their rules (``_rule_stats``)."""
        raise NotImplementedError


async def _in_transaction(
    connection: AsyncConnection,
    body: Callable[[AsyncConnection], Coroutine[Any, Any, _T]],
    driven: AsyncConnection,
) -> _T:
    async with connection.begin():
        return await body(driven)


def sqlite_file(database: str | None) -> Path | None:
    """The file of a SQLite database URL's database, absolute; ``None`` for a ``file:`` URI,
    left to SQLite: the store then reads and writes through its engine alone."""
    if database is None or database.startswith("file:"):
        return None
    return sqlite_path(database)


def signal_events(path: Path) -> None:
    """Move the signal file's stamp to now (creating it, owner-only, the first time). Best
    effort: a reader that misses it finds the events at its next recheck."""
    stamp = time.time_ns()
    try:
        os.utime(path, ns=(stamp, stamp))
    except FileNotFoundError:
        try:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            os.utime(path, ns=(stamp, stamp))
        except OSError:
            return
    except OSError:
        return


def event_payload(item: Event) -> dict[str, Any]:
    payload = item.to_dict()
    payload.pop("id")
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as exc:
        raise ValidationError("data", f"event data must be JSON: {exc}") from None
    return payload


def logged(item: Event) -> Event:
    """A stored event as reading it back from the log gives it (its JSON payload)."""
    return Event.from_dict(json.loads(json.dumps(item.to_dict())))


def _with_id(item: Event, new_id: int) -> Event:
    return dataclasses.replace(item, id=new_id)


# -- row conversion ----------------------------------------------------------------------------


def incident_from_row(row: Row[Any] | Mapping[str, Any]) -> Incident:
    data = row._mapping if isinstance(row, Row) else row
    return Incident(
        id=data["id"],
        metric=data["metric"],
        severity=data["severity"],
        status=data["status"],
        triggered_at=data["triggered_at"],
        # float(): SQLite's RETURNING hands back whole REALs as integers.
        threshold=float(data["threshold"]),
        value=float(data["value"]),
        peak_value=float(data["peak_value"]),
        last_value=float(data["last_value"]),
        message=data["message"],
        resolved_at=data["resolved_at"],
        resolution=data["resolution"],
        acknowledged_by=data["acknowledged_by"],
        acknowledged_at=data["acknowledged_at"],
        notes=data["notes"],
        resolved_by=data["resolved_by"],
        rule=data["rule"],
        instance=data["series"] or None,
        condition=data["condition"],
        values=_term_values(data["term_values"]),
        no_data=bool(data["no_data"]),
        flapping=bool(data["flapping"]),
        group=data["group_id"],
    )


def _term_values(raw: Any) -> dict[str, float] | None:
    if raw is None:
        return None
    return {str(metric): float(value) for metric, value in dict(raw).items()}


def incident_values(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "metric": incident.metric,
        "severity": incident.severity,
        "status": incident.status,
        "triggered_at": incident.triggered_at,
        "resolved_at": incident.resolved_at,
        "resolution": incident.resolution,
        "threshold": incident.threshold,
        "value": incident.value,
        "peak_value": incident.peak_value,
        "last_value": incident.last_value,
        "message": incident.message,
        "acknowledged_by": incident.acknowledged_by,
        "acknowledged_at": incident.acknowledged_at,
        "notes": incident.notes,
        "resolved_by": incident.resolved_by,
        "rule": incident.rule,
        "series": incident.series,
        "condition": incident.condition,
        "term_values": dict(incident.values) if incident.values is not None else None,
        "no_data": incident.no_data,
        "flapping": incident.flapping,
        "group_id": incident.group,
    }


RULE_FIELDS = FIELD_NAMES  # the columns are the rule's fields, name for name


def rule_from_row(row: Row[Any] | Mapping[str, Any]) -> Rule:
    data = row._mapping if isinstance(row, Row) else row
    values = {name: data[name] for name in RULE_FIELDS}
    values["metric"] = values["metric"] or ""  # NULL for a composite
    return Rule(**values)


def rule_values(rule: Rule) -> dict[str, Any]:
    values = {name: getattr(rule, name) for name in RULE_FIELDS}
    values["metric"] = rule.metric or None
    return values


def event_from_row(row: Row[Any]) -> Event:
    return event_from(row.id, row.payload)


def event_from(ident: int, payload: Mapping[str, Any]) -> Event:
    """The event of the log's row ``ident`` with ``payload``."""
    return Event.from_dict({**payload, "id": ident})


# -- input checks: the field named, nothing touched ----------------------------------------------

# The core's checks, under the names the store's modules know them by.
check_time = validation.check_aware
check_enum = validation.check_choice
check_int = validation.check_int
check_name = validation.check_text
check_lease = records.check_lease


def parse_incident_id(value: uuid.UUID | str) -> uuid.UUID:
    """An id from a URL: anything that is not a UUID cannot name an incident."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFoundError("incident", value) from None


def sqlite_text(moment: datetime) -> str:
    """A time as ``UTCDateTime`` stores it in SQLite: naive UTC, always with microseconds
    ("2026-12-03 08:00:00.000000", the first 26 characters of the aware UTC text)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(" ", "microseconds")[:26]


def sqlite_time(text: str) -> datetime:
    """A time as SQLite stores it (naive UTC text), aware."""
    return datetime.fromisoformat(text + "+00:00")  # a sixth of the time of .replace()
