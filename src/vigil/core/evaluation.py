"""Evaluation: readings in, streaks and incidents out. Pure: no I/O, time passed in.

``Evaluator`` keeps one slot per (rule, series) — the series is the instance of a rule split
per instance, "" otherwise — and each cycle turns the readings into one observation per slot
(``vigil.core.kinds``) and applies ``advance`` (``vigil.core.transitions``) to it. Plain
threshold rules that are idle and read normal (the common case) are skipped, which changes
nothing by definition: the normal streak only counts while an incident is open.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from vigil.core import kinds
from vigil.core.errors import DuplicateIncidentError, NotFoundError, ValidationError
from vigil.core.events import Event
from vigil.core.flapping import FlapSettings, advance_flapping
from vigil.core.incidents import Incident, acknowledge, resolve
from vigil.core.kinds import Observation
from vigil.core.learning import BUCKETS, Baseline, Trend, quiet_until
from vigil.core.rules import Direction, Kind, Level, NoData, Rule, SplitBy
from vigil.core.samples import combine
from vigil.core.transitions import (
    IDLE,
    IdFactory,
    RuleState,
    _check_reading,
    advance,
    message,
    step,
)

__all__ = [
    "DEFAULT_MAX_SERIES",
    "IDLE",
    "CycleResult",
    "Evaluator",
    "Reading",
    "RuleState",
    "advance",
    "message",
    "series_key",
    "split_key",
    "step",
]

Reading = tuple[float, datetime]
"""One instance's newest value of a metric, and when it was sampled."""
Edges = tuple[float, float, float]
"""An anomaly band as drawn: low edge, baseline, high edge."""

SERIES_SEPARATOR = "/"  # never in a rule's name, so the first one splits a key
DEFAULT_MAX_SERIES = 1000
RESHAPED_NOTE = "rule changed"


def series_key(rule: str, series: str = "") -> str:
    """The key of one series of one rule: the rule's name, or ``name/instance`` when split."""
    return f"{rule}{SERIES_SEPARATOR}{series}" if series else rule


def split_key(key: str) -> tuple[str, str]:
    """``(rule, series)`` from ``series_key``."""
    rule, _, series = key.partition(SERIES_SEPARATOR)
    return rule, series


@dataclass(frozen=True, slots=True)
class CycleResult:
    """What one cycle changed: the events, every series state that differs from before (keyed
    by ``series_key``), and what those states were (so a cycle whose commit failed can be
    rolled back)."""

    events: list[Event] = field(default_factory=list)
    changed: dict[str, RuleState] = field(default_factory=dict)
    previous: dict[str, RuleState] = field(default_factory=dict)


class _Slot:
    """One series of one rule: its state, the open interval of readings that leave an idle
    plain threshold series unchanged, and (absent rules) the newest sample time seen."""

    __slots__ = ("hi", "idle", "key", "lo", "memory", "rule", "seen", "series", "state")

    def __init__(self, rule: Rule, series: str, state: RuleState) -> None:
        self.rule = rule
        self.series = series
        self.key = series_key(rule.name, series)
        self.seen: datetime | None = None
        self.memory: Baseline | Trend | None = None  # what a learning kind learned
        self.set_state(state)

    def set_state(self, state: RuleState) -> None:
        self.state = state
        self.idle = idle = state.is_idle  # asked every cycle of every learning series
        rule = self.rule
        if idle and rule.kind is Kind.THRESHOLD:
            first = rule.first_threshold
            if rule.direction is Direction.ABOVE:
                self.lo, self.hi = -math.inf, first
            else:
                self.lo, self.hi = first, math.inf
        else:
            self.lo, self.hi = math.inf, -math.inf  # nothing is inside: always the full step


class _Plan:
    """What a cycle needs of a rule that is not a plain threshold rule, worked out once."""

    __slots__ = (
        "anomaly",
        "condition",
        "idle",
        "learning",
        "metrics",
        "min_history",
        "no_data",
        "rule",
        "sensitivity",
    )

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.metrics = rule.metrics
        self.no_data = kinds.no_data(rule)
        # The learning kinds' fields, read every cycle: kept here, checked once.
        self.learning = rule.kind in _LEARNING
        self.anomaly = rule.kind is Kind.ANOMALY
        self.min_history = rule.min_history or 0.0
        self.sensitivity = rule.sensitivity or 0.0
        self.condition = rule.parsed_condition if rule.kind is Kind.COMPOSITE else None
        self.idle = (math.inf, -math.inf)  # the readings that leave an idle series so
        if rule.kind is Kind.THRESHOLD:
            first = rule.first_threshold
            above = rule.direction is Direction.ABOVE
            self.idle = (-math.inf, first) if above else (first, math.inf)


_NOTHING = Observation(Level.NORMAL)  # "this series changes nothing this cycle"


def _is_plain(rule: Rule) -> bool:
    return rule.kind is Kind.THRESHOLD and rule.split_by is SplitBy.NONE


# One series' share of a cycle: the rule, the series, its slot (None: a new series), the
# observation, and for absent rules the newest sample time now known.
_Pending = tuple[Rule, str, "_Slot | None", "Observation | None", "datetime | None"]


class Evaluator:
    """Holds the rules and the state of each of their series; evaluates one cycle at a time.

    ``stale_after``: seconds after which a reading is no data, for rules that do not set their
    own (``None``: never). ``max_series``: the most series one split rule may have; readings of
    further instances are refused and counted in ``overflow()``. ``flap``: flap detection
    (``vigil.core.flapping``; ``None``: off). Not thread-safe: one owner (the monitor) calls
    it.
    """

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        *,
        states: Mapping[str, RuleState] | None = None,
        new_id: IdFactory = uuid.uuid4,
        stale_after: float | None = None,
        max_series: int = DEFAULT_MAX_SERIES,
        flap: FlapSettings | None = None,
    ) -> None:
        self._flap = flap
        self._rules: dict[str, Rule] = {}
        self._slots: dict[str, _Slot] = {}
        self._series: dict[str, dict[str, _Slot]] = {}
        self._new_id = new_id
        self._stale_after = stale_after
        self._max_series = max_series
        self._overflow: dict[str, int] = {}
        self._learning_now: datetime | None = None
        self._learning_at = 0.0
        self.generation = 0  # counts the changes of the rules: equal, they are as they were
        self._orphans: list[_Slot] = []  # series their rule no longer has: released next cycle
        for rule in rules:
            if rule.name in self._rules:
                raise ValidationError("name", f"duplicate rule {rule.name!r}")
            self._add(rule)
        self._index()
        for key, state in (states or {}).items():
            self.restore(key, state)

    # -- rules and state -------------------------------------------------------------------

    @property
    def rules(self) -> dict[str, Rule]:
        """Every rule by name."""
        return dict(self._rules)

    def rule(self, name: str) -> Rule:
        rule = self._rules.get(name)
        if rule is None:
            raise NotFoundError("rule", name)
        return rule

    def state(self, rule: str, series: str = "") -> RuleState:
        """One series' state (a key from ``series_key`` works too); idle for a series of a
        split rule that has none yet."""
        name, embedded = split_key(rule)
        self.rule(name)
        slot = self._slots.get(series_key(name, series or embedded))
        return slot.state if slot is not None else IDLE

    def states(self) -> dict[str, RuleState]:
        """Every series' state by ``series_key``: what a restart restores."""
        return {key: slot.state for key, slot in self._slots.items()}

    def series(self, rule: str) -> list[str]:
        """The series a rule has now ("" for an unsplit rule)."""
        return sorted(self._series.get(rule, {}))

    def overflow(self) -> dict[str, int]:
        """Rules whose instances outnumbered ``max_series`` in the last cycle: how many
        series each had to refuse."""
        return dict(self._overflow)

    def open_incidents(self) -> list[Incident]:
        return [s.state.incident for s in self._slots.values() if s.state.incident is not None]

    def set_rule(self, rule: Rule) -> None:
        """Add a rule or replace one; a replaced rule keeps its series' streaks and incidents
        (a change of kind, metric or split keeps only the series that have an incident). A
        series the changed rule no longer has — an instance of a rule no longer split, the
        combined series of a rule now split — is released by the next cycle: its open incident
        resolves (automatic, note "rule changed") and the series is forgotten."""
        self.set_rules([rule])

    def set_rules(self, rules: Iterable[Rule]) -> None:
        """``set_rule`` of each rule in turn, the lookups rebuilt once (a reload of 10,000
        rules rebuilt them 10,000 times)."""
        for rule in rules:
            self._set(rule)
        self._index()

    def _set(self, rule: Rule) -> None:
        old = self._rules.get(rule.name)
        if old is None:
            self._add(rule)
        else:
            self._rules[rule.name] = rule
            reshaped = (old.kind, old.metric, old.split_by) != (
                rule.kind,
                rule.metric,
                rule.split_by,
            )
            for slot in list(self._series.get(rule.name, {}).values()):
                if reshaped and slot.state.incident is None:
                    self._drop(slot)
                else:
                    slot.rule = rule
                    slot.set_state(slot.state)
            if _is_plain(rule) and "" not in self._series.get(rule.name, {}):
                self._slot(rule, "")

    def remove_rule(self, name: str) -> None:
        self.rule(name)
        for slot in list(self._series.get(name, {}).values()):
            self._drop(slot)
        del self._rules[name]
        self._series.pop(name, None)
        self._index()

    def restore(self, key: str, state: RuleState) -> None:
        """Load a persisted state (after a restart), by ``series_key``."""
        name, series = split_key(key)
        rule = self._rules.get(name)
        if rule is None:
            raise NotFoundError("rule", key)
        incident = state.incident
        if incident is not None:
            if (incident.rule, incident.series) != (name, series):
                raise ValidationError("incident", f"belongs to {incident.rule!r}")
            if not incident.is_open:
                raise ValidationError("incident", "a rule state holds only an open incident")
        slot = self._slot(rule, series)
        slot.set_state(state)
        if not _fits(rule, series) and slot not in self._orphans:
            self._orphans.append(slot)  # stored before the rule changed shape

    # -- what the learning kinds learned ----------------------------------------------------

    def band(self, rule: str, series: str = "", *, at: datetime) -> Edges | None:
        """The band an anomaly rule's series judged its latest reading by, as ``(low,
        baseline, high)`` (``kinds.anomaly``'s edges), for a cycle at ``at``; ``None`` while
        it cannot fire (no baseline for the hour yet, or under ``min_history``)."""
        found = self.rule(rule)
        slot = self._slots.get(series_key(rule, series))
        memory = slot.memory if slot is not None else None
        if found.kind is not Kind.ANOMALY or not isinstance(memory, Baseline):
            return None
        assert found.min_history is not None and found.sensitivity is not None
        band = memory.band
        if (
            band is None
            or memory.first is None
            or at.timestamp() - memory.first < (found.min_history)
        ):
            return None
        low, high = band.edges(found.sensitivity)
        return low, band.median, high

    def learning_rules(self) -> dict[str, Rule]:
        """The rules that learn (anomaly, forecast), by name."""
        return {p.rule.name: p.rule for p in self._other if p.rule.kind in _LEARNING}

    def memories(self) -> dict[str, Baseline | Trend]:
        """What each learning series has learned, by ``series_key``."""
        return {key: slot.memory for key, slot in self._slots.items() if slot.memory is not None}

    def adopt(self, memories: Mapping[str, Baseline | Trend]) -> int:
        """Take in what another evaluator learned of the same rules (a replay of the stored
        samples at start: ``vigil.runtime.learning``), so a restart does not wait
        ``min_history`` again. A memory of a rule that is gone, of another kind or of another
        lookback is ignored; a series new here is added up to ``max_series``. Returns how many
        series were taken in."""
        taken = 0
        for key, memory in memories.items():
            name, series = split_key(key)
            rule = self._rules.get(name)
            if rule is None or not _learned_by(rule, memory) or not _fits(rule, series):
                continue
            if series and self._slots.get(key) is None:
                if len(self._series.get(name, {})) >= self._max_series:
                    continue
            self._slot(rule, series).memory = memory
            taken += 1
        return taken

    # -- evaluation ------------------------------------------------------------------------

    def quiet_range(self, metric: str) -> tuple[float, float] | None:
        """The open interval of ``metric``'s value (missing or stale included) that changes
        nothing in a cycle as things stand, when only unsplit threshold rules that ignore
        missing data read it; ``None`` otherwise. A replay may skip such a cycle."""
        if metric in self._other_metrics:
            return None
        one = self._plain_one.get(metric)
        slots = [one] if one is not None else self._plain_many.get(metric, [])
        low, high = -math.inf, math.inf
        for slot in slots:
            if slot.rule.no_data is not NoData.KEEP:
                return None
            low, high = max(low, slot.lo), min(high, slot.hi)
        return low, high

    def evaluate(
        self,
        readings: Mapping[str, float | None],
        *,
        now: datetime,
        silenced: Collection[str] = (),
    ) -> CycleResult:
        """Apply one cycle of one value per metric (already combined; sampled ``now``).
        Atomic: invalid input raises before any state changes.

        A metric left out of ``readings`` (or given as ``None``) is missing data. A rule in
        ``silenced`` (``vigil.core.silences.silenced_metrics``) opens and escalates nothing.
        """
        one, many = self._plain_one, self._plain_many
        pending: list[tuple[_Slot, float]] = []
        unknown: list[str] = []
        try:
            for metric, value in readings.items():
                slot = one.get(metric)
                if slot is not None:  # the common case: one plain rule reads the metric
                    if value is not None and not slot.lo < value < slot.hi:
                        pending.append((slot, value))
                elif metric in many:
                    if value is not None:
                        pending.extend((s, value) for s in many[metric] if not s.lo < value < s.hi)
                elif metric not in self._read:
                    unknown.append(metric)
        except TypeError:
            for metric, value in readings.items():
                if value is not None:
                    _check_reading(metric, value)
            raise  # pragma: no cover - the loop above always finds the culprit
        if unknown:
            raise ValidationError(unknown[0], "no rule for this metric")
        for slot, value in pending:
            _check_reading(slot.rule.metric, value)
        work: list[_Pending] = [
            (slot.rule, "", slot, kinds.threshold(slot.rule, value), None)
            for slot, value in pending
        ]
        for slot in self._plain_no_data:
            if readings.get(slot.rule.metric) is None:
                work.append((slot.rule, "", slot, kinds.no_data(slot.rule), None))
        if self._other:
            series: dict[str, dict[str, Reading]] = {}
            for metric in self._other_metrics:
                value = readings.get(metric)
                if value is not None:
                    _check_reading(metric, value)
                    series[metric] = {"": (value, now)}
            self._observe_others(series, now, work)
        return self._apply(work, now=now, silenced=silenced)

    def evaluate_series(
        self,
        readings: Mapping[str, Mapping[str, Reading]],
        *,
        now: datetime,
        silenced: Collection[str] = (),
    ) -> CycleResult:
        """Apply one cycle of per-instance readings: ``{metric: {instance: (value,
        sampled_at)}}``, each instance's newest sample. A reading older than its rule's
        ``stale_after`` is no data; an unsplit rule combines the instances' fresh values by
        its ``aggregate``. Metrics no rule reads are ignored. Atomic: invalid input raises
        before any state changes."""
        work: list[_Pending] = []
        cutoffs: dict[float | None, datetime | None] = {None: None}
        for slot in self._plain_all:
            rule = slot.rule
            limit = rule.stale_after if rule.stale_after is not None else self._stale_after
            cutoff = cutoffs.get(limit)
            if cutoff is None and limit is not None:
                cutoff = cutoffs[limit] = now - timedelta(seconds=limit)
            value = _combine(readings.get(rule.metric), rule, cutoff)
            if value is None:
                if rule.no_data is not NoData.KEEP:
                    work.append((rule, "", slot, kinds.no_data(rule), None))
            elif not slot.lo < value < slot.hi:
                work.append((rule, "", slot, kinds.threshold(rule, value), None))
        if self._other:
            self._observe_others(readings, now, work)
        return self._apply(work, now=now, silenced=silenced)

    def rollback(self, result: CycleResult) -> None:
        """Undo a cycle whose changes could not be stored, as if it never ran.

        Only valid for the latest cycle, before any other change."""
        for key, state in result.previous.items():
            name, series = split_key(key)
            rule = self._rules.get(name)
            if rule is not None:
                slot = self._slot(rule, series)
                slot.set_state(state)
                if not _fits(rule, series) and slot not in self._orphans:
                    self._orphans.append(slot)

    # -- manual actions and changes made elsewhere ------------------------------------------

    def acknowledge(
        self, incident_id: uuid.UUID, *, by: str, now: datetime, notes: str | None = None
    ) -> Event:
        slot = self._slot_of(incident_id)
        assert slot.state.incident is not None
        incident, event = acknowledge(slot.state.incident, by=by, now=now, notes=notes)
        slot.set_state(dataclasses.replace(slot.state, incident=incident))
        return event

    def resolve(
        self, incident_id: uuid.UUID, *, by: str, now: datetime, notes: str | None = None
    ) -> Event:
        """Manual resolution. The streaks restart, so a still-breaching series must breach
        ``breaches_required`` times again before a new incident opens."""
        slot = self._slot_of(incident_id)
        assert slot.state.incident is not None
        _, event = resolve(slot.state.incident, by=by, now=now, notes=notes)
        slot.set_state(slot.state.without_incident())
        return event

    def sync(self, incident: Incident) -> None:
        """Take in an incident change made elsewhere (an API call served by another instance).

        Raises ``DuplicateIncidentError`` for an open incident that is not the series' own.
        """
        rule = self._rules.get(incident.rule)
        if rule is None:
            return
        slot = self._slots.get(series_key(incident.rule, incident.series))
        current = slot.state.incident if slot is not None else None
        if incident.is_open:
            if current is not None and current.id != incident.id:
                raise DuplicateIncidentError(incident.rule)
            slot = slot if slot is not None else self._slot(rule, incident.series)
            slot.set_state(dataclasses.replace(slot.state, incident=incident))
        elif slot is not None and current is not None and current.id == incident.id:
            slot.set_state(slot.state.without_incident())

    # -- the parts --------------------------------------------------------------------------

    def _add(self, rule: Rule) -> None:
        self._rules[rule.name] = rule
        if rule.split_by is SplitBy.NONE:
            self._slot(rule, "")

    def _slot(self, rule: Rule, series: str) -> _Slot:
        key = series_key(rule.name, series)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(rule, series, IDLE)
            self._series.setdefault(rule.name, {})[series] = slot
        return slot

    def _drop(self, slot: _Slot) -> None:
        self._slots.pop(slot.key, None)
        self._series.get(slot.rule.name, {}).pop(slot.series, None)

    def _index(self) -> None:
        """The lookups a cycle runs on, rebuilt whenever the rules change."""
        self.generation += 1
        plain: dict[str, list[_Slot]] = {}
        self._plain_all: list[_Slot] = []
        self._plain_no_data: list[_Slot] = []
        self._other: list[_Plan] = []
        read: set[str] = set()
        for rule in self._rules.values():
            read.update(rule.metrics)
            if _is_plain(rule):
                slot = self._slot(rule, "")
                plain.setdefault(rule.metric, []).append(slot)
                self._plain_all.append(slot)
                if rule.no_data is not NoData.KEEP:
                    self._plain_no_data.append(slot)
            else:
                self._other.append(_Plan(rule))
        self._plain_one = {m: slots[0] for m, slots in plain.items() if len(slots) == 1}
        self._plain_many = {m: slots for m, slots in plain.items() if len(slots) > 1}
        self._read = frozenset(read)
        self._other_metrics = frozenset(m for plan in self._other for m in plan.metrics)
        self._orphans = [slot for slot in self._slots.values() if not _fits(slot.rule, slot.series)]

    def _observe_others(
        self, readings: Mapping[str, Mapping[str, Reading]], now: datetime, work: list[_Pending]
    ) -> None:
        """Observations of every rule that is not a plain threshold rule. As for plain rules,
        a series that is idle and reads normal is skipped: nothing would change."""
        self._overflow = {}
        added: dict[str, int] = {}
        cutoffs: dict[float | None, datetime | None] = {None: None}
        combined: dict[tuple[str, str, datetime | None], float | None] = {}
        for plan in self._other:
            rule = plan.rule
            limit = rule.stale_after if rule.stale_after is not None else self._stale_after
            cutoff = cutoffs.get(limit)
            if cutoff is None and limit is not None:
                cutoff = cutoffs[limit] = now - timedelta(seconds=limit)
            if plan.learning:
                self._observe_learning(plan, readings, cutoff, now, work)
                continue
            known = self._series.get(rule.name, {})
            if rule.kind is Kind.ABSENT:
                entries = readings.get(rule.metric) or {}
                self._observe_absent(rule, entries, known, now, work, added)
            elif rule.kind is Kind.THRESHOLD:
                self._observe_split_threshold(plan, readings, cutoff, known, work, added)
            elif rule.split_by is SplitBy.NONE:
                slot = known.get("") or self._slot(rule, "")
                values = {}
                for metric in plan.metrics:
                    memo = (metric, rule.aggregate, cutoff)
                    if memo not in combined:
                        combined[memo] = _combine(readings.get(metric), rule, cutoff)
                    values[metric] = combined[memo]
                seen = self._composite(plan, values, idle=slot.state.is_idle)
                if seen is not _NOTHING:
                    work.append((rule, "", slot, seen, None))
            else:
                instances: dict[str, None] = dict.fromkeys(known)
                for metric in plan.metrics:
                    instances.update(dict.fromkeys(readings.get(metric) or {}))
                for instance in instances:
                    values = {
                        m: _fresh((readings.get(m) or {}).get(instance), cutoff)
                        for m in plan.metrics
                    }
                    existing = known.get(instance)
                    idle = existing is None or existing.state.is_idle
                    seen = self._composite(plan, values, idle=idle)
                    if seen is _NOTHING or (existing is None and seen is None):
                        continue
                    if existing is None and seen is not None and seen.level is Level.NORMAL:
                        continue  # a new series reading normal: nothing to remember yet
                    self._queue(rule, instance, existing, seen, None, known, work, added)

    @staticmethod
    def _composite(
        plan: _Plan, values: Mapping[str, float | None], *, idle: bool
    ) -> Observation | None:
        """The observation, or ``_NOTHING`` when it would change nothing (an idle series
        whose condition does not hold, or no data under ``keep``)."""
        assert plan.condition is not None
        holds = plan.condition.holds(values)
        if holds is None:
            return plan.no_data if plan.no_data is not None else _NOTHING
        if not holds and idle:
            return _NOTHING
        return kinds.composite(plan.rule, values)

    def _observe_learning(
        self,
        plan: _Plan,
        readings: Mapping[str, Mapping[str, Reading]],
        cutoff: datetime | None,
        now: datetime,
        work: list[_Pending],
    ) -> None:
        """Anomaly and forecast rules: each fresh reading is judged by what the series learned
        before it, and learned from. The memory lives in the series' slot, so a series is
        remembered from its first reading (up to ``max_series``), idle or not."""
        rule = plan.rule
        if now is not self._learning_now:  # once a cycle, not once a rule
            self._learning_now, self._learning_at = now, now.timestamp()
        at = self._learning_at
        entries = readings.get(rule.metric)
        if rule.split_by is SplitBy.NONE:
            slot = self._slots.get(rule.name) or self._slot(rule, "")  # its key: the name
            value: float | None = None
            if entries is not None and len(entries) == 1:  # one instance: nothing to combine
                for value, sampled in entries.values():
                    if cutoff is not None and sampled < cutoff:
                        value = None
                    elif value.__class__ is not float or not _NEG_INF < value < _INF:
                        value = _fresh((value, sampled), None)  # an int, or not a number
            else:
                value = _combine(entries, rule, cutoff)
            seen = plan.no_data if value is None else _learn(plan, slot, value, at)
            if seen is not None and not (seen.level is Level.NORMAL and slot.idle):
                work.append((rule, "", slot, seen, None))
            return
        known = self._series.get(rule.name, {})
        values: dict[str, float | None] = dict.fromkeys(known)
        values.update((i, _fresh(r, cutoff)) for i, r in (entries or {}).items())
        for series, value in values.items():
            existing = known.get(series)
            if existing is None:
                if value is None:
                    continue
                if len(known) >= self._max_series:
                    self._overflow[rule.name] = self._overflow.get(rule.name, 0) + 1
                    continue
                existing = self._slot(rule, series)
                known = self._series[rule.name]
            seen = plan.no_data if value is None else _learn(plan, existing, value, at)
            if seen is not None and not (seen.level is Level.NORMAL and existing.idle):
                work.append((rule, series, existing, seen, None))

    def _observe_split_threshold(
        self,
        plan: _Plan,
        readings: Mapping[str, Mapping[str, Reading]],
        cutoff: datetime | None,
        known: Mapping[str, _Slot],
        work: list[_Pending],
        added: dict[str, int],
    ) -> None:
        rule = plan.rule
        entries = readings.get(rule.metric) or {}
        lo, hi = plan.idle
        quiet_without_data = plan.no_data is None or plan.no_data.level is Level.NORMAL
        if not known and quiet_without_data:
            # No series yet and every reading normal (fresh or not): nothing to remember.
            with contextlib.suppress(TypeError):  # not a number: the full loop says so
                if all(lo < value < hi for value, _ in entries.values()):
                    return
        for instance, (reading, at) in entries.items():
            existing = known.get(instance)
            value: float | None = reading
            if cutoff is not None and at < cutoff:
                value = None
            elif not -math.inf < reading < math.inf:
                _check_reading(rule.metric, reading)
            if value is None:
                seen = plan.no_data
                if seen is None or (existing is None and seen.level is Level.NORMAL):
                    continue
            elif existing is None:
                if lo < value < hi:
                    continue  # a new series reading normal: nothing to remember yet
                seen = kinds.threshold(rule, value)
            elif existing.lo < value < existing.hi:
                continue
            else:
                seen = kinds.threshold(rule, value)
            self._queue(rule, instance, existing, seen, None, known, work, added)
        if plan.no_data is not None:
            for instance, existing in known.items():
                if instance not in entries:
                    work.append((rule, instance, existing, plan.no_data, None))

    def _observe_absent(
        self,
        rule: Rule,
        entries: Mapping[str, Reading],
        known: Mapping[str, _Slot],
        now: datetime,
        work: list[_Pending],
        added: dict[str, int],
    ) -> None:
        """A series never seen since the evaluator started counts from its first cycle. An
        idle series seen recently only remembers when."""
        assert rule.absent_for is not None
        if rule.split_by is SplitBy.NONE:
            slot = known.get("") or self._slot(rule, "")
            seen = slot.seen
            for _, at in entries.values():
                if seen is None or at > seen:
                    seen = at
            seen = seen or now
            if slot.state.is_idle and (now - seen) < rule_absent_for(rule):
                slot.seen = seen  # a fact whatever becomes of this cycle: only moves forward
                return
            age = (now - seen).total_seconds()
            work.append((rule, "", slot, kinds.absent(rule, age), seen))
            return
        for instance in dict.fromkeys([*known, *entries]):
            existing = known.get(instance)
            reading = entries.get(instance)
            last = _latest(existing.seen if existing else None, reading[1] if reading else None)
            last = last or now
            age = (now - last).total_seconds()
            if existing is not None and age < rule.absent_for and existing.state.is_idle:
                existing.seen = last
                continue
            # a new series seen recently: remembered, with nothing to count yet
            new_and_fresh = existing is None and age < rule.absent_for
            observation = None if new_and_fresh else kinds.absent(rule, age)
            self._queue(rule, instance, existing, observation, last, known, work, added)

    def _queue(
        self,
        rule: Rule,
        instance: str,
        slot: _Slot | None,
        seen: Observation | None,
        at: datetime | None,
        known: Mapping[str, _Slot],
        work: list[_Pending],
        added: dict[str, int],
    ) -> None:
        if slot is None:
            if len(known) + added.get(rule.name, 0) >= self._max_series:
                self._overflow[rule.name] = self._overflow.get(rule.name, 0) + 1
                return
            added[rule.name] = added.get(rule.name, 0) + 1
        work.append((rule, instance, slot, seen, at))

    def _apply(
        self, work: list[_Pending], *, now: datetime, silenced: Collection[str]
    ) -> CycleResult:
        result = CycleResult()
        released = self._release(now, result) if self._orphans else frozenset()
        for rule, series, slot, seen, at in work:
            if released and series_key(rule.name, series) in released:
                continue  # a released series observed this cycle: it is gone
            if slot is None:
                slot = self._slot(rule, series)
            if at is not None:
                slot.seen = at
            state, events = advance_flapping(
                rule,
                slot.state,
                seen,
                settings=self._flap,
                now=now,
                silenced=rule.name in silenced,
                new_id=self._new_id,
                instance=series or None,
            )
            if state != slot.state:
                result.previous[slot.key] = slot.state
                slot.set_state(state)
                result.changed[slot.key] = state
            result.events.extend(events)
            if series and state == IDLE and rule.kind not in _REMEMBERING:
                self._drop(slot)  # an idle series of a split rule: nothing left to remember
        return result

    def _release(self, now: datetime, result: CycleResult) -> frozenset[str]:
        """Forget the series their rule no longer has (``set_rule``), resolving their open
        incidents; the keys released."""
        released = set()
        for slot in self._orphans:
            if self._slots.get(slot.key) is not slot:
                continue  # already gone (the rule deleted, or changed back)
            state = slot.state
            if state.incident is not None:
                _, event = resolve(state.incident, now=now, notes=RESHAPED_NOTE)
                result.events.append(event)
            if state != IDLE:
                result.previous[slot.key] = state
                result.changed[slot.key] = IDLE
            self._drop(slot)
            released.add(slot.key)
        self._orphans = []
        return frozenset(released)

    def _slot_of(self, incident_id: uuid.UUID) -> _Slot:
        for slot in self._slots.values():
            incident = slot.state.incident
            if incident is not None and incident.id == incident_id:
                return slot
        raise NotFoundError("open incident", incident_id)


_LEARNING = frozenset({Kind.ANOMALY, Kind.FORECAST})
_REMEMBERING = _LEARNING | {Kind.ABSENT}  # kinds whose idle series still hold something


def _fits(rule: Rule, series: str) -> bool:
    """Whether ``rule`` has ``series``: "" when it is not split, an instance when it is."""
    return (series == "") == (rule.split_by is SplitBy.NONE)


_INF, _NEG_INF = math.inf, -math.inf


def _learn(plan: _Plan, slot: _Slot, value: float, at: float) -> Observation | None:
    """One reading of a learning kind's series: judged (``kinds.anomaly``,
    ``kinds.forecast``), then learned from. ``None``: a normal reading of an idle series,
    which changes nothing (the common case, answered without building an observation:
    this runs every cycle for every series, so it reads the plan's copies of the rule's
    fields and the slot's ``idle``)."""
    memory = slot.memory
    if plan.anomaly:
        if not isinstance(memory, Baseline):
            memory = slot.memory = Baseline()
        first = memory.first  # None until the first reading: no history yet
        band = memory.observe(at, value)
        if band is not None and first is not None and at - first >= plan.min_history:
            width = plan.sensitivity * band.spread  # the same arithmetic as Band.edges
            median = band.median
            if not median - width <= value <= median + width:
                return kinds.anomaly(plan.rule, value, band, history=at - first)
        return None if slot.idle else Observation(Level.NORMAL, value)
    rule = plan.rule
    assert rule.lookback is not None and rule.min_history is not None
    if not isinstance(memory, Trend) or memory.width != rule.lookback / BUCKETS:
        memory = slot.memory = Trend(rule.lookback)  # a new lookback: learn afresh
    memory.add(at, value)
    line = memory.line
    history = at - (memory.first if memory.first is not None else at)
    if line is None or history < rule.min_history:
        return None if slot.idle else Observation(Level.NORMAL, value)
    if slot.idle:
        # The common case: a trend far from its threshold. Worked out once a line, it answers
        # without projecting it every cycle.
        if memory.quiet_line is not line:
            assert rule.horizon is not None
            memory.quiet_line = line
            memory.quiet_until = quiet_until(
                line,
                at,
                first=rule.first_threshold,
                above=rule.direction is Direction.ABOVE,
                horizon=rule.horizon,
            )
        if at < memory.quiet_until:
            return None
    return kinds.forecast(rule, value, line, at, history=history)


def _learned_by(rule: Rule, memory: Baseline | Trend) -> bool:
    """Whether ``memory`` is what ``rule``'s series learn (``_learn``)."""
    if rule.kind is Kind.ANOMALY:
        return isinstance(memory, Baseline)
    if rule.kind is Kind.FORECAST:
        assert rule.lookback is not None
        return isinstance(memory, Trend) and memory.width == rule.lookback / BUCKETS
    return False


def _fresh(reading: Reading | None, cutoff: datetime | None) -> float | None:
    """A reading's value, or ``None`` when it was sampled before ``cutoff`` (stale)."""
    if reading is None:
        return None
    value, at = reading
    if cutoff is not None and at < cutoff:
        return None
    try:
        if -math.inf < value < math.inf:
            return value
    except TypeError:
        pass
    _check_reading("value", value)
    return value  # pragma: no cover - _check_reading raised


def _combine(
    entries: Mapping[str, Reading] | None, rule: Rule, cutoff: datetime | None
) -> float | None:
    """The instances' fresh values of one metric, combined by the rule's ``aggregate``."""
    if not entries:
        return None
    if len(entries) == 1:
        for reading in entries.values():
            return _fresh(reading, cutoff)
    fresh = [v for v in (_fresh(r, cutoff) for r in entries.values()) if v is not None]
    return combine(fresh, rule.aggregate)


@functools.lru_cache(maxsize=1024)
def _absent_delta(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def rule_absent_for(rule: Rule) -> timedelta:
    assert rule.absent_for is not None
    return _absent_delta(rule.absent_for)


def _latest(first: datetime | None, second: datetime | None) -> datetime | None:
    if first is None:
        return second
    if second is None:
        return first
    return max(first, second)
