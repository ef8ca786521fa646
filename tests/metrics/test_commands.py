"""Command latency p95 and error rate over a window."""

from __future__ import annotations

import pytest

from vigil.metrics import CommandStats, Recorder

from .support import FakeClock


async def test_no_commands_is_no_data() -> None:
    stats = CommandStats(Recorder(clock=FakeClock()))
    assert await stats.read() == {"command_p95_latency": None, "error_rate": None}


async def test_p95_and_error_rate_of_the_window() -> None:
    clock = FakeClock()
    stats = CommandStats(Recorder(clock=clock), window=30)
    for ms in range(1, 101):
        stats.finished(float(ms), failed=ms % 25 == 0)  # 4 of 100 failed
    assert await stats.read() == {
        "command_p95_latency": pytest.approx(95.05),
        "error_rate": pytest.approx(4.0),
    }
    clock.advance(31)
    stats.finished(10.0, failed=False)
    assert await stats.read() == {"command_p95_latency": 10.0, "error_rate": 0.0}


async def test_a_failure_whose_start_was_not_seen_still_counts() -> None:
    stats = CommandStats(Recorder(clock=FakeClock()))
    stats.finished(None, failed=True)
    stats.finished(120.0, failed=False)
    assert await stats.read() == {"command_p95_latency": 120.0, "error_rate": 50.0}


async def test_an_overflowing_window_keeps_a_consistent_error_rate() -> None:
    recorder = Recorder(capacity=10, clock=FakeClock())
    stats = CommandStats(recorder)
    for _ in range(50):
        stats.finished(5.0, failed=False)
    for _ in range(5):
        stats.finished(None, failed=True)  # no timing: only the outcome series moves
    reading = await stats.read()
    assert reading["error_rate"] == 50.0  # the last 10 outcomes, not 5 failures / 10 timings
