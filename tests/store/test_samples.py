"""Metric history: downsampled for charts, latest per instance for combining."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.core.errors import ValidationError
from vigil.core.samples import Sample
from vigil.store import Store

from .conftest import T0


def _minute_samples(
    instance: str, values: list[float], metric: str = "gateway_latency"
) -> list[Sample]:
    return [
        Sample(instance, metric, T0 + timedelta(minutes=n), value) for n, value in enumerate(values)
    ]


async def test_history_is_downsampled_to_at_most_n_bucket_means(store: Store) -> None:
    values = [float(n) for n in range(60)]
    await store.add_samples(_minute_samples("bot-1", values))
    points = await store.metric_history(
        "gateway_latency", start=T0, end=T0 + timedelta(hours=1), max_points=6
    )
    assert [p.time for p in points] == [T0 + timedelta(minutes=10 * n) for n in range(6)]
    assert [p.count for p in points] == [10] * 6
    assert [p.mean for p in points] == [4.5 + 10 * n for n in range(6)]
    assert [(p.min, p.max) for p in points[:2]] == [(0.0, 9.0), (10.0, 19.0)]


async def test_history_keeps_to_its_range_metric_and_instance(store: Store) -> None:
    await store.add_samples(
        _minute_samples("bot-1", [1.0] * 10)
        + _minute_samples("bot-2", [3.0] * 10)
        + _minute_samples("bot-1", [99.0] * 10, metric="error_rate")
    )
    start, end = T0 + timedelta(minutes=2), T0 + timedelta(minutes=5)
    [both] = await store.metric_history("gateway_latency", start=start, end=end, max_points=1)
    assert (both.count, both.mean) == (6, 2.0)
    [one] = await store.metric_history(
        "gateway_latency", start=start, end=end, max_points=1, instance="bot-2"
    )
    assert (one.count, one.mean) == (3, 3.0)
    assert await store.metric_history("memory_usage", start=start, end=end) == []


async def test_a_sample_just_before_the_end_stays_within_the_last_bucket(store: Store) -> None:
    end = T0 + timedelta(seconds=7)
    await store.add_samples(
        [Sample("bot-1", "gateway_latency", end - timedelta(microseconds=1), 5.0)]
    )
    points = await store.metric_history("gateway_latency", start=T0, end=end, max_points=7)
    assert len(points) == 1 and points[0].time == T0 + timedelta(seconds=6)


async def test_latest_values_are_one_per_instance_and_metric(store: Store) -> None:
    await store.add_samples(
        _minute_samples("bot-1", [1.0, 2.0, 3.0])
        + _minute_samples("bot-2", [7.0, 8.0])
        + _minute_samples("bot-2", [0.5], metric="error_rate")
    )
    latest = await store.latest_values(since=T0 + timedelta(minutes=1))
    # error_rate's only sample is older than `since`: that metric has no data this cycle.
    assert latest == {"gateway_latency": [3.0, 8.0]}
    # two samples of one instance at the same newest time: the one stored last wins
    await store.add_samples([Sample("bot-1", "gateway_latency", T0 + timedelta(minutes=2), 4.0)])
    assert await store.latest_values(since=T0 + timedelta(minutes=1)) == {
        "gateway_latency": [4.0, 8.0]
    }
    assert await store.latest_values(since=T0 + timedelta(hours=1)) == {}


async def test_histories_of_several_metrics_in_one_read(store: Store) -> None:
    await store.add_samples(
        _minute_samples("bot-1", [float(n) for n in range(60)])
        + _minute_samples("bot-2", [100.0] * 60)
        + _minute_samples("bot-1", [5.0] * 30, metric="error_rate")
    )
    start, end = T0, T0 + timedelta(hours=1)
    histories = await store.metric_histories(
        ["gateway_latency", "error_rate", "memory_usage"], start=start, end=end, max_points=6
    )
    assert histories == {
        "gateway_latency": await store.metric_history(
            "gateway_latency", start=start, end=end, max_points=6
        ),
        "error_rate": await store.metric_history("error_rate", start=start, end=end, max_points=6),
        "memory_usage": [],
    }
    assert [p.count for p in histories["gateway_latency"]] == [20] * 6  # both instances
    assert [p.count for p in histories["error_rate"]] == [10] * 3
    assert await store.metric_histories([], start=start, end=end) == {}
    with pytest.raises(ValidationError) as caught:
        await store.metric_histories(["gateway_latency", "Bad!"], start=start, end=end)
    assert caught.value.field == "metric"
    with pytest.raises(ValidationError) as caught:
        await store.metric_histories([f"m{n}" for n in range(1001)], start=start, end=end)
    assert caught.value.field == "metrics"


async def test_latest_values_leave_out_the_asking_instance(store: Store) -> None:
    await store.add_samples(
        _minute_samples("bot-1", [1.0, 2.0, 3.0])
        + _minute_samples("bot-2", [7.0, 8.0])
        + _minute_samples("bot-3", [4.0], metric="error_rate")
    )
    since = T0
    assert await store.latest_values(since=since) == {
        "gateway_latency": [3.0, 8.0],
        "error_rate": [4.0],
    }
    assert await store.latest_values(since=since, exclude_instance="bot-1") == {
        "gateway_latency": [8.0],
        "error_rate": [4.0],
    }
    assert await store.latest_values(since=T0 + timedelta(hours=1)) == {}


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"metric": "Bad!"}, "metric"),
        ({"start": datetime(2026, 1, 1)}, "start"),
        ({"end": T0}, "end"),
        ({"max_points": 0}, "max_points"),
        ({"max_points": 1_000_000}, "max_points"),
    ],
)
async def test_history_arguments_are_checked(
    store: Store, arguments: dict[str, object], field: str
) -> None:
    call: dict[str, object] = {
        "metric": "gateway_latency",
        "start": T0,
        "end": T0 + timedelta(hours=1),
    }
    call.update(arguments)
    metric = call.pop("metric")
    with pytest.raises(ValidationError) as caught:
        await store.metric_history(metric, **call)  # type: ignore[arg-type]
    assert caught.value.field == field


async def _walk(store: Store, **options: object) -> list[list[tuple[datetime, str, str, float]]]:
    return [rows async for rows in store.sample_chunks(**options)]  # type: ignore[arg-type]


async def test_sample_chunks_walk_a_range_in_order_whatever_the_chunk(store: Store) -> None:
    # Three instances share every minute: chunk edges fall between equal times.
    samples = [
        Sample(instance, metric, T0 + timedelta(minutes=n), float(n * 10 + k))
        for n in range(10)
        for k, instance in enumerate(("a", "b", "c"))
        for metric in ("gateway_latency", "error_rate")
    ]
    await store.add_samples(samples)
    end = T0 + timedelta(minutes=8)  # the last two minutes are outside [start, end)
    wanted = [
        (s.time, s.metric, s.instance, s.value)
        for s in samples
        if s.metric == "gateway_latency" and s.time < end
    ]
    for chunk in (1, 3, 4, 24, 1000):
        chunks = await _walk(store, start=T0, end=end, metrics=["gateway_latency"], chunk=chunk)
        assert [row for rows in chunks for row in rows] == wanted
        assert all(len(rows) <= chunk for rows in chunks)
        assert all(row[0].tzinfo is not None for rows in chunks for row in rows)
    every = await _walk(store, start=T0, end=end)
    assert sum(len(rows) for rows in every) == 2 * len(wanted)
    assert await _walk(store, start=T0, end=end, metrics=[]) == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"metrics": ["Not A Metric"]}, "metric"),
        ({"chunk": 0}, "chunk"),
    ],
)
async def test_sample_chunks_refuse_bad_input(
    store: Store, options: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        await _walk(store, start=T0, end=T0 + timedelta(hours=1), **options)
    assert caught.value.field == field


SERIES = st.tuples(st.sampled_from(["bot-1", "bot-2", "bot-3"]), st.sampled_from(["a", "b"]))
STORED = st.lists(
    st.tuples(SERIES, st.integers(0, 20), st.floats(-1e6, 1e6, allow_nan=False)), max_size=40
)


@pytest.mark.untraced
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stored=STORED,
    since=st.integers(0, 21),
    exclude=st.sampled_from([None, "bot-1", "bot-4"]),
)
def test_sqlites_one_hand_off_latest_readings_are_the_querys(
    sqlite_template: Path,
    stored: list[tuple[tuple[str, str], int, float]],
    since: int,
    exclude: str | None,
) -> None:
    """The monitor's quiet-cycle read on SQLite (one hand-off to the driver's thread) answers
    what the query every database runs answers, ties (the one stored last) included."""

    async def check(url: str) -> None:
        async with await Store.open(url) as store:
            await store.add_samples(
                [
                    Sample(instance, metric, T0 + timedelta(seconds=at), value)
                    for (instance, metric), at, value in stored
                ]
            )
            start = T0 + timedelta(seconds=since)
            fast = await store.latest_readings(since=start, exclude_instance=exclude)
            assert fast == await store._queried_latest_readings(start, exclude)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vigil.db"
        shutil.copyfile(sqlite_template, path)
        asyncio.run(check(f"sqlite+aiosqlite:///{path}"))


# One step of a monitor's life on SQLite: samples stored (series, second, value), a read of the
# latest readings (since, excluded instance), or a series' newest row deleted (a cleanup).
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("store"), STORED),
        st.tuples(
            st.just("read"), st.integers(0, 21), st.sampled_from([None, "bot-1", "bot-1", "bot-4"])
        ),
        st.tuples(st.just("delete"), SERIES),
    ),
    max_size=12,
)


@pytest.mark.untraced
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS)
def test_sqlites_incremental_latest_readings_stay_the_querys(
    sqlite_template: Path, steps: list[tuple[object, ...]]
) -> None:
    """The monitor's read on a SQLite file ranks only the rows stored since its previous
    read and keeps the rest of that answer: whatever is stored in between (late samples,
    ties, other instances), deleted, or asked (``since`` back and forth, another instance
    left out), every read answers what ranking every row afresh answers."""
    _replay(sqlite_template, steps)


# Each case fails if the incremental read missed what it names.
_CASES: dict[str, list[tuple[object, ...]]] = {
    "a newest row deleted": [
        ("store", [(("bot-1", "a"), 1, 1.0), (("bot-1", "a"), 2, 2.0), (("bot-2", "a"), 1, 1.0)]),
        ("read", 0, None),
        ("delete", ("bot-1", "a")),
        ("read", 0, None),
    ],
    "the highest row deleted, its id given again": [
        ("store", [(("bot-1", "a"), 1, 1.0), (("bot-2", "a"), 2, 2.0)]),
        ("read", 0, None),
        ("delete", ("bot-2", "a")),
        ("store", [(("bot-3", "a"), 3, 3.0)]),
        ("read", 0, None),
    ],
    "another series at an older time of the same instant": [
        ("store", [(("bot-2", "a"), 5, 5.0), (("bot-1", "a"), 3, 3.0), (("bot-2", "a"), 3, 4.0)]),
        ("read", 0, None),
        ("store", [(("bot-2", "b"), 7, 7.0), (("bot-1", "b"), 6, 6.0), (("bot-2", "b"), 6, 8.0)]),
        ("read", 0, None),
    ],
    "a deleted row among many series (their ids checked a few hundred a query)": [
        ("store", [((f"bot-{n}", "a"), 1, 1.0) for n in range(1200)]),
        ("store", [((f"bot-{n}", "a"), 2, 2.0) for n in range(1200)]),
        ("read", 0, None),
        ("store", [(("bot-0", "b"), 3, 3.0)]),
        ("delete", ("bot-1100", "a")),
        ("read", 0, None),
    ],
    "since moved back": [
        ("store", [(("bot-1", "a"), 5, 5.0), (("bot-2", "a"), 1, 1.0)]),
        ("read", 3, None),
        ("read", 0, None),
    ],
    "since moved on": [
        ("store", [(("bot-1", "a"), 5, 5.0), (("bot-2", "a"), 1, 1.0)]),
        ("read", 0, None),
        ("read", 3, None),
    ],
    "another instance left out": [
        ("store", [(("bot-1", "a"), 5, 5.0), (("bot-2", "a"), 1, 1.0)]),
        ("read", 0, "bot-1"),
        ("read", 0, None),
        ("read", 0, "bot-2"),
    ],
    "a late sample, then a tie": [
        ("store", [(("bot-1", "a"), 5, 5.0)]),
        ("read", 0, None),
        ("store", [(("bot-1", "a"), 4, 4.0)]),
        ("read", 0, None),
        ("store", [(("bot-1", "a"), 5, 6.0)]),
        ("read", 0, None),
    ],
}


@pytest.mark.parametrize("case", list(_CASES))
def test_sqlites_incremental_latest_readings_in_each_case(sqlite_template: Path, case: str) -> None:
    _replay(sqlite_template, _CASES[case])


def _replay(sqlite_template: Path, steps: Sequence[tuple[object, ...]]) -> None:
    """``steps`` on a SQLite file; every read checked against ranking every row afresh."""

    async def check(url: str) -> None:
        async with await Store.open(url) as store:
            for step in steps:
                if step[0] == "store":
                    stored: Any = step[1]
                    await store.add_samples(
                        [
                            Sample(instance, metric, T0 + timedelta(seconds=at), value)
                            for (instance, metric), at, value in stored
                        ]
                    )
                elif step[0] == "delete":
                    instance, metric = cast(tuple[str, str], step[1])
                    async with store._engine.begin() as connection:
                        await connection.exec_driver_sql(
                            "DELETE FROM samples WHERE id = (SELECT id FROM samples WHERE "
                            "instance = ? AND metric = ? ORDER BY time DESC, id DESC LIMIT 1)",
                            (instance, metric),
                        )
                else:
                    start = T0 + timedelta(seconds=cast(int, step[1]))
                    exclude = cast(str | None, step[2])
                    fast = await store.latest_readings(since=start, exclude_instance=exclude)
                    assert fast == await store._queried_latest_readings(start, exclude)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vigil.db"
        shutil.copyfile(sqlite_template, path)
        asyncio.run(check(f"sqlite+aiosqlite:///{path}"))


async def test_sqlites_latest_readings_rank_only_the_rows_stored_since_the_last_read(
    migrated_sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A monitor reading a few seconds back while pushes arrive ranks each row once, not once
    a cycle for as long as it is within reach: the second read asks for the rows with ids
    above those the first one saw, and still answers the newest of every series. Its
    queries go to the reader's thread in one hand-off."""
    async with await Store.open(migrated_sqlite_url) as store:
        await store.add_samples(
            [Sample("bot-1", "a", T0 + timedelta(seconds=n), n) for n in range(5)]
        )
        await store.add_samples([Sample("bot-2", "a", T0, 7.0)])
        assert await store.latest_readings(since=T0) == {
            "a": {"bot-1": (4.0, T0 + timedelta(seconds=4)), "bot-2": (7.0, T0)}
        }
        [(seen,)] = await store._reader_fetch("test", "SELECT max(id) FROM samples", ())
        queries: list[tuple[str, tuple[Any, ...]]] = []
        hand_offs = 0
        run = store._reader_run

        class Recording:
            def __init__(self, connection: Any) -> None:
                self.connection = connection

            def execute(self, sql: str, parameters: Sequence[Any]) -> Any:
                queries.append((sql, tuple(parameters)))
                return self.connection.execute(sql, parameters)

        async def spy(action: str, function: Any, *arguments: Any) -> Any:
            nonlocal hand_offs
            hand_offs += 1
            return await run(action, lambda c, *a: function(Recording(c), *a), *arguments)

        monkeypatch.setattr(store, "_reader_run", spy)
        await store.add_samples([Sample("bot-1", "a", T0 + timedelta(seconds=9), 9.0)])
        assert await store.latest_readings(since=T0) == {
            "a": {"bot-1": (9.0, T0 + timedelta(seconds=9)), "bot-2": (7.0, T0)}
        }
        ranked = [parameters for sql, parameters in queries if "GROUP BY" in sql]
        assert ranked == [(seen, seen + 1, "2026-03-01 12:00:00.000000", seen, seen + 1)]
        assert hand_offs == 1 and len(queries) == 3  # the top, the rows since, the ids held


# -- the write path of pushed samples (group commit) ------------------------------------------


async def test_pushed_samples_written_in_one_go_read_back_as_samples_stored_one_way(
    store: Store,
) -> None:
    """``write_samples`` hands the driver plain rows (SQLite: text times on a connection of
    its own; PostgreSQL: ``COPY``): what it stores must read back exactly as what an insert
    through SQLAlchemy's types stores (times to the microsecond, other time zones converted,
    whole numbers as floats)."""
    from datetime import timezone

    odd = timezone(timedelta(hours=5, minutes=30))
    times = [
        T0,
        T0 + timedelta(microseconds=1),
        T0 + timedelta(seconds=1, microseconds=999_999),
        (T0 + timedelta(minutes=3)).astimezone(odd),
    ]
    written = [Sample("pushed", "gateway_latency", at, float(n)) for n, at in enumerate(times)]
    reference = [Sample("reference", "gateway_latency", at, float(n)) for n, at in enumerate(times)]
    await store.write_samples(written)
    await _typed_insert(store, reference)
    chunks = await _walk(store, start=T0, end=T0 + timedelta(hours=1))
    rows = [row for chunk in chunks for row in chunk]
    by_instance: dict[str, list[tuple[datetime, float]]] = {}
    for at, metric, instance, value in rows:
        assert metric == "gateway_latency"
        by_instance.setdefault(instance, []).append((at, value))
    assert by_instance["pushed"] == by_instance["reference"]
    assert [at for at, _ in by_instance["pushed"]] == [at.astimezone(T0.tzinfo) for at in times]
    latest = await store.latest_readings(since=T0)
    assert latest["gateway_latency"]["pushed"] == latest["gateway_latency"]["reference"]
    assert latest["gateway_latency"]["pushed"] == (3.0, times[-1])
    [pushed] = await store.metric_history(
        "gateway_latency", start=T0, end=T0 + timedelta(hours=1), max_points=1, instance="pushed"
    )
    [reference_point] = await store.metric_history(
        "gateway_latency", start=T0, end=T0 + timedelta(hours=1), max_points=1, instance="reference"
    )
    assert pushed == reference_point


@pytest.mark.parametrize("count", [1, 2, 3, 255, 256, 257, 340, 513, 1000])
def test_sqlite_rows_go_in_power_of_two_statements_in_their_order(count: int) -> None:
    """Every row once, in order, in statements of at most ``ROWS_A_STATEMENT`` rows whose
    sizes are powers of two (a few statement texts, whatever the number of rows), and as few
    statements as that allows."""
    from vigil.store._samples import ROWS_A_STATEMENT, _sqlite_inserts

    rows = [(f"i{n}", "m", f"t{n}", float(n)) for n in range(count)]
    statements = list(_sqlite_inserts(rows))
    sizes = [sql.count("(?, ?, ?, ?)") for sql, _ in statements]
    assert [len(parameters) for _, parameters in statements] == [4 * size for size in sizes]
    assert all(size & (size - 1) == 0 and size <= ROWS_A_STATEMENT for size in sizes)
    assert sizes == sorted(sizes, reverse=True)
    assert len(statements) == count // ROWS_A_STATEMENT + (count % ROWS_A_STATEMENT).bit_count()
    assert [value for _, parameters in statements for value in parameters] == [
        value for row in rows for value in row
    ]


async def test_samples_past_one_statement_are_all_stored_in_their_order(store: Store) -> None:
    """Pushed samples and a cycle's, more than one INSERT holds, sharing one time: every one
    stored, and stored in the order given (a history walk orders equal times by the order
    they were stored in)."""
    from vigil.core.evaluation import CycleResult

    pushed = [Sample("pushed", "gateway_latency", T0, float(n)) for n in range(600)]
    cycle = [Sample("vigil", "gateway_latency", T0, float(n)) for n in range(600, 900)]
    await store.write_samples(pushed)
    await store.commit_cycle(samples=cycle, result=CycleResult(), now=T0)
    chunks = await _walk(store, start=T0, end=T0 + timedelta(seconds=1), chunk=100_000)
    assert [value for chunk in chunks for *_, value in chunk] == [float(n) for n in range(900)]


async def _typed_insert(store: Store, samples: list[Sample]) -> None:
    """The reference: samples inserted through SQLAlchemy's table and column types."""
    from vigil.store import models

    async with store._engine.begin() as connection:
        await connection.execute(
            models.samples.insert(),
            [
                {"instance": s.instance, "metric": s.metric, "time": s.time, "value": s.value}
                for s in samples
            ],
        )


_REFUSE_LAST = {
    "sqlite": [
        "CREATE TRIGGER refuse_last BEFORE INSERT ON samples WHEN NEW.value = 24999 "
        "BEGIN SELECT RAISE(ABORT, 'the last sample is refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_last() RETURNS trigger AS $$ BEGIN "
        "IF NEW.value = 24999 THEN RAISE EXCEPTION 'the last sample is refused'; END IF; "
        "RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_last BEFORE INSERT ON samples "
        "FOR EACH ROW EXECUTE FUNCTION refuse_last()",
    ],
}
_ALLOW_LAST = {
    "sqlite": ["DROP TRIGGER refuse_last"],
    "postgresql": ["DROP TRIGGER refuse_last ON samples", "DROP FUNCTION refuse_last()"],
}


async def _run_sql(store: Store, statements: list[str]) -> None:
    async with store._engine.begin() as connection:
        for statement in statements:
            await connection.exec_driver_sql(statement)


async def test_pushed_samples_are_written_in_one_transaction(store: Store) -> None:
    """25,000 samples (more than a turn of the event loop's rows) commit together or not at
    all: the database refusing the last one leaves none of them stored, and the same batch
    then goes in whole."""
    from vigil.store.errors import VigilStorageError

    dialect = store._engine.dialect.name
    batch = [
        Sample(f"shard-{n % 7}", "gateway_latency", T0 + timedelta(milliseconds=n), float(n))
        for n in range(25_000)
    ]
    await _run_sql(store, _REFUSE_LAST[dialect])
    try:
        with pytest.raises(VigilStorageError, match="the last sample is refused"):
            await store.write_samples(batch)
    finally:
        await _run_sql(store, _ALLOW_LAST[dialect])
    assert await _walk(store, start=T0, end=T0 + timedelta(hours=1)) == []
    await store.write_samples(batch)  # the writer recovers from the failed transaction
    await store.write_samples([])  # nothing to write
    rows = await _walk(store, start=T0, end=T0 + timedelta(hours=1), chunk=100_000)
    assert sum(len(chunk) for chunk in rows) == 25_000


@pytest.mark.postgres
async def test_copy_on_postgresql_stores_the_rows_sqlites_insert_does(
    migrated_sqlite_url: str, migrated_postgres_url: str
) -> None:
    """The same pushed samples (and a monitor cycle's, written with its transaction) through
    PostgreSQL's ``COPY`` and SQLite's multi-row inserts read back as the same rows."""
    from datetime import timezone

    from vigil.core.evaluation import CycleResult

    odd = timezone(timedelta(hours=-3, minutes=-30))
    pushed = [
        Sample(
            f"shard-{n % 3}",
            ("gateway_latency", "error_rate", "guild_count")[n % 3],
            (T0 + timedelta(seconds=n // 5, microseconds=n * 7)).astimezone(
                odd if n % 4 == 0 else T0.tzinfo
            ),
            [0.0, -1.5, 1e300, 5e-324, 123456789.125][n % 5],
        )
        for n in range(5000)
    ]
    cycle = [Sample("vigil", "cpu_percent", T0 + timedelta(seconds=n), n / 3) for n in range(50)]
    read: list[list[tuple[datetime, str, str, float]]] = []
    for url in (migrated_sqlite_url, migrated_postgres_url):
        store = await Store.open(url)
        try:
            await store.write_samples(pushed)
            await store.commit_cycle(samples=cycle, result=CycleResult(), now=T0)
            chunks = await _walk(store, start=T0, end=T0 + timedelta(hours=1), chunk=100_000)
            read.append([row for chunk in chunks for row in chunk])
        finally:
            await store.close()
    sqlite_rows, postgres_rows = read
    assert len(sqlite_rows) == 5050
    assert postgres_rows == sqlite_rows
