"""Flap detection, after Nagios: a series whose level keeps changing is *flapping*.

Per rule and series the evaluator keeps the levels of the last ``window`` evaluations (21 by
default, as Nagios) and computes Nagios's weighted *percent state change*: of the
``window - 1`` possible changes between consecutive results, each change that happened counts
with a weight rising linearly from 0.8 (the oldest) to 1.2 (the newest), and the sum is taken
as a percentage of ``window - 1``. Missing older results (a series seen fewer than ``window``
times) count as normal: the evaluator starts every series from normal.

A *change* is a move between normal and breaching (warning or critical), the moves that open
and resolve incidents. Nagios also counts warning <-> critical; here that would call an
ordinary incident flapping: on the shipped sample trace, gateway latency rising through
warning to critical and falling back through warning to normal (four level changes in
sixteen minutes) scored above 20 % and was held open fifteen minutes longer than it lasted.

A series starts flapping when the percentage exceeds ``high`` and stops when it falls below
``low`` (hysteresis, so it does not flap in and out of flapping). While it flaps its one open
incident stays open and is marked ``flapping``: the changes resolve and reopen nothing, and
an ``incident.flapping`` event says so once. When it stops, ``incident.flapping_ended`` is
recorded and the normal recovery rules apply again (a series that has been normal for
``recoveries_required`` readings by then is resolved in that same cycle).

Flapping opens nothing that would not open anyway: a series that starts flapping with no
incident open records ``incident.flapping`` (without an incident, so nothing is notified) and
opens an incident only when its breach streak reaches ``breaches_required``, as always; that
incident is then held open.

Pure: no I/O, time passed in.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from dataclasses import dataclass
from datetime import datetime

from vigil.core.errors import ValidationError
from vigil.core.events import Event, EventKind
from vigil.core.kinds import Observation
from vigil.core.rules import Level, Rule
from vigil.core.transitions import IdFactory, RuleState, advance

__all__ = [
    "DEFAULT_HIGH",
    "DEFAULT_LOW",
    "DEFAULT_WINDOW",
    "FlapSettings",
    "advance_flapping",
    "percent_state_change",
    "record",
]

# Nagios's window (21 results, 20 possible changes) and its service thresholds. In Vigil's
# terms: one incident that opens and resolves is 2 changes, about 10 %; more than two
# incidents' worth of changes within the last 21 evaluations (about 10 minutes at the default
# 30 s interval) exceeds 20 % and is flapping. Below 5 % at most one change is left in the
# window, and it is in the older half: the series has been steady for about ten evaluations.
DEFAULT_WINDOW = 21
DEFAULT_HIGH = 20.0
DEFAULT_LOW = 5.0
MIN_WINDOW = 3  # two possible changes: the least that has an oldest and a newest weight
MAX_WINDOW = 100
OLDEST_WEIGHT = 0.8
NEWEST_WEIGHT = 1.2

_LETTER = {Level.NORMAL: "n", Level.WARNING: "w", Level.CRITICAL: "c"}
_CALM = "n"  # what a series is before its first evaluation


@dataclass(frozen=True, slots=True)
class FlapSettings:
    """``window`` evaluations remembered; start flapping above ``high`` percent, stop below
    ``low`` percent (0 < low < high <= 100)."""

    window: int = DEFAULT_WINDOW
    high: float = DEFAULT_HIGH
    low: float = DEFAULT_LOW

    def __post_init__(self) -> None:
        window = self.window
        if isinstance(window, bool) or not isinstance(window, int):
            raise ValidationError("flap_window", f"must be a whole number, got {window!r}")
        if not MIN_WINDOW <= window <= MAX_WINDOW:
            raise ValidationError("flap_window", f"must be from {MIN_WINDOW} to {MAX_WINDOW}")
        for name in ("high", "low"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValidationError(f"flap_{name}", f"must be a number, got {value!r}")
            if not math.isfinite(value) or not 0 < value <= 100:
                raise ValidationError(f"flap_{name}", "must be a percentage above 0, at most 100")
        if self.low >= self.high:
            raise ValidationError("flap_low", "must be below flap_high")


def record(history: str, level: Level, window: int) -> str:
    """``history`` with one more evaluation's level, the oldest dropped past ``window``.
    A history of only normal levels is "" (the same percentage, and an idle state)."""
    updated = (history + _LETTER[level])[-window:]
    return "" if updated.strip(_CALM) == "" else updated


def percent_state_change(history: str, window: int) -> float:
    """Nagios's weighted percent state change of ``history`` (one letter per evaluation,
    oldest first), over the last ``window`` results: 0 (steady) to 100 (a change at every
    result). A change is between normal and breaching (see the module's doc)."""
    results = [letter != _CALM for letter in history[-window:].rjust(window, _CALM)]
    possible = window - 1
    total = 0.0
    for index in range(1, window):
        if results[index] != results[index - 1]:
            # change ``index - 1`` of ``possible - 1``: 0 is the oldest, the last the newest
            share = (index - 1) / (possible - 1)
            total += OLDEST_WEIGHT + (NEWEST_WEIGHT - OLDEST_WEIGHT) * share
    return total * 100.0 / possible


def advance_flapping(
    rule: Rule,
    state: RuleState,
    seen: Observation | None,
    *,
    settings: FlapSettings | None,
    now: datetime,
    silenced: bool = False,
    new_id: IdFactory = uuid.uuid4,
    instance: str | None = None,
) -> tuple[RuleState, list[Event]]:
    """``vigil.core.transitions.advance`` with flap detection (``settings``; ``None``: off).

    The series' level joins its history; the percent state change decides whether it is
    flapping (see the module's doc); a flapping series' open incident is held open and
    marked ``flapping``, and the start and the end are events."""
    if settings is None or seen is None:
        return advance(
            rule, state, seen, now=now, silenced=silenced, new_id=new_id, instance=instance
        )
    history = record(state.flap_history, seen.level, settings.window)
    percent = percent_state_change(history, settings.window)
    flapping = state.flapping
    if not flapping and percent > settings.high:
        flapping = True
    elif flapping and percent < settings.low:
        flapping = False
    after, events = advance(
        rule,
        state,
        seen,
        now=now,
        silenced=silenced,
        new_id=new_id,
        instance=instance,
        hold_open=flapping,
    )
    incident = after.incident
    if incident is not None and incident.flapping != flapping:
        incident = dataclasses.replace(incident, flapping=flapping)
    # The events of this cycle carry their incident as the cycle leaves it (all of them
    # concern this series' incident: one open, or the one just resolved).
    events = [
        dataclasses.replace(e, incident=dataclasses.replace(e.incident, flapping=flapping))
        if e.incident is not None and e.incident.flapping != flapping
        else e
        for e in events
    ]
    after = dataclasses.replace(after, incident=incident, flap_history=history, flapping=flapping)
    if flapping != state.flapping:
        data = {"percent": round(percent, 2), "series": instance or ""}
        kind = EventKind.INCIDENT_FLAPPING if flapping else EventKind.INCIDENT_FLAPPING_ENDED
        # The incident that flapping concerns: the open one, or (ending in a recovery) the
        # one just resolved; the end is recorded before that resolution.
        concerned = incident or next(
            (e.incident for e in events if e.kind is EventKind.INCIDENT_RESOLVED), None
        )
        if concerned is not None:
            change = Event.for_incident(kind, concerned, at=now, data=data)
        else:
            change = Event(kind=kind, at=now, metric=_metric(rule), rule=rule.name, data=data)
        events = [change, *events] if not flapping else [*events, change]
    return after, events


def _metric(rule: Rule) -> str:
    return rule.metric or rule.parsed_condition.terms()[0].metric
