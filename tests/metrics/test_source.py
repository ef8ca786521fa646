"""Gathering a cycle's readings from many sources, and windows as metrics of their own."""

from __future__ import annotations

import asyncio
import logging

import pytest

from vigil.metrics import MetricSource, Reading, Recorder, WindowSource, collect

from .support import FakeClock


class Fixed:
    def __init__(self, name: str, reading: dict[str, object]) -> None:
        self.name = name
        self.reading = reading

    async def read(self) -> Reading:
        return self.reading  # type: ignore[return-value]


class Broken:
    name = "broken"

    async def read(self) -> Reading:
        raise ConnectionError("redis is down")


class Hanging:
    name = "hanging"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    async def read(self) -> Reading:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        raise AssertionError("unreachable")


class QueueDepth:
    """The documented example of a custom metric, as a user would write it."""

    name = "queue"

    def __init__(self, queue: asyncio.Queue[object]) -> None:
        self.queue = queue

    async def read(self) -> Reading:
        return {"queue_depth": float(self.queue.qsize())}


async def test_a_custom_source_is_a_few_lines() -> None:
    queue: asyncio.Queue[object] = asyncio.Queue()
    for item in range(3):
        queue.put_nowait(item)
    source = QueueDepth(queue)
    assert isinstance(source, MetricSource)
    assert await collect([source]) == {"queue_depth": 3.0}


async def test_readings_from_every_source_are_merged() -> None:
    readings = await collect(
        [Fixed("a", {"memory_usage": 120.5, "cpu_usage": None}), Fixed("b", {"error_rate": 2})]
    )
    assert readings == {"memory_usage": 120.5, "cpu_usage": None, "error_rate": 2.0}
    assert type(readings["error_rate"]) is float


async def test_a_failing_source_costs_only_its_own_metrics(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="vigil.metrics.source"):
        readings = await collect([Broken(), Fixed("ok", {"memory_usage": 1.0})])
    assert readings == {"memory_usage": 1.0}
    assert "'broken' failed" in caplog.text
    assert "redis is down" in caplog.text


async def test_a_hanging_source_is_cut_off_and_cancelled(caplog: pytest.LogCaptureFixture) -> None:
    hanging = Hanging()
    with caplog.at_level(logging.WARNING, logger="vigil.metrics.source"):
        readings = await collect([hanging, Fixed("ok", {"memory_usage": 1.0})], source_timeout=0.05)
    assert readings == {"memory_usage": 1.0}
    assert hanging.cancelled
    assert "'hanging' failed" in caplog.text


async def test_cancelling_a_cycle_is_not_swallowed() -> None:
    hanging = Hanging()
    cycle = asyncio.ensure_future(collect([hanging]))
    await hanging.started.wait()
    cycle.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cycle
    assert hanging.cancelled


async def test_a_cycle_cancelled_before_any_read_started_leaves_nothing_behind() -> None:
    hanging = Hanging()
    cycle = asyncio.ensure_future(collect([hanging, Fixed("ok", {"m": 1.0})]))
    await asyncio.sleep(0)  # collect has created its read tasks; none has run yet
    cycle.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cycle
    assert not hanging.started.is_set()


async def test_bad_names_and_values_are_dropped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = Fixed(
        "sloppy",
        {
            "Bad Name": 1.0,
            "nan_value": float("nan"),
            "inf_value": float("inf"),
            "flag": True,
            "text": "12",
            "fine": 3,
        },
    )
    with caplog.at_level(logging.WARNING, logger="vigil.metrics.source"):
        assert await collect([source]) == {"fine": 3.0}
    assert len(caplog.records) == 5


async def test_a_metric_from_two_sources_keeps_the_first(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="vigil.metrics.source"):
        readings = await collect([Fixed("a", {"m": 1.0}), Fixed("b", {"m": 2.0})])
    assert readings == {"m": 1.0}
    assert "comes from both 'a' and 'b'" in caplog.text


async def test_a_window_source_publishes_a_statistic_of_a_recorded_metric() -> None:
    clock = FakeClock()
    recorder = Recorder(clock=clock)
    p95 = WindowSource(recorder, "payment_ms", "p95", window=30)
    count = WindowSource(recorder, "payment_ms", "count", publish_as="payments", window=30)
    rate = WindowSource(recorder, "payment_ms", "rate", window=30)
    assert await p95.read() == {"payment_ms_p95": None}  # nothing recorded: no data
    assert await count.read() == {"payments": 0.0}  # but nothing happened is a count of 0
    for value in range(1, 101):
        recorder.record("payment_ms", float(value))
    assert await p95.read() == {"payment_ms_p95": pytest.approx(95.05)}
    assert await count.read() == {"payments": 100.0}
    assert await rate.read() == {"payment_ms_rate": pytest.approx(100 / 30)}
    clock.advance(31)
    assert await p95.read() == {"payment_ms_p95": None}
    assert p95.name == "window:payment_ms_p95"
