"""Preview: what a rule (or several) would have done over the samples stored in the database.

The history is read in bounded chunks (``Store.sample_chunks``) and replayed through the
real evaluator (``vigil.backtest.Replay``, the code the monitor runs). Each distinct sample
time is one cycle, as the monitor stores its samples at its cycles' moments; a cycle's
readings are, like the monitor's, each series' newest sample at or before it as far back as
any rule looks, with its time, so the evaluator judges staleness as it does live; the
monitor's own instance (``own_instance``: it reads its sources afresh each cycle) has only
the samples of the cycle itself. A rule
that exists is replayed beside it over the same period, from the same clean slate.

History older than ``sample_raw_hours`` is stored as minute rollups (``vigil.core.rollups``):
there each minute is one cycle, at its start, and each series' reading is the figure of the
minute the rules judge by (``wanted``: the maximum for a threshold rule where higher is worse,
the minimum where lower is, the mean for the learning kinds). A spike that would have opened an
incident still does; streaks over compacted history count minutes, not cycles.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from vigil.backtest import BandStep, Readings, Replay, Report
from vigil.core import Rule, ValidationError
from vigil.core.evaluation import series_key
from vigil.core.flapping import FlapSettings
from vigil.core.grouping import check_window
from vigil.core.learning import Baseline, Trend, learning_window
from vigil.core.rollups import wanted
from vigil.core.rules import Kind, SplitBy
from vigil.core.suggest import History, NoSuggestion, Suggestion, hour_name

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
        rollup: Any = None,
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
    """One set of rules' replay: its report and the notifications it would have sent to a
    channel hearing every event: one per opened, escalated, resolved and flapping event
    (``notifications``), and as incident grouping sends them with the report's
    ``group_window`` (``grouped_notifications``; the same number when grouping is off)."""

    report: Report
    notifications: int
    # Each unsplit anomaly rule's band as it judged, by rule name (``Replay.bands``).
    bands: Mapping[str, list[BandStep]] = dataclasses.field(default_factory=dict)

    @property
    def grouped_notifications(self) -> int:
        return self.report.grouped_notifications

    @property
    def group_window(self) -> float:
        return self.report.group_window

    @property
    def groups(self) -> int:
        """Incident groups of two or more incidents."""
        return self.report.groups


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
    flap: FlapSettings | None = None,
    group_window: float = 0.0,
) -> Preview:
    """Replay ``proposed`` (and ``saved``, when given and not empty) over the samples stored
    in ``[start, end)``, in one pass over the history, with flap detection as ``flap`` says
    (the monitor's ``Settings.flap``), and the notifications counted with incident grouping
    over ``group_window`` seconds too (the monitor's ``Settings.effective_group_window``;
    0: off), as ``vigil backtest`` counts them. Anomaly and forecast rules first learn from
    the window they need before ``start`` (``learn``), as the monitor does when such a rule
    is added. The event loop is yielded every ``SLICE_ROWS`` rows, so a long replay in the
    server never stalls the monitor."""
    check_window("group_window", group_window)
    runs = [_Run(proposed, interval, own_instance, flap, group_window=group_window)]
    if saved:
        runs.append(_Run(saved, interval, own_instance, flap, group_window=group_window))
    for run in runs:
        learned = await learn(
            store, run.rules, now=start, interval=interval, own_instance=own_instance
        )
        run.replay.evaluator.adopt(learned)
    everything = any(rule.kind is Kind.ABSENT for run in runs for rule in run.rules.values())
    # An absent rule needs every cycle, data or not: the monitor's own samples mark them.
    metrics = (
        None if everything else {m for run in runs for r in run.rules.values() for m in r.metrics}
    )
    samples = 0
    options: dict[str, Any] = {} if chunk is None else {"chunk": chunk}
    # Compacted history: each minute's worst value for the rules (``wanted``).
    options["rollup"] = wanted(rule for run in runs for rule in run.rules.values())
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

    def __init__(
        self,
        rules: Mapping[str, Rule],
        interval: float,
        own: str | None,
        flap: FlapSettings | None = None,
        bands: list[str] | None = None,
        group_window: float = 0.0,
    ) -> None:
        self.rules = dict(rules)
        self.own = own
        # The bands traced (series keys): by default every unsplit anomaly rule's.
        traced = [n for n, r in self.rules.items() if _drawn(r)] if bands is None else bands
        self.replay = Replay(
            self.rules,
            stale_after=STALE_INTERVALS * interval,
            flap=flap,
            bands=traced,
            group_window=group_window,
        )
        self.horizon = timedelta(seconds=horizon(self.rules, interval))
        self.read = {metric for rule in self.rules.values() for metric in rule.metrics}
        # The interval of the one metric's value that changes nothing (None: not known yet,
        # or more than one metric is read).
        self.quiet: tuple[float, float] | None = None
        self.single = next(iter(self.read)) if len(self.read) == 1 else None
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
        return Replayed(self.replay.finish(), self.replay.notifications, self.replay.bands)

    def _cycle(self, now: datetime) -> None:
        if self.single is not None and self._quiet_single(now):
            return
        since = now - self.horizon
        readings: Readings = {}
        for metric, series in self.latest.items():
            stale = [i for i, (_, time) in series.items() if time < since]
            for instance in stale:
                del series[instance]  # never fresh again: the rows come in time order
            if series:
                readings[metric] = series
        if self._quiet(readings):
            self.replay.skip(now, readings)
        else:
            self.replay.step(None, now, {m: dict(series) for m, series in readings.items()})
            self.quiet = None  # the rules' states may have changed
        if self.own is not None:
            for series in self.latest.values():
                series.pop(self.own, None)

    def _quiet_single(self, now: datetime) -> bool:
        """``_quiet`` for the commonest replay, one metric from one instance, without
        building the cycle's readings: the hot loop of a long preview."""
        series = self.latest.get(self.single or "")
        if series is None or len(series) != 1:
            return False
        if self.quiet is None:
            return False  # worked out by the full path, then kept
        [(instance, (value, _))] = series.items()
        if not self.quiet[0] < value < self.quiet[1] or instance == self.own:
            return False
        self.replay.skip(now, self.read)
        return True

    def _quiet(self, readings: Readings) -> bool:
        """Whether this cycle changes nothing, known without evaluating it: the one metric
        read, by one instance, inside the interval that leaves every rule as it is
        (``Evaluator.quiet_range``, kept until a cycle is evaluated). The common cycle of a
        replay: the evaluator's own shortcut, taken earlier."""
        if len(readings) != 1 or len(self.read) != 1:
            return False
        [(metric, series)] = readings.items()
        if len(series) != 1:
            return False
        if self.quiet is None:
            self.quiet = self.replay.evaluator.quiet_range(metric) or (math.inf, -math.inf)
        [(value, _)] = series.values()  # stale or not: missing data changes nothing here
        return self.quiet[0] < value < self.quiet[1]


def _drawn(rule: Rule) -> bool:
    """Whether a rule has one band to draw: an anomaly rule of one series."""
    return rule.kind is Kind.ANOMALY and rule.split_by is SplitBy.NONE


async def _replay(
    store: SampleSource,
    rules: Mapping[str, Rule],
    *,
    start: datetime,
    end: datetime,
    interval: float,
    own_instance: str | None,
    bands: list[str] | None = None,
) -> _Run:
    """``rules`` replayed over the samples of their metrics in ``[start, end)``, yielding to
    the event loop every ``SLICE_ROWS`` rows."""
    run = _Run(rules, interval, own_instance, bands=bands)
    metrics = {m for rule in rules.values() for m in rule.metrics}
    rollup = wanted(rules.values())
    async for rows in store.sample_chunks(start=start, end=end, metrics=metrics, rollup=rollup):
        for first in range(0, len(rows), SLICE_ROWS):
            run.feed(rows[first : first + SLICE_ROWS])
            await asyncio.sleep(0)
    return run


async def learn(
    store: SampleSource,
    rules: Mapping[str, Rule],
    *,
    now: datetime,
    interval: float,
    own_instance: str | None = None,
) -> dict[str, Baseline | Trend]:
    """What the learning rules among ``rules`` learn from the samples stored in the window
    they need before ``now`` (``learning_window``), replayed as the monitor ran them: each
    series' memory by ``series_key``, for ``Evaluator.adopt``."""
    learning = {name: rule for name, rule in rules.items() if learning_window(rule) > 0}
    if not learning:
        return {}
    window = max(learning_window(rule) for rule in learning.values())
    start = now - timedelta(seconds=window)
    run = await _replay(
        store, learning, start=start, end=now, interval=interval, own_instance=own_instance
    )
    run.finish()
    return run.replay.evaluator.memories()


async def band_history(
    store: SampleSource,
    rule: Rule,
    *,
    start: datetime,
    end: datetime,
    interval: float,
    own_instance: str | None = None,
    series: str = "",
) -> list[BandStep]:
    """The band an anomaly rule judged a series' readings by over ``[start, end)`` (``series``:
    the instance, for a rule split per instance): the rule replayed (the monitor's evaluator)
    from the window it learns from before ``start``; the first step is the band in force at
    ``start``. Empty for any other rule, or a split rule without ``series``."""
    if rule.kind is not Kind.ANOMALY or (rule.split_by is SplitBy.NONE) == bool(series):
        return []
    key = series_key(rule.name, series)
    learned_from = start - timedelta(seconds=learning_window(rule))
    run = await _replay(
        store,
        {rule.name: rule},
        start=learned_from,
        end=end,
        interval=interval,
        own_instance=own_instance,
        bands=[key],
    )
    steps = run.finish().bands[key]
    before = [step for step in steps if step[0] < start]
    shown = [(start, before[-1][1])] if before else []
    return shown + [step for step in steps if step[0] >= start]


@dataclass(frozen=True, slots=True)
class Suggested:
    """Thresholds suggested for a rule from its metric's stored history, and what the rule
    would have done with them (``preview``: beside the saved rule), or why there are none."""

    start: datetime
    end: datetime
    suggestion: Suggestion | NoSuggestion
    rule: Rule | None  # the rule with the suggested thresholds
    preview: Preview | None

    def explanation(self) -> str:
        """What was learned and what it would have done, in words."""
        found = self.suggestion
        if isinstance(found, NoSuggestion):
            return f"No suggestion: {found.reason}."
        assert self.rule is not None and self.preview is not None
        unit = f" {self.rule.unit}" if self.rule.unit and self.rule.unit != "event" else ""
        days = max((self.end - self.start).total_seconds() / 86400, 1 / 24)
        period = f"{days:.0f} days" if days >= 2 else f"{days * 24:.0f} hours"
        text = (
            f"From {found.readings:,} readings over {period} (median {found.median:.4g}{unit}, "
            f"typical spread {found.spread:.3g}{unit}): warning at {found.warning:g}{unit}, "
            f"critical at {found.critical:g}{unit}."
        )
        if found.weekly and found.busiest_hour is not None:
            text += (
                " The metric has a weekly shape: the levels sit above its busiest hour, "
                f"{hour_name(found.busiest_hour)}."
            )
        outcomes = self.preview.proposed.report.outcomes
        critical = [o.escalated_at or o.opened_at for o in outcomes if o.severity == "critical"]
        warnings = len(outcomes) - len(critical)
        text += f" Critical would have fired {_times(len(critical))} in {period}"
        if critical:
            shown = ", ".join(_moment(at) for at in critical[:3])
            text += f", at {shown}" + (" and later" if len(critical) > 3 else "")
        text += f"; warning alone {_times(warnings)}."
        return text


async def suggest(
    store: SampleSource,
    rule: Rule,
    *,
    start: datetime,
    end: datetime,
    interval: float,
    own_instance: str | None = None,
    flap: FlapSettings | None = None,
) -> Suggested:
    """Thresholds for the threshold rule ``rule`` learned from its metric's samples in
    ``[start, end)`` (``vigil.core.suggest``), and a preview of the rule with them beside the
    rule as it is. Two bounded passes over the history; the event loop is yielded between
    chunks."""
    if rule.kind is not Kind.THRESHOLD:
        raise ValidationError(
            "kind", f"thresholds are suggested for threshold rules; {rule.name} is {rule.kind}"
        )
    history = History()
    async for rows in store.sample_chunks(start=start, end=end, metrics={rule.metric}):
        for time, _, _, value in rows:
            history.add(time, value)
        await asyncio.sleep(0)
    found = history.suggest(rule.direction)
    if isinstance(found, NoSuggestion):
        return Suggested(start, end, found, None, None)
    proposed = with_thresholds(rule, found)
    result = await preview(
        store,
        {rule.name: proposed},
        saved={rule.name: rule},
        start=start,
        end=end,
        interval=interval,
        own_instance=own_instance,
        flap=flap,
    )
    return Suggested(start, end, found, proposed, result)


def with_thresholds(rule: Rule, found: Suggestion) -> Rule:
    """``rule`` with the suggested levels; its recovery value is kept where it still lies on
    the normal side of the new warning level."""
    try:
        return dataclasses.replace(rule, warning=found.warning, critical=found.critical)
    except ValidationError:
        return dataclasses.replace(
            rule, warning=found.warning, critical=found.critical, recovery=None
        )


def _times(count: int) -> str:
    return {0: "never", 1: "once", 2: "twice"}.get(count, f"{count} times")


def _moment(label: str) -> str:
    return datetime.fromisoformat(label).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
