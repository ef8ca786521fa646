"""The preview (``vigil.preview``) equals the monitor: for random stored histories, replaying a
rule over the samples in the database gives exactly the incidents, with the same times and
values, that a real Vigil's monitor produced cycling over the same samples. Also the period
parser's table."""

from __future__ import annotations

import asyncio
import math
import random
import shutil
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.core import Evaluator, Event, Kind, Rule, Sample, ValidationError
from vigil.preview import SLICE_ROWS, Replayed, band_history, learn, parse_since, preview

from .runtime.support import T0, Clock, Script, make_vigil

INTERVAL = 3600  # the Vigil's: its loop never ticks on its own during a test
STEP = 30  # seconds between the test's cycles
NAME = "probe"
METRIC = "probe_latency"

value = st.sampled_from([10.0, 60.0, 120.0, 250.0])
reading = st.one_of(st.none(), value)  # None: that instance has no sample in the cycle
cycles = st.lists(st.tuples(reading, reading), min_size=1, max_size=40)


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    warning, critical = sorted(draw(st.lists(value, min_size=2, max_size=2, unique=True)))
    data: dict[str, Any] = {
        "name": NAME,
        "metric": METRIC,
        "warning": draw(st.sampled_from([warning, None])),
        "critical": critical,
        "breaches_required": draw(st.integers(1, 3)),
        "recoveries_required": draw(st.integers(1, 3)),
        "aggregate": draw(st.sampled_from(["max", "avg", "sum", "min"])),
        "split_by": draw(st.sampled_from(["none", "instance"])),
        "no_data": draw(st.sampled_from(["keep", "ok", "alerting"])),
        "stale_after": draw(st.sampled_from([None, 45, 100])),
    }
    # The learning kinds replay too: their memory is rebuilt from the same readings in the
    # same order, so the preview learns exactly what the monitor learned.
    kind = draw(st.sampled_from(["threshold", "threshold", "anomaly", "forecast"]))
    if kind == "forecast":
        data.update(kind=kind, horizon=draw(st.sampled_from([60, 900])), lookback=300)
        data["min_history"] = 60
    elif kind == "anomaly":
        data.update(kind=kind, sensitivity=0.5, min_history=30, warning=None, critical=None)
        data["breaches_required"] = 1  # a baseline takes 12 readings of the 40 at most
    return Rule.from_dict(data)


LIFECYCLE = ("incident.opened", "incident.escalated", "incident.resolved")


def monitor_events(
    events: list[Event], kinds: tuple[str, ...] = LIFECYCLE
) -> list[tuple[str, datetime, str | None]]:
    return [
        (e.kind.value, e.at, e.incident.instance)
        for e in events
        if e.incident is not None and e.incident.rule == NAME and e.kind.value in kinds
    ]


def preview_events(run: Replayed) -> list[tuple[str, datetime, str | None]]:
    found = []
    for o in run.report.outcomes:
        found.append(("incident.opened", datetime.fromisoformat(o.opened_at), o.instance))
        if o.escalated_at is not None:
            found.append(("incident.escalated", datetime.fromisoformat(o.escalated_at), o.instance))
        if o.resolved_at is not None:
            found.append(("incident.resolved", datetime.fromisoformat(o.resolved_at), o.instance))
    return sorted(found, key=order)


def order(item: tuple[str, datetime, str | None]) -> tuple[datetime, str, str]:
    return (item[1], item[0], item[2] or "")


async def run_both(
    url: str, rule: Rule, history: list[tuple[float | None, float | None]]
) -> list[tuple[str, datetime, str | None]]:
    """Cycle a real Vigil over ``history`` (the monitor's own instance ``test`` and a pushed
    ``pusher``), then preview the rule over what it stored; the two must agree."""
    script, clock = Script(), Clock(T0)
    events: list[Event] = []
    async with make_vigil(url, script, clock, interval=INTERVAL) as vigil:
        await vigil.add_rule(rule, by="test")
        for own, pushed in history:
            clock.advance(STEP)
            if own is None and pushed is None:
                continue  # no sample at all: the monitor was not running then
            if pushed is not None:
                await vigil.store.add_samples([Sample("pusher", METRIC, clock.now, pushed)])
            script.values = {METRIC: own} if own is not None else {}
            events += await vigil.monitor.cycle()
        await vigil.monitor.flush()  # the monitor's own samples of the batch still pending
        result = await preview(
            vigil.store,
            {NAME: rule},
            start=T0 + timedelta(seconds=1),
            end=clock.now + timedelta(seconds=1),
            interval=INTERVAL,
            own_instance="test",
            chunk=7,  # several chunks even for a short history
            flap=vigil.settings.flap,  # as the monitor: on by default
        )
    expected = monitor_events(events)
    ordered = sorted(expected, key=order)
    assert preview_events(result.proposed) == ordered
    # what a channel is sent: the lifecycle, and one message when a series starts flapping
    sent = monitor_events(events, (*LIFECYCLE, "incident.flapping"))
    assert result.proposed.notifications == len(sent)
    flaps = [e for e in events if e.kind.value == "incident.flapping" and e.rule == NAME]
    assert result.proposed.report.flaps.get(NAME, 0) == len(flaps)
    stored = sum((own is not None) + (pushed is not None) for own, pushed in history)
    assert result.samples == stored
    return ordered


@settings(
    deadline=None,
    max_examples=30,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rule=rules(), history=cycles)
def test_the_preview_of_a_rule_is_what_the_monitor_did(
    sqlite_template: Path, rule: Rule, history: list[tuple[float | None, float | None]]
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "vigil.db"
        shutil.copyfile(sqlite_template, path)
        asyncio.run(run_both(f"sqlite+aiosqlite:///{path}", rule, history))


ANOMALY = Rule(
    name=NAME,
    kind=Kind.ANOMALY,
    metric=METRIC,
    sensitivity=2,
    min_history=30,
)
FORECAST = Rule(
    name=NAME,
    kind=Kind.FORECAST,
    metric=METRIC,
    critical=400,
    horizon=900,
    lookback=300,
    min_history=120,
)
_STEADY: list[tuple[float | None, float | None]] = [(60.0, 120.0), (120.0, 60.0)] * 10
_JUMP: list[tuple[float | None, float | None]] = [(250.0, 250.0)] * 6
_RISE: list[tuple[float | None, float | None]] = [(10.0 * i, 10.0 * i + 5) for i in range(40)]


@pytest.mark.parametrize(
    ("rule", "history"),
    [
        (ANOMALY, [*_STEADY, *_JUMP, *_STEADY]),
        (ANOMALY.updated({"split_by": "instance"}), [*_STEADY, *_JUMP, *_STEADY]),
        (FORECAST, _RISE),
        (FORECAST.updated({"split_by": "instance"}), _RISE),
    ],
)
def test_the_preview_of_a_learning_rule_is_what_the_monitor_did(
    sqlite_template: Path, rule: Rule, history: list[tuple[float | None, float | None]]
) -> None:
    """The hypothesis test above draws these kinds too, but rarely long enough to learn."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "vigil.db"
        shutil.copyfile(sqlite_template, path)
        events = asyncio.run(run_both(f"sqlite+aiosqlite:///{path}", rule, history))
    assert [kind for kind, _, _ in events].count("incident.opened") >= 1


NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("24h", NOW - timedelta(hours=24)),
        (" 7d ", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(days=14)),
        ("2026-12-01T00:00:00Z", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T01:00:00+01:00", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
    ],
)
def test_a_period_or_a_start(text: str, start: datetime) -> None:
    assert parse_since(text, NOW) == start


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "neither a period"),
        ("7", "neither a period"),
        ("7y", "neither a period"),
        ("-7d", "neither a period"),
        ("0h", "empty period"),
        ("400d", "more than 366 days"),
        ("2026-12-03T00:00:00Z", "not in the past"),
        ("2020-01-01", "more than 366 days ago"),
        ("yesterday", "neither a period"),
    ],
)
def test_a_bad_period_names_the_field(text: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_since(text, NOW, field="--since")
    assert caught.value.field == "--since"
    assert fragment in str(caught.value)


class OneChunk:
    """A history handed over in one chunk without awaiting anything: whatever turns other
    tasks get come from the preview's own yields."""

    def __init__(self, rows: list[tuple[datetime, str, str, float]]) -> None:
        self.rows = rows

    async def sample_chunks(
        self, **_: object
    ) -> AsyncIterator[list[tuple[datetime, str, str, float]]]:
        yield self.rows


async def test_a_long_preview_lets_the_event_loop_run() -> None:
    rule = Rule.from_dict({"name": NAME, "metric": METRIC, "critical": 100})
    rows = [(T0 + timedelta(seconds=i), METRIC, "bot", float(i % 200)) for i in range(5000)]
    turns = 0
    done = asyncio.Event()

    async def other_work() -> None:
        nonlocal turns
        while not done.is_set():
            turns += 1
            await asyncio.sleep(0)

    worker = asyncio.create_task(other_work())
    await asyncio.sleep(0)  # the worker is waiting for its next turn
    before = turns
    result = await preview(
        OneChunk(rows), {NAME: rule}, start=T0, end=T0 + timedelta(days=1), interval=INTERVAL
    )
    during = turns - before
    done.set()
    await worker
    assert result.samples == len(rows)
    assert during >= len(rows) // SLICE_ROWS - 1  # it ran between the slices


# Three rules on three metrics, each breaching (one reading) during the cycles listed.
TOGETHER = {"a": range(1, 3), "b": range(1, 3), "c": range(1, 3)}
APART = {"a": range(1, 3), "b": range(4, 6), "c": range(7, 9)}  # each resolved first


@pytest.mark.parametrize(
    ("breaching", "window", "notifications", "grouped", "groups"),
    [
        # opened together: one message for the group's opening, one when the last resolves
        (TOGETHER, 60.0, 6, 2, 1),
        (TOGETHER, 0.0, 6, 6, 0),  # grouping off: a message per event
        (APART, 60.0, 6, 6, 0),  # each resolved before the next opened: no group
    ],
)
async def test_the_preview_counts_notifications_with_grouping_as_the_backtest(
    breaching: dict[str, range],
    window: float,
    notifications: int,
    grouped: int,
    groups: int,
) -> None:
    step = 30.0
    rules = {
        name: Rule.from_dict(
            {
                "name": name,
                "metric": f"{name}_latency",
                "critical": 100,
                "breaches_required": 1,
                "recoveries_required": 1,
            }
        )
        for name in breaching
    }
    rows = [
        (T0 + timedelta(seconds=step * n), f"{name}_latency", "bot", 150.0 if n in hot else 10.0)
        for n in range(12)
        for name, hot in breaching.items()
    ]
    result = await preview(
        OneChunk(rows),
        rules,
        saved=rules,
        start=T0,
        end=T0 + timedelta(hours=1),
        interval=step,
        group_window=window,
    )
    for run in (result.proposed, result.saved):
        assert run is not None
        assert len(run.report.outcomes) == 3
        assert (run.notifications, run.grouped_notifications) == (notifications, grouped)
        assert (run.group_window, run.groups) == (window, groups)


async def test_the_preview_refuses_a_bad_group_window() -> None:
    rule = Rule.from_dict({"name": NAME, "metric": METRIC, "critical": 100})
    with pytest.raises(ValidationError) as raised:
        await preview(
            OneChunk([]),
            {NAME: rule},
            start=T0,
            end=T0 + timedelta(hours=1),
            interval=INTERVAL,
            group_window=-1,
        )
    assert raised.value.field == "group_window"


# -- what the learning rules learn from the history ------------------------------------------


class Stored:
    """Samples as a store hands them: those of ``[start, end)`` and the metrics asked for,
    in time order, in chunks."""

    def __init__(self, rows: list[tuple[datetime, str, str, float]]) -> None:
        self.rows = sorted(rows, key=lambda row: row[0])
        self.asked: list[tuple[datetime, datetime]] = []

    async def sample_chunks(
        self,
        *,
        start: datetime,
        end: datetime,
        metrics: Any = None,
        chunk: int = 500,
        rollup: Any = None,
    ) -> AsyncIterator[list[tuple[datetime, str, str, float]]]:
        self.asked.append((start, end))
        rows = [
            row
            for row in self.rows
            if start <= row[0] < end and (metrics is None or row[1] in metrics)
        ]
        for first in range(0, len(rows), chunk):
            yield rows[first : first + chunk]


DAILY_STEP = timedelta(minutes=5)


def daily_rows(days: float, *, seed: int = 4) -> list[tuple[datetime, str, str, float]]:
    """A latency with a daily cycle, from one pushing instance, from T0."""
    rng = random.Random(seed)
    count = int(days * 288)
    return [
        (
            T0 + k * DAILY_STEP,
            METRIC,
            "bot",
            100.0 + 30.0 * math.sin(k / 288 * 2 * math.pi) + rng.gauss(0.0, 2.0),
        )
        for k in range(count)
    ]


def test_the_learning_window_is_all_that_is_read() -> None:
    rule = ANOMALY.updated({"min_history": 86_400})
    store = Stored(daily_rows(10))
    now = T0 + timedelta(days=10)
    asyncio.run(learn(store, {NAME: rule}, now=now, interval=300))
    assert store.asked == [(now - timedelta(days=7, hours=1), now)]


def test_learning_from_the_stored_history_is_learning_live() -> None:
    """What ``learn`` replays from the store is what an evaluator that cycled over the same
    readings learned: it judges the next readings exactly alike."""
    rule = ANOMALY.updated({"min_history": 86_400, "sensitivity": 3})
    rows = daily_rows(3)
    now = rows[-1][0] + DAILY_STEP
    memories = asyncio.run(learn(Stored(rows), {NAME: rule}, now=now, interval=300))
    restarted = Evaluator([rule], stale_after=600)
    assert restarted.adopt(memories) == 1

    live = Evaluator([rule], stale_after=600)
    for at, metric, instance, value in rows:
        live.evaluate_series({metric: {instance: (value, at)}}, now=at)
    for k, value in enumerate([100.0, 180.0, 180.0, 100.0, 20.0, 20.0]):
        at = now + k * DAILY_STEP
        readings = {METRIC: {"bot": (value, at)}}
        assert [e.kind for e in restarted.evaluate_series(readings, now=at).events] == [
            e.kind for e in live.evaluate_series(readings, now=at).events
        ]
        assert restarted.band(NAME, at=at) == live.band(NAME, at=at) is not None


def test_the_band_history_is_the_band_the_preview_judged_by() -> None:
    rule = ANOMALY.updated({"min_history": 3600, "sensitivity": 3})
    rows = daily_rows(2)
    store = Stored(rows)
    end = rows[-1][0] + DAILY_STEP
    previewed = asyncio.run(preview(store, {NAME: rule}, start=T0, end=end, interval=300))
    steps = previewed.proposed.bands[NAME]
    # Nothing to judge by on the first day (no hour of the day had its readings yet), then a
    # band an hour, worked out as the hour begins.
    assert steps[0] == (T0, None)
    assert [at for at, _ in steps[1:]] == [T0 + timedelta(days=1, hours=h) for h in range(24)]

    start = T0 + timedelta(days=1, minutes=2)  # mid-cycle: the step in force is carried over
    drawn = asyncio.run(band_history(store, rule, start=start, end=end, interval=300))
    in_force = [step for step in steps if step[0] <= start][-1]
    assert drawn == [(start, in_force[1]), *[step for step in steps if step[0] > start]]
    for at, edges in drawn:
        assert edges is not None and edges[0] < edges[1] < edges[2], at
    threshold = Rule.from_dict({"name": NAME, "metric": METRIC, "critical": 100})
    assert asyncio.run(band_history(store, threshold, start=start, end=end, interval=300)) == []
    split = rule.updated({"split_by": "instance"})
    assert asyncio.run(band_history(store, split, start=start, end=end, interval=300)) == []
