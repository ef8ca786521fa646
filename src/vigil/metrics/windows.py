"""Window statistics: what the samples of the last N seconds say, computed exactly.

Pure functions over plain sequences, so the maths is tested apart from the ring buffers that
feed it. Percentiles interpolate linearly between the two nearest ranks, the method numpy
calls ``linear`` (its default), ``statistics.quantiles`` calls ``inclusive`` and spreadsheets
call ``PERCENTILE.INC``.
"""

from __future__ import annotations

import functools
import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType

FAST_FROM = 64  # below this many samples, pure Python is as quick as calling numpy


@dataclass(frozen=True, slots=True)
class WindowStats:
    """The samples of one metric in the last ``seconds``.

    ``covered`` is how many seconds the stored samples really span: it equals ``seconds``
    unless the ring buffer overflowed inside the window, in which case the statistics describe
    the most recent samples only and ``truncated`` is true. Every statistic of an empty window
    is ``None``, except ``count`` and ``total`` (0: nothing happened is a fact).
    """

    seconds: float
    covered: float
    count: int
    total: float
    mean: float | None
    min: float | None
    max: float | None
    p50: float | None
    p95: float | None
    p99: float | None

    @property
    def truncated(self) -> bool:
        return self.covered < self.seconds

    @property
    def rate(self) -> float:
        """Samples per second over the covered span (events per second for a counter)."""
        if self.covered > 0:
            return self.count / self.covered
        return math.inf if self.count else 0.0


def empty(seconds: float, covered: float | None = None) -> WindowStats:
    return WindowStats(
        seconds=seconds,
        covered=seconds if covered is None else covered,
        count=0,
        total=0.0,
        mean=None,
        min=None,
        max=None,
        p50=None,
        p95=None,
        p99=None,
    )


@functools.cache
def _numpy() -> ModuleType | None:
    """numpy when installed (the ``speedups`` extra), imported on first use only."""
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def summarize(
    values: Iterable[float],
    *,
    seconds: float,
    covered: float | None = None,
    fast: bool | None = None,
) -> WindowStats:
    """Statistics of ``values`` (any order) for a window of ``seconds``.

    ``fast`` computes them with numpy over the buffer of an ``array('d')``, without copying:
    the same definitions (numpy's default percentile method is this module's), at C speed.
    By default it is used when numpy is installed and the window holds ``FAST_FROM`` samples
    or more; ``fast=False`` forces pure Python.
    """
    numpy = _numpy()
    if fast is None:
        fast = numpy is not None and isinstance(values, array) and len(values) >= FAST_FROM
    if fast:
        if numpy is None:
            raise RuntimeError(
                "fast window statistics need numpy: pip install 'vigil-alerts[speedups]'"
            )
        return _summarize_numpy(numpy, values, seconds=seconds, covered=covered)
    ordered = sorted(values)
    if not ordered:
        return empty(seconds, covered)
    total = math.fsum(ordered)
    low, high = ordered[0], ordered[-1]
    # fsum is correctly rounded, but dividing may still land one ulp outside the range.
    mean = min(max(total / len(ordered), low), high)
    return WindowStats(
        seconds=seconds,
        covered=seconds if covered is None else covered,
        count=len(ordered),
        total=total,
        mean=mean,
        min=low,
        max=high,
        p50=percentile(ordered, 0.50),
        p95=percentile(ordered, 0.95),
        p99=percentile(ordered, 0.99),
    )


def _summarize_numpy(
    numpy: ModuleType, values: Iterable[float], *, seconds: float, covered: float | None
) -> WindowStats:
    if isinstance(values, array):
        data = numpy.frombuffer(values, dtype=numpy.float64)  # a view: no copy
    else:
        data = numpy.fromiter(values, dtype=numpy.float64)
    if data.size == 0:
        return empty(seconds, covered)
    total = float(data.sum())
    low, high = float(data.min()), float(data.max())
    p50, p95, p99 = (float(x) for x in numpy.percentile(data, [50, 95, 99]))
    return WindowStats(
        seconds=seconds,
        covered=seconds if covered is None else covered,
        count=int(data.size),
        total=total,
        mean=min(max(total / data.size, low), high),
        min=low,
        max=high,
        p50=p50,
        p95=p95,
        p99=p99,
    )


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0 <= q <= 1) of ``ordered``, which must be sorted ascending."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be between 0 and 1, got {q!r}")
    if not ordered:
        raise ValueError("percentile of no values")
    position = (len(ordered) - 1) * q
    low = int(position)
    fraction = position - low
    if fraction == 0.0:
        return ordered[low]
    below, above = ordered[low], ordered[low + 1]
    # Clamped: rounding must never put a percentile outside its two neighbours.
    return min(max(below + (above - below) * fraction, below), above)
