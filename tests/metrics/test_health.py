"""The background health registry: heartbeats, errors, staleness, service_failure."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from vigil.metrics import HealthRegistry, TaskStatus

from .support import FakeClock

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


class WallClock:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.origin = clock.now

    def __call__(self) -> datetime:
        return T0 + timedelta(seconds=self.clock.now - self.origin)


def registry(stale_after: float = 300.0) -> tuple[HealthRegistry, FakeClock]:
    clock = FakeClock()
    return HealthRegistry(stale_after=stale_after, clock=clock, now=WallClock(clock)), clock


async def test_a_task_lives_by_its_heartbeat() -> None:
    health, clock = registry()
    health.register("sync")
    assert health.get("sync").status is TaskStatus.STARTING  # type: ignore[union-attr]
    clock.advance(10)
    health.beat("sync")
    clock.advance(299)
    task = health.get("sync")
    assert task is not None
    assert task.status is TaskStatus.HEALTHY
    assert task.age == 299
    assert task.last_heartbeat == T0 + timedelta(seconds=10)
    assert await health.read() == {"service_failure": 0.0}
    clock.advance(2)
    assert health.get("sync").status is TaskStatus.STALE  # type: ignore[union-attr]
    assert await health.read() == {"service_failure": 1.0}


async def test_a_task_that_never_beats_goes_stale_after_registration() -> None:
    health, clock = registry(stale_after=60)
    health.register("cleanup")
    clock.advance(61)
    task = health.get("cleanup")
    assert task is not None and task.status is TaskStatus.STALE
    assert task.last_heartbeat is None
    assert task.registered_at == T0


async def test_an_error_holds_until_the_next_heartbeat_which_keeps_the_message() -> None:
    health, clock = registry()
    health.beat("mailer")  # an unregistered name registers itself
    clock.advance(5)
    health.report_error("mailer", ConnectionRefusedError("smtp refused"))
    task = health.get("mailer")
    assert task is not None
    assert task.status is TaskStatus.ERROR
    assert task.last_error == "ConnectionRefusedError: smtp refused"
    assert task.last_error_at == T0 + timedelta(seconds=5)
    assert await health.read() == {"service_failure": 1.0}
    health.beat("mailer")
    task = health.get("mailer")
    assert task is not None
    assert task.status is TaskStatus.HEALTHY
    assert task.last_error == "ConnectionRefusedError: smtp refused"


async def test_service_failure_counts_tasks_in_error_or_stale() -> None:
    health, clock = registry(stale_after=100)
    health.register("fast", stale_after=10)
    health.register("slow", stale_after=1000)
    health.register("broken")
    health.report_error("broken", "disk full")
    health.beat("fast")
    health.beat("slow")
    clock.advance(50)
    assert [(t.name, t.status) for t in health.snapshot()] == [
        ("broken", TaskStatus.ERROR),
        ("fast", TaskStatus.STALE),
        ("slow", TaskStatus.HEALTHY),
    ]
    assert await health.read() == {"service_failure": 2.0}
    health.unregister("broken")
    health.unregister("never-registered")
    assert await health.read() == {"service_failure": 1.0}


def test_registering_again_starts_afresh_and_long_errors_are_cut() -> None:
    health, _ = registry()
    health.report_error("job", "x" * 2000)
    assert len(health.get("job").last_error or "") == 500  # type: ignore[union-attr]
    health.register("job")
    assert health.get("job").status is TaskStatus.STARTING  # type: ignore[union-attr]
    assert health.get("nope") is None


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="stale_after"):
        HealthRegistry(stale_after=0)
    with pytest.raises(ValueError, match="stale_after"):
        HealthRegistry().register("t", stale_after=-1)
    with pytest.raises(ValueError, match="name"):
        HealthRegistry().register("")
    assert HealthRegistry().stale_after == 300.0


async def test_track_beats_after_each_success_and_reports_each_failure() -> None:
    health, clock = registry()
    outcomes = iter([None, RuntimeError("upstream 502"), None])

    @health.track("poller", stale_after=90)
    async def poll() -> str:
        """One round."""
        failure = next(outcomes)
        if failure is not None:
            raise failure
        return "ok"

    assert health.get("poller").status is TaskStatus.STARTING  # type: ignore[union-attr]
    assert health.get("poller").stale_after == 90  # type: ignore[union-attr]
    assert await poll() == "ok"
    assert health.get("poller").status is TaskStatus.HEALTHY  # type: ignore[union-attr]
    clock.advance(30)
    with pytest.raises(RuntimeError, match="upstream 502"):
        await poll()
    assert health.get("poller").status is TaskStatus.ERROR  # type: ignore[union-attr]
    assert await poll() == "ok"
    assert health.get("poller").status is TaskStatus.HEALTHY  # type: ignore[union-attr]
    assert poll.__doc__ == "One round."


async def test_track_does_not_count_cancellation_as_an_error() -> None:
    health, _ = registry()
    started = asyncio.Event()

    @health.track()
    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.ensure_future(forever())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    name = forever.__qualname__
    assert health.get(name).status is TaskStatus.STARTING  # type: ignore[union-attr]


def test_track_needs_an_async_function() -> None:
    with pytest.raises(TypeError, match="async function"):
        HealthRegistry().track("x")(lambda: None)
