"""Prepared statements in driven SQLite transactions (vigil.store._prepared): the same rows,
parameters, errors and listeners as SQLAlchemy's own execution of the same statement, and the
monitor's notifying cycle running on them alone."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, event, func, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from vigil.core import Event, EventKind, Sample
from vigil.core.evaluation import CycleResult
from vigil.core.incidents import Status
from vigil.store import Store, models
from vigil.store._base import incident_from_row, incident_values
from vigil.store._prepared import prepared
from vigil.store.errors import VigilStorageError
from vigil.store.records import Claim

from .conftest import T0, add_channel, make_incident, open_incident

INCIDENTS = models.incidents
_INSERT = prepared(INCIDENTS.insert())
_BY_IDS = prepared(
    select(INCIDENTS)
    .where(INCIDENTS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(INCIDENTS.c.triggered_at)
)
_COUNT_BY_STATUS = prepared(
    select(INCIDENTS.c.status, func.count()).group_by(INCIDENTS.c.status).order_by("status")
)
# A value the statement carries itself (``+ 1``) beside a given one, and RETURNING.
_BUMP = prepared(
    update(INCIDENTS)
    .where(INCIDENTS.c.id == bindparam("ident"))
    .values(peak_value=INCIDENTS.c.peak_value + 1, message=bindparam("new_message"))
    .returning(INCIDENTS.c.peak_value, INCIDENTS.c.message)
)


async def in_driven(
    store: Store, body: Callable[[AsyncConnection], Coroutine[Any, Any, Any]]
) -> Any:
    return await store._write_all("testing", body)


async def test_rows_read_prepared_are_those_sqlalchemy_reads(migrated_sqlite_url: str) -> None:
    incidents = [
        make_incident(metric="gateway_latency", at=T0),
        dataclasses.replace(
            make_incident(metric="memory_usage", at=T0 + timedelta(seconds=5)),
            status=Status.ACKNOWLEDGED,
            acknowledged_by="ana",
            acknowledged_at=T0 + timedelta(seconds=6),
            notes="looking",
        ),
        make_incident(metric="error_rate", at=T0 + timedelta(seconds=9), value=7.5),
    ]
    ids = [incident.id for incident in incidents]
    async with await Store.open(migrated_sqlite_url) as store:

        async def write(connection: AsyncConnection) -> None:
            await connection.execute(_INSERT, [incident_values(i) for i in incidents])

        await in_driven(store, write)

        async def read(connection: AsyncConnection) -> Any:
            every = [
                incident_from_row(r) for r in (await connection.execute(_BY_IDS, {"ids": ids}))
            ]
            two = (await connection.scalars(_BY_IDS, {"ids": ids[1:]})).all()
            counts = (await connection.execute(_COUNT_BY_STATUS)).all()
            return every, two, counts

        every, two, counts = await in_driven(store, read)
        async with store._read("reading back") as connection:
            plain = [incident_from_row(r) for r in await connection.execute(_BY_IDS, {"ids": ids})]
            plain_counts = (await connection.execute(_COUNT_BY_STATUS)).all()
    assert every == plain == incidents  # datetimes, UUIDs, enums, floats, NULLs: as written
    assert two == ids[1:]  # each IN list's length has a shape of its own
    assert counts == plain_counts == [("acknowledged", 1), ("active", 2)]


async def test_a_value_the_statement_carries_and_returning(migrated_sqlite_url: str) -> None:
    async with await Store.open(migrated_sqlite_url) as store:
        incident = await open_incident(store, value=150.0)

        async def bump(connection: AsyncConnection) -> Any:
            return (
                await connection.execute(_BUMP, {"ident": incident.id, "new_message": "again"})
            ).one()

        assert tuple(await in_driven(store, bump)) == (151.0, "again")
        assert tuple(await in_driven(store, bump)) == (152.0, "again")
        assert (await store.get_incident(incident.id)).peak_value == 152.0


async def test_a_parameter_left_out_is_an_error_not_a_null(migrated_sqlite_url: str) -> None:
    async with await Store.open(migrated_sqlite_url) as store:
        incident = await open_incident(store)

        async def bump(connection: AsyncConnection) -> Any:
            return (await connection.execute(_BUMP, {"ident": incident.id})).one()

        with pytest.raises(VigilStorageError, match="a value is required for 'new_message'"):
            await in_driven(store, bump)
        assert (await store.get_incident(incident.id)).message == incident.message


async def test_an_empty_in_list_reads_nothing(migrated_sqlite_url: str) -> None:
    async with await Store.open(migrated_sqlite_url) as store:
        await open_incident(store)

        async def read(connection: AsyncConnection) -> Any:
            return (await connection.execute(_BY_IDS, {"ids": []})).all()

        assert await in_driven(store, read) == []


async def test_a_constraint_violation_is_sqlalchemys_error_and_nothing_is_kept(
    migrated_sqlite_url: str,
) -> None:
    incident = make_incident()
    async with await Store.open(migrated_sqlite_url) as store:

        async def twice(connection: AsyncConnection) -> None:
            await connection.execute(_INSERT, incident_values(incident))
            await connection.execute(_INSERT, incident_values(incident))

        with pytest.raises(VigilStorageError) as raised:
            await in_driven(store, twice)
        cause = raised.value.__cause__
        assert isinstance(cause, sa_exc.IntegrityError)  # what callers catch (duplicates)
        assert "UNIQUE constraint failed: incidents.rule, incidents.series" in str(cause.orig)
        async with store._read("reading back") as connection:
            assert (await connection.execute(_BY_IDS, {"ids": [incident.id]})).all() == []


async def test_the_engines_cursor_listeners_see_prepared_statements(
    migrated_sqlite_url: str,
) -> None:
    async with await Store.open(migrated_sqlite_url) as store:
        seen: list[tuple[str, Any]] = []

        def record(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
            seen.append((statement, parameters))

        event.listen(store._engine.sync_engine, "before_cursor_execute", record)
        ident = uuid.uuid4()

        async def read(connection: AsyncConnection) -> Any:
            return (await connection.execute(_BY_IDS, {"ids": [ident]})).all()

        await in_driven(store, read)
        event.remove(store._engine.sync_engine, "before_cursor_execute", record)
    [(statement, parameters)] = [s for s in seen if "FROM incidents" in s[0]]
    assert "IN (?)" in statement
    assert parameters == [ident.hex]  # as SQLAlchemy's Uuid type stores it on SQLite


async def test_a_notifying_cycle_runs_on_prepared_statements_alone(
    migrated_sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What keeps the trigger -> message delay short (benchmarks/bench_peer.py): a cycle that
    opens an incident and one that resolves it, each with its notification claimed, run no
    statement through SQLAlchemy's execution but their BEGIN and COMMIT."""
    async with await Store.open(migrated_sqlite_url) as store:
        await add_channel(store)
        await store.add_channel({"name": "pager", "url": "json://127.0.0.1:9/p"}, now=T0)
        through_sqlalchemy: list[object] = []
        execute = AsyncConnection.execute

        async def counted(self: AsyncConnection, statement: Any, *args: Any, **kw: Any) -> Any:
            through_sqlalchemy.append(statement)
            return await execute(self, statement, *args, **kw)

        monkeypatch.setattr(AsyncConnection, "execute", counted)
        incident = make_incident()
        for cycle, item in enumerate(
            (
                Event.for_incident(EventKind.INCIDENT_OPENED, incident, at=T0),
                Event.for_incident(
                    EventKind.INCIDENT_RESOLVED,
                    dataclasses.replace(
                        incident, status=Status.RESOLVED, resolved_at=T0 + timedelta(seconds=3)
                    ),
                    at=T0 + timedelta(seconds=3),
                ),
            )
        ):
            claim = Claim(lease=timedelta(seconds=30))
            await store.commit_cycle(
                samples=[Sample("bot", incident.metric, item.at, 150.0)],
                result=CycleResult(events=[item]),
                now=item.at,
                group_window=timedelta(seconds=2),
                claim=claim,
            )
            assert len(claim.deliveries) == 2, cycle  # both channels, claimed in the cycle
            assert through_sqlalchemy == [], (cycle, through_sqlalchemy)
            # Sent: the resolution's messages are not held behind the opening's.
            await store.settle_sent([d.item.id for d in claim.deliveries], now=item.at)
