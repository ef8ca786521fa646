"""Preview: what a rule (or several) would have done over the samples stored in the database.

The history is read in bounded chunks (``Store.sample_chunks``) and replayed through the
real evaluator (``vigil.backtest.Replay``, the code the monitor runs). Each distinct sample
time is one cycle, as the monitor stores its samples at its cycles' moments; a cycle's
readings are, like the monitor's, each series' newest sample at or before it as far back as
any rule looks, with its time, so the evaluator judges staleness as it does live; the
monitor's own instance (``own_instance``: it reads its sources afresh each cycle) has only
the samples of the cycle itself. A rule
that exists is replayed beside it over the same period, from the same clean slate.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from vigil.backtest import Readings, Replay, Report
from vigil.core import Rule, ValidationError
from vigil.core.rules import Kind

STALE_INTERVALS = 2  # as the monitor: a reading older than two intervals is no data
MAX_SINCE = timedelta(days=366)
SLICE_ROWS = 1000  # rows evaluated between two yields to the event loop (some milliseconds)
_SINCE = re.compile(r"(\d+)([mhdw])")
_UNIT = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class SampleSource(Protocol):
    def sample_chunks(
        self,
        *,
        start: datetime,
        end: datetime,
        metrics: Any = None,
        chunk: int = ...,
    ) -> Any: ...


def parse_since(text: str, now: datetime, *, field: str = "since") -> datetime:
    """``30m``, ``24h``, ``7d``, ``2w`` before ``now``, or an ISO-8601 start (naive is
    UTC); a start in the future, or more than a year back, is refused."""
    value = text.strip() if isinstance(text, str) else ""
    match = _SINCE.fullmatch(value)
    if match:
        amount = int(match.group(1))
        seconds = amount * _UNIT[match.group(2)]
        if seconds <= 0:
            raise ValidationError(field, f"{text!r} is an empty period")
        if seconds > MAX_SINCE.total_seconds():
            raise ValidationError(field, f"{text!r} is more than {MAX_SINCE.days} days")
        return now - timedelta(seconds=seconds)
    try:
        start = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            field,
            f"{text!r} is neither a period (30m, 24h, 7d, 2w) nor an ISO-8601 time",
        ) from None
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    if start >= now:
        raise ValidationError(field, f"{text!r} is not in the past")
    if now - start > MAX_SINCE:
        raise ValidationError(field, f"{text!r} is more than {MAX_SINCE.days} days ago")
    return start


@dataclass(frozen=True, slots=True)
class Replayed:
    """One set of rules' replay: its report and the notifications it would have sent
    (opened, escalated and resolved events)."""

    report: Report
    notifications: int


@dataclass(frozen=True, slots=True)
class Preview:
    start: datetime
    end: datetime
    samples: int
    proposed: Replayed
    saved: Replayed | None  # None: no saved rule of those names


def horizon(rules: Mapping[str, Rule], interval: float) -> float:
    """How far back a cycle's readings reach, as the monitor's: the longest staleness limit
    or absence any rule waits for, plus one interval."""
    longest = STALE_INTERVALS * interval
    for rule in rules.values():
        longest = max(longest, rule.stale_after or 0.0, rule.absent_for or 0.0)
    return longest + interval


async def preview(
    store: SampleSource,
    proposed: Mapping[str, Rule],
    *,
    saved: Mapping[str, Rule] | None = None,
    start: datetime,
    end: datetime,
    interval: float,
    own_instance: str | None = None,
    chunk: int | None = None,
) -> Preview:
    """Replay ``proposed`` (and ``saved``, when given and not empty) over the samples stored
    in ``[start, end)``, in one pass over the history. The event loop is yielded every
    ``SLICE_ROWS`` rows, so a long replay in the server never stalls the monitor."""
    runs = [_Run(proposed, interval, own_instance)]
    if saved:
        runs.append(_Run(saved, interval, own_instance))
    everything = any(rule.kind is Kind.ABSENT for run in runs for rule in run.rules.values())
    # An absent rule needs every cycle, data or not: the monitor's own samples mark them.
    metrics = (
        None if everything else {m for run in runs for r in run.rules.values() for m in r.metrics}
    )
    samples = 0
    options: dict[str, Any] = {} if chunk is None else {"chunk": chunk}
    async for rows in store.sample_chunks(start=start, end=end, metrics=metrics, **options):
        samples += len(rows)
        for first in range(0, len(rows), SLICE_ROWS):
            piece = rows[first : first + SLICE_ROWS]
            for run in runs:
                run.feed(piece)
            await asyncio.sleep(0)  # the monitor and the API go on between slices
    results = [run.finish() for run in runs]
    return Preview(
        start=start,
        end=end,
        samples=samples,
        proposed=results[0],
        saved=results[1] if saved else None,
    )


class _Run:
    """One replay fed raw rows in time order: a cycle at each distinct time, its readings
    every series' newest sample within the horizon."""

    def __init__(self, rules: Mapping[str, Rule], interval: float, own: str | None) -> None:
        self.rules = dict(rules)
        self.own = own
        self.replay = Replay(self.rules, stale_after=STALE_INTERVALS * interval)
        self.horizon = timedelta(seconds=horizon(self.rules, interval))
        self.read = {metric for rule in self.rules.values() for metric in rule.metrics}
        self.latest: dict[str, dict[str, tuple[float, datetime]]] = {}
        self.pending: datetime | None = None

    def feed(self, rows: list[tuple[datetime, str, str, float]]) -> None:
        for time, metric, instance, value in rows:
            if self.pending is not None and time != self.pending:
                self._cycle(self.pending)
            self.pending = time
            if metric in self.read:
                self.latest.setdefault(metric, {})[instance] = (value, time)

    def finish(self) -> Replayed:
        if self.pending is not None:
            self._cycle(self.pending)
            self.pending = None
        return Replayed(self.replay.finish(), self.replay.notifications)

    def _cycle(self, now: datetime) -> None:
        since = now - self.horizon
        readings: Readings = {}
        for metric, series in self.latest.items():
            stale = [i for i, (_, time) in series.items() if time < since]
            for instance in stale:
                del series[instance]  # never fresh again: the rows come in time order
            if series:
                readings[metric] = series.copy()
        self.replay.step(None, now, readings)
        if self.own is not None:
            for series in self.latest.values():
                series.pop(self.own, None)
