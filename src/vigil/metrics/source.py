"""Sources: what the monitor reads once per cycle, and how a cycle's readings are gathered.

A source is anything with a ``name`` and an ``async def read()`` returning one current value
per metric: ``{"queue_depth": 12.0}``. ``None`` means no data this cycle (the rule's streaks
stay as they are), never a made-up 0. Reading must be quick; a source that needs I/O does it
in ``read`` and ``collect`` bounds it with a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable, Mapping
from typing import Literal, Protocol, runtime_checkable

from vigil.core.validation import METRIC_PATTERN
from vigil.metrics.recorder import Recorder

DEFAULT_WINDOW = 30.0
"""Seconds a windowed source looks back. Match it to the monitor interval: overlapping
windows would let one burst count as two consecutive breaches."""

Reading = Mapping[str, float | None]
Stat = Literal["count", "total", "rate", "mean", "min", "max", "p50", "p95", "p99"]

_log = logging.getLogger(__name__)


@runtime_checkable
class MetricSource(Protocol):
    """One or more metrics, read once per monitor cycle."""

    @property
    def name(self) -> str:
        """Identifies the source in logs; unique among one monitor's sources."""
        ...

    async def read(self) -> Reading:
        """The current value of each metric this source produces, ``None`` for no data."""
        ...


class WindowSource:
    """A statistic of a recorded metric as a metric of its own: for example the p95 of the
    ``payment_ms`` samples of the last 30 seconds, published as ``payment_p95``.

    ``count``, ``total`` and ``rate`` of a quiet window are 0; every other statistic is
    ``None`` when there were no samples.
    """

    def __init__(
        self,
        recorder: Recorder,
        metric: str,
        stat: Stat,
        *,
        publish_as: str | None = None,
        window: float = DEFAULT_WINDOW,
    ) -> None:
        self._recorder = recorder
        self._metric = metric
        self._stat: Stat = stat
        self._window = window
        self.publish_as = publish_as or f"{metric}_{stat}"
        self.name = f"window:{self.publish_as}"

    async def read(self) -> Reading:
        stats = self._recorder.window(self._metric, self._window)
        value: float | None = stats.rate if self._stat == "rate" else getattr(stats, self._stat)
        return {self.publish_as: None if value is None else float(value)}


async def collect(
    sources: Iterable[MetricSource], *, source_timeout: float = 10.0
) -> dict[str, float | None]:
    """Read every source concurrently and merge their readings.

    One source failing, hanging past ``source_timeout`` seconds, or returning a bad name or value
    costs only its own metrics (logged); the cycle goes on with the others. A metric produced
    by two sources keeps the first source's value.
    """
    sources = list(sources)
    results = await asyncio.gather(
        *(_read(source, source_timeout) for source in sources), return_exceptions=True
    )
    merged: dict[str, float | None] = {}
    owner: dict[str, str] = {}
    for source, result in zip(sources, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, Exception):
                raise result  # cancellation and interpreter exits are not a source's failure
            _log.warning(
                "Metric source %r failed: its metrics have no data this cycle",
                source.name,
                exc_info=result if not isinstance(result, TimeoutError) else None,
            )
            continue
        for metric, value in result.items():
            if not _valid(source.name, metric, value):
                continue
            if metric in merged:
                _log.warning(
                    "Metric %r comes from both %r and %r: keeping %r's value",
                    metric,
                    owner[metric],
                    source.name,
                    owner[metric],
                )
                continue
            merged[metric] = None if value is None else float(value)
            owner[metric] = source.name
    return merged


async def _read(source: MetricSource, seconds: float) -> Reading:
    # read() is called inside this coroutine, never ahead of it: a cycle cancelled before a
    # read starts must not leave an un-awaited coroutine behind.
    async with asyncio.timeout(seconds):
        return await source.read()


def _valid(source: str, metric: object, value: object) -> bool:
    if not isinstance(metric, str) or not METRIC_PATTERN.fullmatch(metric):
        _log.warning("Source %r produced an invalid metric name %r: ignored", source, metric)
        return False
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        _log.warning(
            "Source %r gave %r for %r: not a finite number, ignored", source, value, metric
        )
        return False
    return True
