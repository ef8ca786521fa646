"""The event loop lag probe: measures late wake-ups, starts and stops cleanly."""

from __future__ import annotations

import asyncio
import time

import pytest

from vigil.metrics import LoopLagProbe, Recorder

from .support import FakeClock, wait_until

METRIC = "event_loop_lag"


def block_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # the fault under test: synchronous work on the event loop


async def test_lag_is_how_much_later_than_asked_the_probe_woke() -> None:
    clock = FakeClock()
    recorder = Recorder(clock=clock)
    probe = LoopLagProbe(recorder, interval=0.001, window=30)
    async with probe:
        await wait_until(lambda: recorder.total(METRIC) >= 1)
        seen = recorder.total(METRIC)
        clock.advance(0.301)  # the probe is asleep while this test runs
        await wait_until(lambda: recorder.total(METRIC) > seen)
    assert max(recorder.values(METRIC, 30)) == pytest.approx(300.0)
    assert min(recorder.values(METRIC, 30)) == 0.0  # on-time wake-ups, never negative
    assert await probe.read() == {METRIC: pytest.approx(300.0)}
    clock.advance(31)
    assert await probe.read() == {METRIC: None}


async def test_a_blocked_loop_shows_up_as_lag() -> None:
    recorder = Recorder()
    async with LoopLagProbe(recorder, interval=0.01) as probe:
        await wait_until(lambda: recorder.total(METRIC) >= 1)
        seen = recorder.total(METRIC)
        block_the_loop(0.2)
        await wait_until(lambda: recorder.total(METRIC) > seen)
        reading = await probe.read()
    lag = reading[METRIC]
    assert lag is not None and lag >= 150.0


async def test_stopping_cancels_and_awaits_the_probe_task() -> None:
    probe = LoopLagProbe(interval=0.01)
    assert await probe.read() == {METRIC: None}
    probe.start()
    assert probe.running
    with pytest.raises(RuntimeError, match="already running"):
        probe.start()
    await wait_until(lambda: probe.recorder.total(METRIC) >= 1)
    await probe.stop()
    assert not probe.running
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "vigil-loop-lag"]
    await probe.stop()  # stopping twice is harmless
    probe.start()  # and it can start again
    await probe.stop()


def test_the_probe_needs_a_running_loop_and_a_positive_interval() -> None:
    with pytest.raises(RuntimeError):
        LoopLagProbe().start()
    with pytest.raises(ValueError, match="interval"):
        LoopLagProbe(interval=0)
