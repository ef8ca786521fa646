"""Evaluation: readings in, streaks and incidents out. Pure: no I/O, time passed in.

``step`` is the whole semantics for one rule and one reading. ``Evaluator`` applies it to many
rules per cycle, skipping rules that are idle and read normal (the common case), which changes
nothing by definition: the normal streak only counts while an incident is open.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from vigil.core.errors import DuplicateIncidentError, NotFoundError, ValidationError
from vigil.core.events import Event, EventKind
from vigil.core.incidents import Incident, Severity, Status, acknowledge, resolve
from vigil.core.rules import MAX_STREAK, Direction, Level, Rule

IdFactory = Callable[[], uuid.UUID]


@dataclass(frozen=True, slots=True)
class RuleState:
    """Where one rule stands. ``normal_streak`` counts only while an incident is open."""

    breach_streak: int = 0
    normal_streak: int = 0
    critical_streak: int = 0
    incident: Incident | None = None

    @property
    def is_idle(self) -> bool:
        return self.incident is None and self.breach_streak == 0 and self.critical_streak == 0


IDLE = RuleState()


def step(
    rule: Rule,
    state: RuleState,
    value: float | None,
    *,
    now: datetime,
    silenced: bool = False,
    new_id: IdFactory = uuid.uuid4,
) -> tuple[RuleState, list[Event]]:
    """One reading of one rule: the new state and the events it causes.

    A ``silenced`` rule (snoozed, in maintenance) and a disabled one still count streaks and
    may auto-resolve, but neither open nor escalate an incident.
    """
    if value is None:
        return state, []
    _check_reading(rule.metric, value)
    level = rule.level(value)
    incident = state.incident
    held = silenced or not rule.enabled

    if level is Level.NORMAL:
        if incident is None:
            return IDLE, []
        incident = _observe(rule, incident, value)
        if not rule.is_recovered(value):
            # Hysteresis band: neither breach nor normal.
            return RuleState(normal_streak=state.normal_streak, incident=incident), []
        normal = state.normal_streak + 1
        if normal >= rule.recoveries_required:
            _, event = resolve(incident, now=now)
            return IDLE, [event]
        return RuleState(normal_streak=normal, incident=incident), []

    # Capped at the largest count a rule may require: beyond it the state stops changing,
    # so a long breach without an incident (a snoozed rule) is not rewritten every cycle.
    breach = min(state.breach_streak + 1, MAX_STREAK)
    critical = min(state.critical_streak + 1, MAX_STREAK) if level is Level.CRITICAL else 0
    if incident is None:
        if breach >= rule.breaches_required and not held:
            opened = _open(rule, level, value, now=now, new_id=new_id)
            event = Event.for_incident(EventKind.INCIDENT_OPENED, opened, at=now)
            return RuleState(breach, 0, critical, opened), [event]
        return RuleState(breach, 0, critical, None), []

    incident = _observe(rule, incident, value)
    events: list[Event] = []
    if incident.severity is Severity.WARNING and critical >= rule.breaches_required and not held:
        threshold = rule.threshold_for(Level.CRITICAL)
        incident = dataclasses.replace(
            incident,
            severity=Severity.CRITICAL,
            threshold=threshold,
            message=message(rule, Level.CRITICAL, value, threshold),
        )
        events.append(
            Event.for_incident(
                EventKind.INCIDENT_ESCALATED, incident, at=now, data={"from": "warning"}
            )
        )
    return RuleState(breach, 0, critical, incident), events


def message(rule: Rule, level: Level, value: float, threshold: float) -> str:
    """``Gateway Latency exceeded critical threshold: 231.40 ms >= 200.00 ms``."""
    unit = f" {rule.unit}" if rule.unit else ""
    if rule.direction is Direction.ABOVE:
        verb, op = "exceeded", ">="
    else:
        verb, op = "fell below", "<="
    return (
        f"{rule.display_name} {verb} {level} threshold: "
        f"{value:.2f}{unit} {op} {threshold:.2f}{unit}"
    )


def _open(rule: Rule, level: Level, value: float, *, now: datetime, new_id: IdFactory) -> Incident:
    threshold = rule.threshold_for(level)
    return Incident(
        id=new_id(),
        metric=rule.metric,
        severity=Severity(level.value),
        status=Status.ACTIVE,
        triggered_at=now,
        threshold=threshold,
        value=value,
        peak_value=value,
        last_value=value,
        message=message(rule, level, value, threshold),
    )


def _observe(rule: Rule, incident: Incident, value: float) -> Incident:
    worse = max if rule.direction is Direction.ABOVE else min
    return dataclasses.replace(
        incident, last_value=value, peak_value=worse(incident.peak_value, value)
    )


def _check_reading(metric: str, value: object) -> None:
    # bool is an int: a source may report a state such as ``bot_disconnected`` as True.
    if not isinstance(value, int | float):
        raise ValidationError(metric, f"reading must be a number or None, got {value!r}")
    if not math.isfinite(value):
        raise ValidationError(metric, f"reading must be a finite number, got {value!r}")


@dataclass(frozen=True, slots=True)
class CycleResult:
    """What one cycle changed: the events, every rule state that differs from before, and
    what those states were (so a cycle whose commit failed can be rolled back)."""

    events: list[Event] = field(default_factory=list)
    changed: dict[str, RuleState] = field(default_factory=dict)
    previous: dict[str, RuleState] = field(default_factory=dict)


class _Slot:
    """A rule, its state and the open interval of readings that leave an idle rule unchanged."""

    __slots__ = ("hi", "lo", "rule", "state")

    def __init__(self, rule: Rule, state: RuleState) -> None:
        self.rule = rule
        self.set_state(state)

    def set_state(self, state: RuleState) -> None:
        self.state = state
        if state.is_idle:
            first = self.rule.first_threshold
            if self.rule.direction is Direction.ABOVE:
                self.lo, self.hi = -math.inf, first
            else:
                self.lo, self.hi = first, math.inf
        else:
            self.lo, self.hi = math.inf, -math.inf  # nothing is inside: always the full step


class Evaluator:
    """Holds the rules and their states; evaluates one cycle of readings at a time.

    Not thread-safe: one owner (the monitor) calls it.
    """

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        *,
        states: Mapping[str, RuleState] | None = None,
        new_id: IdFactory = uuid.uuid4,
    ) -> None:
        self._slots: dict[str, _Slot] = {}
        self._new_id = new_id
        for rule in rules:
            if rule.metric in self._slots:
                raise ValidationError("metric", f"duplicate rule for {rule.metric!r}")
            self._slots[rule.metric] = _Slot(rule, IDLE)
        for metric, state in (states or {}).items():
            self.restore(metric, state)

    # -- rules and state -------------------------------------------------------------------

    @property
    def rules(self) -> dict[str, Rule]:
        return {metric: slot.rule for metric, slot in self._slots.items()}

    def rule(self, metric: str) -> Rule:
        return self._slot(metric).rule

    def state(self, metric: str) -> RuleState:
        return self._slot(metric).state

    def states(self) -> dict[str, RuleState]:
        return {metric: slot.state for metric, slot in self._slots.items()}

    def open_incidents(self) -> list[Incident]:
        return [s.state.incident for s in self._slots.values() if s.state.incident is not None]

    def set_rule(self, rule: Rule) -> None:
        """Add a rule or replace one; a replaced rule keeps its streaks and open incident."""
        slot = self._slots.get(rule.metric)
        if slot is None:
            self._slots[rule.metric] = _Slot(rule, IDLE)
        else:
            slot.rule = rule
            slot.set_state(slot.state)

    def remove_rule(self, metric: str) -> None:
        del self._slots[self._slot(metric).rule.metric]

    def restore(self, metric: str, state: RuleState) -> None:
        """Load a persisted state (after a restart)."""
        slot = self._slot(metric)
        if state.incident is not None:
            if state.incident.metric != metric:
                raise ValidationError("incident", f"belongs to {state.incident.metric!r}")
            if not state.incident.is_open:
                raise ValidationError("incident", "a rule state holds only an open incident")
        slot.set_state(state)

    # -- evaluation ------------------------------------------------------------------------

    def evaluate(
        self,
        readings: Mapping[str, float | None],
        *,
        now: datetime,
        silenced: Collection[str] = (),
    ) -> CycleResult:
        """Apply one cycle. Atomic: invalid input raises before any state changes.

        A metric left out of ``readings`` (or given as ``None``) is missing data. A metric in
        ``silenced`` (``vigil.core.silences.silenced_metrics``) opens and escalates nothing.
        """
        slots = self._slots
        pending: list[tuple[_Slot, float]] = []
        unknown: list[str] = []
        try:
            for metric, value in readings.items():
                slot = slots.get(metric)
                if slot is None:
                    unknown.append(metric)
                elif value is not None and not slot.lo < value < slot.hi:
                    pending.append((slot, value))
        except TypeError:
            for metric, value in readings.items():
                if value is not None:
                    _check_reading(metric, value)
            raise  # pragma: no cover - the loop above always finds the culprit
        if unknown:
            raise ValidationError(unknown[0], "no rule for this metric")
        for slot, value in pending:
            _check_reading(slot.rule.metric, value)

        result = CycleResult()
        for slot, value in pending:
            rule = slot.rule
            state, events = step(
                rule,
                slot.state,
                value,
                now=now,
                silenced=rule.metric in silenced,
                new_id=self._new_id,
            )
            if state != slot.state:
                result.previous[rule.metric] = slot.state
                slot.set_state(state)
                result.changed[rule.metric] = state
            result.events.extend(events)
        return result

    def rollback(self, result: CycleResult) -> None:
        """Undo a cycle whose changes could not be stored, as if it never ran.

        Only valid for the latest cycle, before any other change."""
        for metric, state in result.previous.items():
            slot = self._slots.get(metric)
            if slot is not None:
                slot.set_state(state)

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
        """Manual resolution. The streaks restart, so a still-breaching rule must breach
        ``breaches_required`` times again before a new incident opens."""
        slot = self._slot_of(incident_id)
        assert slot.state.incident is not None
        _, event = resolve(slot.state.incident, by=by, now=now, notes=notes)
        slot.set_state(IDLE)
        return event

    def sync(self, incident: Incident) -> None:
        """Take in an incident change made elsewhere (an API call served by another instance).

        Raises ``DuplicateIncidentError`` for an open incident that is not the rule's own.
        """
        slot = self._slots.get(incident.metric)
        if slot is None:
            return
        current = slot.state.incident
        if incident.is_open:
            if current is not None and current.id != incident.id:
                raise DuplicateIncidentError(incident.metric)
            slot.set_state(dataclasses.replace(slot.state, incident=incident))
        elif current is not None and current.id == incident.id:
            slot.set_state(IDLE)

    def _slot(self, metric: str) -> _Slot:
        slot = self._slots.get(metric)
        if slot is None:
            raise NotFoundError("rule", metric)
        return slot

    def _slot_of(self, incident_id: uuid.UUID) -> _Slot:
        for slot in self._slots.values():
            incident = slot.state.incident
            if incident is not None and incident.id == incident_id:
                return slot
        raise NotFoundError("open incident", incident_id)
