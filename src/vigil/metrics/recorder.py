"""The hot path: record a sample in O(1) from anywhere, summarise a window when asked.

Each metric owns a fixed-size ring buffer: two preallocated ``array('d')`` of ``capacity``
slots, one for values and one for the times they were recorded. A sample therefore costs
16 bytes, and a metric ``16 * capacity`` bytes (64 KiB at the default 4,096 samples),
allocated once, on its first sample. Recording writes two slots and moves an index: no lock,
no allocation beyond the float the caller already has, nothing that can block, so it is safe
on the event loop thread and from plain threads. Reading a window copies the samples newer
than its start (found by binary search on the times) and sorts them, so it costs
O(n log n) in the samples of that window and happens once per metric per monitor cycle,
never on the hot path.

Several threads recording into one metric at the same instant may lose one of the two samples
(never corrupt the buffer): acceptable for monitoring, and the price of having no lock.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from array import array
from bisect import bisect_right
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

from vigil.metrics.windows import WindowStats, summarize

Clock = Callable[[], float]
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_CAPACITY = 4096
DEFAULT_MAX_METRICS = 1024
BYTES_PER_SAMPLE = 16  # one float64 value and one float64 time

_log = logging.getLogger(__name__)


class _Ring:
    """One metric's samples, oldest overwritten first. ``evicted`` is the time of the newest
    sample already overwritten, which tells a window whether it lost samples."""

    __slots__ = ("capacity", "evicted", "next", "rejected", "times", "total", "values")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.values = array("d", [0.0]) * capacity  # exact size; array("d", bytes) over-allocates
        self.times = array("d", [-float("inf")]) * capacity
        self.next = 0
        self.total = 0
        self.rejected = 0
        self.evicted = -float("inf")

    @property
    def wrapped(self) -> bool:
        # Unused slots hold the time -inf; the slot about to be overwritten is used once the
        # ring has gone round.
        return self.times[self.next] != -float("inf")

    def window(self, cutoff: float) -> array[float]:
        """Values recorded after ``cutoff``, oldest first."""
        times, end = self.times, self.next
        if self.wrapped:
            start = bisect_right(times, cutoff, end, self.capacity)
            if start < self.capacity:
                return self.values[start:] + self.values[:end]
        start = bisect_right(times, cutoff, 0, end)
        return self.values[start:end]

    def ordered(self) -> tuple[array[float], array[float]]:
        """Every stored (values, times), oldest first."""
        if self.wrapped:
            cut = self.next
            return (self.values[cut:] + self.values[:cut], self.times[cut:] + self.times[:cut])
        return self.values[: self.next], self.times[: self.next]


class Recorder:
    """Samples of named metrics in fixed-size ring buffers, and windows over them.

    ``clock`` (default ``time.monotonic``) stamps every sample and measures every timer;
    inject a fake one in tests. It must never go backwards.

    Memory: ``16 * capacity`` bytes per metric (64 KiB by default) plus about 200 bytes of
    bookkeeping, for at most ``max_metrics`` metrics; samples for further metric names are
    dropped (and logged once) so that a name built from user input cannot exhaust memory.
    """

    def __init__(
        self,
        *,
        capacity: int = DEFAULT_CAPACITY,
        clock: Clock = time.monotonic,
        max_metrics: int = DEFAULT_MAX_METRICS,
    ) -> None:
        _check_capacity(capacity)
        self._capacity = capacity
        self._clock = clock
        self._max_metrics = max_metrics
        self._rings: dict[str, _Ring] = {}
        self._warned_full = False

    @property
    def clock(self) -> Clock:
        return self._clock

    def record(self, metric: str, value: float) -> None:
        """Store one sample of ``metric`` stamped now. NaN and infinities are counted in
        ``rejected(metric)`` and not stored: one of them would poison every statistic."""
        try:
            ring = self._rings[metric]
        except KeyError:
            found = self._create(metric, self._capacity)
            if found is None:
                return
            ring = found
        if value - value != 0.0:  # NaN or infinite; a non-number raises TypeError here
            ring.rejected += 1
            return
        i = ring.next
        times = ring.times
        ring.evicted = times[i]
        ring.values[i] = value
        times[i] = self._clock()
        i += 1
        ring.next = 0 if i == ring.capacity else i
        ring.total += 1

    def increment(self, metric: str, amount: float = 1.0) -> None:
        """Count an event: a sample of ``amount``. ``window(...).count`` counts the events,
        ``.total`` sums the amounts, ``.rate`` gives events per second."""
        self.record(metric, amount)

    def timer(self, metric: str) -> Timer:
        """Time a block (``with recorder.timer("x"):``) or every call of a function, sync or
        async (``@recorder.timer("x")``), recording the duration in milliseconds, also when it
        raises."""
        return Timer(self, metric)

    def window(self, metric: str, seconds: float) -> WindowStats:
        """Statistics of the samples recorded in the last ``seconds`` (an unknown metric reads
        as an empty window)."""
        values, covered = self._window(metric, seconds)
        return summarize(values, seconds=seconds, covered=covered)

    def values(self, metric: str, seconds: float) -> list[float]:
        """The values recorded in the last ``seconds``, oldest first."""
        return self._window(metric, seconds)[0].tolist()

    def samples(self, metric: str) -> list[tuple[float, float]]:
        """Every stored ``(time, value)`` of ``metric``, oldest first."""
        ring = self._rings.get(metric)
        if ring is None:
            return []
        values, times = ring.ordered()
        return list(zip(times, values, strict=True))

    def total(self, metric: str) -> int:
        """How many samples ``metric`` has received since it was created (never wraps)."""
        ring = self._rings.get(metric)
        return 0 if ring is None else ring.total

    def rejected(self, metric: str) -> int:
        """How many NaN or infinite values ``metric`` refused."""
        ring = self._rings.get(metric)
        return 0 if ring is None else ring.rejected

    def configure(self, metric: str, *, capacity: int) -> None:
        """Give ``metric`` its own capacity, keeping its most recent samples that fit."""
        _check_capacity(capacity)
        old = self._rings.get(metric)
        if old is None:
            self._create(metric, capacity)
            return
        if old.capacity == capacity:
            return
        ring = _Ring(capacity)
        values, times = old.ordered()
        keep = min(len(values), capacity)
        ring.values[:keep] = values[len(values) - keep :]
        ring.times[:keep] = times[len(times) - keep :]
        ring.evicted = times[len(times) - keep - 1] if keep < len(times) else old.evicted
        ring.next = keep % capacity
        ring.total = old.total
        ring.rejected = old.rejected
        self._rings[metric] = ring

    def capacity(self, metric: str) -> int:
        ring = self._rings.get(metric)
        return self._capacity if ring is None else ring.capacity

    @property
    def metrics(self) -> list[str]:
        """Names of the metrics that have a buffer, in creation order."""
        return list(self._rings)

    def memory_bytes(self) -> int:
        """Bytes held by the sample buffers (the arrays' payload)."""
        return sum(BYTES_PER_SAMPLE * ring.capacity for ring in self._rings.values())

    def _window(self, metric: str, seconds: float) -> tuple[array[float], float]:
        if not seconds > 0:
            raise ValueError(f"a window must be a positive number of seconds, got {seconds!r}")
        ring = self._rings.get(metric)
        now = self._clock()
        if ring is None:
            return array("d"), seconds
        cutoff = now - seconds
        covered = seconds if ring.evicted <= cutoff else max(now - ring.evicted, 0.0)
        return ring.window(cutoff), covered

    def _create(self, metric: str, capacity: int) -> _Ring | None:
        if len(self._rings) >= self._max_metrics:
            if not self._warned_full:
                self._warned_full = True
                _log.warning(
                    "Recorder holds %d metrics, its maximum: samples of %r and any further new "
                    "metric are dropped. Metric names should not contain ids or user input.",
                    self._max_metrics,
                    metric,
                )
            return None
        # setdefault: two threads creating one metric at once must end up sharing one ring.
        return self._rings.setdefault(metric, _Ring(capacity))


class Timer:
    """One ``with`` block's timing (the object holds its start, so use one per block), or a
    decorator that times each call with no per-call object."""

    __slots__ = ("_metric", "_recorder", "_start")

    def __init__(self, recorder: Recorder, metric: str) -> None:
        self._recorder = recorder
        self._metric = metric
        self._start: float | None = None

    def __enter__(self) -> Timer:
        if self._start is not None:
            raise RuntimeError(f"timer {self._metric!r} is already running: use one per block")
        self._start = self._recorder.clock()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        start = self._start
        if start is None:
            raise RuntimeError(f"timer {self._metric!r} exited without entering")
        self._start = None
        recorder = self._recorder
        recorder.record(self._metric, (recorder.clock() - start) * 1000.0)

    def __call__(self, fn: F) -> F:
        recorder, metric = self._recorder, self._metric
        clock = recorder.clock
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                start = clock()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    recorder.record(metric, (clock() - start) * 1000.0)

            return cast(F, timed_async)

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                recorder.record(metric, (clock() - start) * 1000.0)

        return cast(F, timed)


def _check_capacity(capacity: int) -> None:
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
