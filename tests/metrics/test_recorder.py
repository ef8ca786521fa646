"""The hot-path recorder: ring buffers, windows, timers, counters, bounded memory."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.metrics import BYTES_PER_SAMPLE, DEFAULT_CAPACITY, Recorder
from vigil.metrics.windows import summarize

from .support import FakeClock

PROPERTY = settings(deadline=None, max_examples=300)

steps = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.0, 0.25, 1.0, 3.0, 10.0]),  # seconds since the previous sample
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    ),
    max_size=120,
)


@pytest.mark.untraced  # test_samples_are_every_stored_reading_oldest_first reaches samples()
@PROPERTY
@given(
    steps=steps,
    capacity=st.integers(1, 40),
    seconds=st.sampled_from([0.5, 1.0, 5.0, 30.0, 1000.0]),
    idle=st.sampled_from([0.0, 0.5, 2.0, 31.0]),
)
def test_a_window_holds_exactly_the_recent_samples_the_ring_still_has(
    steps: list[tuple[float, float]], capacity: int, seconds: float, idle: float
) -> None:
    clock = FakeClock()
    recorder = Recorder(capacity=capacity, clock=clock)
    history: list[tuple[float, float]] = []
    for dt, value in steps:
        clock.advance(dt)
        recorder.record("m", value)
        history.append((clock.now, value))
    clock.advance(idle)

    cutoff = clock.now - seconds
    kept = history[-capacity:]
    evicted = history[: max(len(history) - capacity, 0)]
    expected_values = [v for t, v in kept if t > cutoff]
    lost = [t for t, _ in evicted if t > cutoff]
    expected_covered = clock.now - evicted[-1][0] if lost else seconds

    stats = recorder.window("m", seconds)
    assert recorder.values("m", seconds) == expected_values
    assert stats == summarize(expected_values, seconds=seconds, covered=expected_covered)
    assert stats.truncated == bool(lost)
    assert recorder.total("m") == len(history)
    assert [v for _, v in recorder.samples("m")] == [v for _, v in kept]


def test_old_samples_fall_out_of_the_window() -> None:
    clock = FakeClock()
    recorder = Recorder(clock=clock)
    recorder.record("latency", 900.0)
    clock.advance(20)
    for value in (10.0, 20.0, 30.0):
        recorder.record("latency", value)
    clock.advance(15)

    stats = recorder.window("latency", 30)
    assert (stats.count, stats.min, stats.max, stats.mean) == (3, 10.0, 30.0, 20.0)
    assert stats.rate == pytest.approx(0.1)
    assert recorder.window("latency", 60).max == 900.0
    clock.advance(16)
    assert recorder.window("latency", 30).count == 0
    assert recorder.window("latency", 30).p95 is None


def test_an_unknown_metric_reads_as_an_empty_window() -> None:
    stats = Recorder().window("never.recorded", 30)
    assert stats.count == 0 and stats.mean is None
    assert Recorder().values("never.recorded", 30) == []


def test_samples_are_every_stored_reading_oldest_first() -> None:
    """``samples`` is the whole ring as (time, value), oldest first: what it still holds once
    it is full, and nothing for a metric never recorded."""
    clock = FakeClock()
    recorder = Recorder(capacity=3, clock=clock)
    assert recorder.samples("m") == []
    for value in (1.0, 2.0):
        clock.advance(1)
        recorder.record("m", value)
    assert recorder.samples("m") == [(1001.0, 1.0), (1002.0, 2.0)]
    for value in (3.0, 4.0):
        clock.advance(1)
        recorder.record("m", value)
    assert recorder.samples("m") == [(1002.0, 2.0), (1003.0, 3.0), (1004.0, 4.0)]


def test_a_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Recorder().window("m", 0)


def test_counters_count_events_and_sum_amounts() -> None:
    clock = FakeClock()
    recorder = Recorder(clock=clock)
    recorder.increment("http_429")
    recorder.increment("http_429")
    recorder.increment("bytes_sent", 1500)
    recorder.increment("bytes_sent", 500)
    clock.advance(10)
    hits = recorder.window("http_429", 20)
    assert (hits.count, hits.total, hits.rate) == (2, 2.0, 0.1)
    assert recorder.window("bytes_sent", 20).total == 2000.0


def test_nan_and_infinities_are_refused_and_counted() -> None:
    recorder = Recorder()
    recorder.record("m", 1.0)
    for bad in (math.nan, math.inf, -math.inf):
        recorder.record("m", bad)
    assert recorder.values("m", 60) == [1.0]
    assert recorder.rejected("m") == 3
    with pytest.raises(TypeError):
        recorder.record("m", "12")  # type: ignore[arg-type]


def test_timer_as_a_context_manager_records_milliseconds() -> None:
    clock = FakeClock()
    recorder = Recorder(clock=clock)
    with recorder.timer("render"):
        clock.advance(0.25)
    with pytest.raises(KeyError), recorder.timer("render"):
        clock.advance(0.5)
        raise KeyError("failed work still took time")
    assert recorder.values("render", 60) == [250.0, 500.0]


def test_one_timer_object_cannot_time_two_blocks_at_once() -> None:
    timer = Recorder().timer("m")
    with timer, pytest.raises(RuntimeError, match="already running"), timer:
        pass


def test_timer_decorates_sync_functions() -> None:
    clock = FakeClock()
    recorder = Recorder(clock=clock)

    @recorder.timer("parse")
    def parse(text: str) -> int:
        """Parse it."""
        clock.advance(0.002)
        if not text:
            raise ValueError("empty")
        return len(text)

    assert parse("abc") == 3
    with pytest.raises(ValueError, match="empty"):
        parse("")
    assert recorder.values("parse", 60) == pytest.approx([2.0, 2.0])
    assert parse.__name__ == "parse" and parse.__doc__ == "Parse it."


async def test_timer_decorates_async_functions_across_awaits() -> None:
    clock = FakeClock()
    recorder = Recorder(clock=clock)
    release = asyncio.Event()

    @recorder.timer("fetch")
    async def fetch(n: int) -> int:
        await release.wait()
        return n * 2

    first = asyncio.ensure_future(fetch(1))
    second = asyncio.ensure_future(fetch(2))
    await asyncio.sleep(0)
    clock.advance(0.1)
    release.set()
    assert list(await asyncio.gather(first, second)) == [2, 4]
    assert recorder.values("fetch", 60) == pytest.approx([100.0, 100.0])


async def test_timer_blocks_interleave_across_tasks() -> None:
    clock = FakeClock()
    recorder = Recorder(clock=clock)
    gates = [asyncio.Event(), asyncio.Event()]

    async def work(gate: asyncio.Event) -> None:
        with recorder.timer("work"):
            await gate.wait()

    tasks = [asyncio.ensure_future(work(gate)) for gate in gates]
    await asyncio.sleep(0)
    clock.advance(1)
    gates[1].set()
    await tasks[1]
    clock.advance(2)
    gates[0].set()
    await tasks[0]
    assert recorder.values("work", 60) == [1000.0, 3000.0]


def test_configure_gives_one_metric_its_own_capacity_and_keeps_recent_samples() -> None:
    clock = FakeClock()
    recorder = Recorder(capacity=8, clock=clock)
    for value in range(6):
        clock.advance(1)
        recorder.record("m", float(value))
    recorder.configure("m", capacity=3)
    assert recorder.capacity("m") == 3
    assert recorder.values("m", 100) == [3.0, 4.0, 5.0]
    assert recorder.window("m", 100).truncated  # sample 2 was dropped inside the window
    assert not recorder.window("m", 2.5).truncated
    recorder.configure("m", capacity=10)
    recorder.record("m", 6.0)
    assert recorder.values("m", 100) == [3.0, 4.0, 5.0, 6.0]
    assert recorder.total("m") == 7
    recorder.configure("fresh", capacity=5)
    assert recorder.capacity("fresh") == 5
    with pytest.raises(ValueError, match="capacity"):
        recorder.configure("m", capacity=0)


def test_memory_is_fixed_per_metric_and_as_stated() -> None:
    recorder = Recorder(capacity=1000)
    recorder.record("a", 1.0)
    recorder.configure("b", capacity=50)
    assert BYTES_PER_SAMPLE == 16
    assert recorder.memory_bytes() == 16 * 1000 + 16 * 50
    for i in range(5000):
        recorder.record("a", float(i))
    assert recorder.memory_bytes() == 16 * 1000 + 16 * 50
    assert Recorder().capacity("x") == DEFAULT_CAPACITY


def test_a_stored_sample_costs_16_bytes() -> None:
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        recorder = Recorder(capacity=50_000)
        recorder.record("m", 1.0)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert 16.0 <= (after - before) / 50_000 < 16.1


def test_recording_allocates_nothing_once_a_metric_exists() -> None:
    recorder = Recorder(capacity=1000)
    recorder.record("m", 0.0)
    values = [float(i) + 0.5 for i in range(20_000)]  # floats made before measuring
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for value in values:
            recorder.record("m", value)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 20,000 calls that each kept as little as one float would hold 480 kB.
    assert after - before < 2048
    assert peak - before < 4096


def test_a_flood_of_metric_names_is_capped(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder(capacity=4, max_metrics=3)
    with caplog.at_level(logging.WARNING, logger="vigil.metrics.recorder"):
        for i in range(10):
            recorder.record(f"user_{i}", 1.0)
    assert recorder.metrics == ["user_0", "user_1", "user_2"]
    assert recorder.values("user_7", 60) == []
    assert len(caplog.records) == 1
    assert "Metric names should not contain ids" in caplog.records[0].getMessage()


def test_threads_recording_at_once_never_break_the_ring() -> None:
    recorder = Recorder(capacity=512)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def hammer(value: float) -> None:
        try:
            start.wait()
            for _ in range(20_000):
                recorder.record("shared", value)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(float(n),)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = recorder.values("shared", 3600)
    assert len(stored) == 512
    assert set(stored) <= {0.0, 1.0, 2.0, 3.0}
    stats = recorder.window("shared", 3600)
    assert stats.count == 512
