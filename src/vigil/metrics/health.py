"""Background task health: tasks beat a heartbeat and report errors; silence means stale.

The registry is also the source of ``service_failure``: the number of registered tasks that
are in error or whose last heartbeat is older than their ``stale_after``.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar, cast

from vigil.metrics.recorder import Clock
from vigil.metrics.source import Reading

DEFAULT_STALE_AFTER = 300.0
MAX_ERROR_LENGTH = 500

F = TypeVar("F", bound=Callable[..., Any])


class TaskStatus(StrEnum):
    STARTING = "starting"  # registered, no heartbeat yet, not yet stale
    HEALTHY = "healthy"
    ERROR = "error"  # the last thing it reported was an error
    STALE = "stale"  # no heartbeat for longer than stale_after

    @property
    def failing(self) -> bool:
        return self in (TaskStatus.ERROR, TaskStatus.STALE)


@dataclass(frozen=True, slots=True)
class TaskHealth:
    """One task as the registry sees it now. ``age`` counts seconds since the last heartbeat,
    or since registration for a task that never beat."""

    name: str
    status: TaskStatus
    registered_at: datetime
    last_heartbeat: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    age: float
    stale_after: float


class _Entry:
    __slots__ = (
        "error_at",
        "failed",
        "last_beat",
        "last_beat_at",
        "last_error",
        "registered",
        "registered_at",
        "stale_after",
    )

    def __init__(self, stale_after: float, mono: float, wall: datetime) -> None:
        self.stale_after = stale_after
        self.registered = mono
        self.registered_at = wall
        self.last_beat: float | None = None
        self.last_beat_at: datetime | None = None
        self.last_error: str | None = None
        self.error_at: datetime | None = None
        self.failed = False


def _utcnow() -> datetime:
    return datetime.now(UTC)


class HealthRegistry:
    """Named background tasks and how they are doing.

    ``clock`` (monotonic) measures ages; ``now`` (UTC wall clock) stamps what people read.
    A heartbeat or error from a task that never registered registers it.
    """

    name = "health"

    def __init__(
        self,
        *,
        stale_after: float = DEFAULT_STALE_AFTER,
        clock: Clock = time.monotonic,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        _check_stale_after(stale_after)
        self.stale_after = stale_after
        self._clock = clock
        self._now = now
        self._tasks: dict[str, _Entry] = {}

    def register(self, name: str, *, stale_after: float | None = None) -> None:
        """Start watching ``name``; registering again starts it afresh (a restarted task)."""
        if not name:
            raise ValueError("a task needs a name")
        limit = self.stale_after if stale_after is None else stale_after
        _check_stale_after(limit)
        self._tasks[name] = _Entry(limit, self._clock(), self._now())

    def unregister(self, name: str) -> None:
        """Stop watching ``name`` (a task that ended on purpose). Unknown names are ignored."""
        self._tasks.pop(name, None)

    def beat(self, name: str) -> None:
        """``name`` is alive and its last round succeeded: it is healthy again."""
        entry = self._entry(name)
        entry.last_beat = self._clock()
        entry.last_beat_at = self._now()
        entry.failed = False

    def report_error(self, name: str, error: BaseException | str) -> None:
        """``name`` failed; it stays in error until its next heartbeat."""
        entry = self._entry(name)
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        entry.last_error = text[:MAX_ERROR_LENGTH]
        entry.error_at = self._now()
        entry.failed = True

    def snapshot(self) -> list[TaskHealth]:
        """Every registered task, by name."""
        now = self._clock()
        return [self._health(name, entry, now) for name, entry in sorted(self._tasks.items())]

    def get(self, name: str) -> TaskHealth | None:
        entry = self._tasks.get(name)
        return None if entry is None else self._health(name, entry, self._clock())

    def failing(self) -> list[TaskHealth]:
        return [task for task in self.snapshot() if task.status.failing]

    async def read(self) -> Reading:
        return {"service_failure": float(len(self.failing()))}

    def track(
        self, name: str | None = None, *, stale_after: float | None = None
    ) -> Callable[[F], F]:
        """Decorate an async function that runs once per round of a background task (the body
        of a ``discord.ext.tasks`` loop, say): registers it now, beats after each successful
        call, reports each exception (then re-raises it). Cancellation is not an error."""

        def decorate(fn: F) -> F:
            if not inspect.iscoroutinefunction(fn):
                raise TypeError(f"track() needs an async function, got {fn!r}")
            task = name or fn.__qualname__
            self.register(task, stale_after=stale_after)

            @functools.wraps(fn)
            async def tracked(*args: Any, **kwargs: Any) -> Any:
                try:
                    result = await fn(*args, **kwargs)
                except Exception as exc:
                    self.report_error(task, exc)
                    raise
                self.beat(task)
                return result

            return cast(F, tracked)

        return decorate

    def _entry(self, name: str) -> _Entry:
        entry = self._tasks.get(name)
        if entry is None:
            self.register(name)
            entry = self._tasks[name]
        return entry

    @staticmethod
    def _health(name: str, entry: _Entry, now: float) -> TaskHealth:
        since = entry.registered if entry.last_beat is None else entry.last_beat
        age = max(now - since, 0.0)
        if entry.failed:
            status = TaskStatus.ERROR
        elif age > entry.stale_after:
            status = TaskStatus.STALE
        elif entry.last_beat is None:
            status = TaskStatus.STARTING
        else:
            status = TaskStatus.HEALTHY
        return TaskHealth(
            name=name,
            status=status,
            registered_at=entry.registered_at,
            last_heartbeat=entry.last_beat_at,
            last_error=entry.last_error,
            last_error_at=entry.error_at,
            age=age,
            stale_after=entry.stale_after,
        )


def _check_stale_after(seconds: float) -> None:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise ValueError(f"stale_after must be a positive number of seconds, got {seconds!r}")
