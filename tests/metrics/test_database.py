"""Query timing from SQLAlchemy engine events, on real SQLite and PostgreSQL engines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from vigil.metrics import QueryTimer, Recorder

from .support import FakeClock

LATENCY = "database_query_latency"


def with_slow_function(engine: Engine, clock: FakeClock) -> None:
    """SQL ``advance(ms)`` moves the fake clock while the statement runs: a query of exactly
    ``ms`` milliseconds, with no sleeping."""

    def advance(ms: float) -> float:
        clock.advance(ms / 1000)
        return ms

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.create_function("advance", 1, advance)

    event.listen(engine, "connect", on_connect)


async def test_sync_sqlite_statements_are_timed(tmp_path: Path) -> None:
    clock = FakeClock()
    timer = QueryTimer(Recorder(clock=clock), window=30)
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    with_slow_function(engine, clock)
    timer.attach(engine)
    with engine.connect() as conn:
        conn.execute(text("select advance(20)"))
        conn.execute(text("select advance(40)"))
    engine.dispose()
    assert timer.recorder.values(LATENCY, 30) == pytest.approx([20.0, 40.0])
    assert await timer.read() == {"database_query_time": pytest.approx(30.0)}
    clock.advance(31)
    assert await timer.read() == {"database_query_time": None}


async def test_async_sqlite_statements_are_timed(sqlite_url: str) -> None:
    clock = FakeClock()
    timer = QueryTimer(Recorder(clock=clock), window=30)
    engine = create_async_engine(sqlite_url)
    with_slow_function(engine.sync_engine, clock)
    timer.attach(engine)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("select advance(15)"))
            await conn.execute(text("select advance(45)"))
    finally:
        await engine.dispose()
    assert await timer.read() == {"database_query_time": pytest.approx(30.0)}


async def test_a_failed_statement_is_counted_and_does_not_skew_the_next(tmp_path: Path) -> None:
    clock = FakeClock()
    timer = QueryTimer(Recorder(clock=clock))
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    with_slow_function(engine, clock)
    timer.attach(engine)
    with engine.connect() as conn:
        conn.execute(text("select advance(500)"))
        with pytest.raises(DBAPIError):
            conn.execute(text("select * from no_such_table"))
        clock.advance(10)
        conn.execute(text("select advance(5)"))
    engine.dispose()
    assert timer.recorder.values(LATENCY, 30) == pytest.approx([500.0, 5.0])
    assert timer.recorder.window("database_errors", 30).count == 1


async def test_detach_stops_timing_and_attaching_twice_counts_once(tmp_path: Path) -> None:
    clock = FakeClock()
    recorder = Recorder(clock=clock)
    timer = QueryTimer(recorder)
    other = QueryTimer(recorder)
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    timer.attach(engine)
    timer.attach(engine)
    with engine.connect() as conn:
        conn.execute(text("select 1"))
        assert recorder.total(LATENCY) == 1
        other.attach(engine)
        conn.execute(text("select 2"))
        assert recorder.total(LATENCY) == 3  # each timer saw it once
        timer.detach(engine)
        timer.detach(engine)
        other.detach_all()
        conn.execute(text("select 3"))
    engine.dispose()
    assert recorder.total(LATENCY) == 3


def test_only_engines_can_be_attached() -> None:
    with pytest.raises(TypeError, match="Engine"):
        QueryTimer().attach("sqlite://")  # type: ignore[arg-type]


@pytest.mark.postgres
async def test_postgresql_query_time_and_errors(postgres_url: str) -> None:
    timer = QueryTimer(window=300)
    engine = create_async_engine(postgres_url)
    timer.attach(engine)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("select pg_sleep(0.05)"))
            await conn.execute(text("select 1"))
            with pytest.raises(DBAPIError):
                await conn.execute(text("select 1 / 0"))
    finally:
        await engine.dispose()
    timings = timer.recorder.values(LATENCY, 300)
    assert max(timings) >= 50.0  # pg_sleep(0.05) cannot take less
    assert len(timings) >= 2
    assert timer.recorder.window("database_errors", 300).count == 1
    reading = await timer.read()
    assert reading["database_query_time"] == pytest.approx(sum(timings) / len(timings))
