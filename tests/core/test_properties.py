"""Invariants of evaluation over random reading sequences (hypothesis)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.core import Evaluator, Event, EventKind, Level, Rule, RuleState, Severity, step

from .support import at, counter_ids

PROPERTY = settings(deadline=None, max_examples=300)

# Readings chosen around each boundary, plus arbitrary values and missing data.
ABOVE_VALUES = [50.0, 79.9, 80.0, 90.0, 99.99, 100.0, 150.0, 199.99, 200.0, 250.0]
BELOW_VALUES = [30.0, 25.1, 25.0, 22.0, 20.01, 20.0, 15.0, 10.01, 10.0, 5.0]


@st.composite
def rules(draw: st.DrawFn, metric: str = "m") -> Rule:
    below = draw(st.booleans())
    has_warning, has_critical = draw(st.sampled_from([(True, True), (True, False), (False, True)]))
    warning, critical, recovery = (20.0, 10.0, 25.0) if below else (100.0, 200.0, 80.0)
    return Rule(
        metric=metric,
        direction="below" if below else "above",  # type: ignore[arg-type]
        warning=warning if has_warning else None,
        critical=critical if has_critical else None,
        recovery=recovery if draw(st.booleans()) else None,
        breaches_required=draw(st.integers(1, 4)),
        recoveries_required=draw(st.integers(1, 4)),
        enabled=draw(st.sampled_from([True, True, True, False])),
    )


def readings_for(
    rule: Rule, min_size: int = 0, max_size: int = 60
) -> st.SearchStrategy[list[float | None]]:
    boundary = BELOW_VALUES if rule.direction == "below" else ABOVE_VALUES
    value = st.sampled_from(boundary) | st.floats(0, 300, allow_nan=False) | st.none()
    return st.lists(value, min_size=min_size, max_size=max_size)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Rule, list[float | None], list[bool]]:
    rule = draw(rules())
    readings = draw(readings_for(rule))
    silent = draw(st.lists(st.booleans(), min_size=len(readings), max_size=len(readings)))
    return rule, readings, silent


def evaluate(
    rule: Rule, readings: Sequence[float | None], silent: Sequence[bool]
) -> tuple[list[tuple[int, Event]], list[RuleState]]:
    evaluator = Evaluator([rule], new_id=counter_ids())
    events: list[tuple[int, Event]] = []
    states: list[RuleState] = []
    for i, (value, q) in enumerate(zip(readings, silent, strict=True)):
        result = evaluator.evaluate({rule.metric: value}, now=at(i), silenced={"m"} if q else ())
        events.extend((i, event) for event in result.events)
        states.append(evaluator.state(rule.metric))
    return events, states


def present(readings: Sequence[float | None], upto: int) -> list[tuple[int, float]]:
    return [(i, v) for i, v in enumerate(readings[: upto + 1]) if v is not None]


@pytest.mark.untraced
@PROPERTY
@given(scenarios())
def test_incidents_open_and_close_only_as_the_streaks_allow(
    scenario: tuple[Rule, list[float | None], list[bool]],
) -> None:
    rule, readings, silent = scenario
    events, states = evaluate(rule, readings, silent)
    open_id: uuid.UUID | None = None
    severity: Severity | None = None
    for i, event in events:
        incident = event.incident
        assert incident is not None
        seen = present(readings, i)
        if event.kind is EventKind.INCIDENT_OPENED:
            assert open_id is None, "two open incidents for one rule"
            assert rule.enabled and not silent[i]
            last = [v for _, v in seen[-rule.breaches_required :]]
            assert len(last) == rule.breaches_required
            assert all(rule.level(v) is not Level.NORMAL for v in last)
            assert incident.severity.value == rule.level(last[-1]).value
            open_id, severity = incident.id, incident.severity
        elif event.kind is EventKind.INCIDENT_ESCALATED:
            assert incident.id == open_id and severity is Severity.WARNING
            assert rule.enabled and not silent[i]
            last = [v for _, v in seen[-rule.breaches_required :]]
            assert all(rule.level(v) is Level.CRITICAL for v in last)
            severity = incident.severity
        else:
            assert event.kind is EventKind.INCIDENT_RESOLVED and incident.id == open_id
            recovered = 0
            for _, v in reversed(seen):
                if rule.level(v) is not Level.NORMAL:
                    break
                recovered += rule.is_recovered(v)
            assert recovered == rule.recoveries_required
            open_id = severity = None
    # the state agrees with the events, and severity never drops inside an incident
    for i, state in enumerate(states):
        if state.incident is not None:
            prior = [e.incident for j, e in events if j <= i and e.incident is not None]
            assert prior[-1].id == state.incident.id
            assert state.incident.severity.rank >= prior[-1].severity.rank


@pytest.mark.untraced  # test_evaluation.py's table tests reach step()'s own lines
@PROPERTY
@given(scenarios())
def test_the_evaluator_equals_a_fold_of_step(
    scenario: tuple[Rule, list[float | None], list[bool]],
) -> None:
    rule, readings, silent = scenario
    events, states = evaluate(rule, readings, silent)
    state, new_id = RuleState(), counter_ids()
    folded: list[tuple[int, Event]] = []
    for i, (value, q) in enumerate(zip(readings, silent, strict=True)):
        state, produced = step(rule, state, value, now=at(i), silenced=q, new_id=new_id)
        folded.extend((i, e) for e in produced)
        assert states[i] == state
    assert events == folded


@pytest.mark.untraced
@PROPERTY
@given(scenarios(), st.lists(st.integers(0, 60), max_size=5))
def test_results_do_not_depend_on_how_cycles_are_batched(
    scenario: tuple[Rule, list[float | None], list[bool]], cuts: list[int]
) -> None:
    """Stopping and restoring the evaluator at any cycle (a restart) changes nothing."""
    rule, readings, silent = scenario
    expected, _ = evaluate(rule, readings, silent)
    new_id = counter_ids()
    evaluator = Evaluator([rule], new_id=new_id)
    events: list[tuple[int, Event]] = []
    for i, (value, q) in enumerate(zip(readings, silent, strict=True)):
        if i in cuts:
            evaluator = Evaluator([rule], states=evaluator.states(), new_id=new_id)
        result = evaluator.evaluate({"m": value}, now=at(i), silenced={"m"} if q else ())
        events.extend((i, e) for e in result.events)
    assert events == expected


def _anonymous(events: list[tuple[int, Event]]) -> list[tuple[int, dict[str, Any]]]:
    zero = uuid.UUID(int=0)
    out = []
    for i, event in events:
        assert event.incident is not None
        plain = dataclasses.replace(event, incident=dataclasses.replace(event.incident, id=zero))
        out.append((i, plain.to_dict()))
    return out


@pytest.mark.untraced
@PROPERTY
@given(st.data())
def test_rules_evaluated_together_behave_as_if_alone(data: st.DataObject) -> None:
    first, second = data.draw(rules("a")), data.draw(rules("b"))
    size = data.draw(st.integers(0, 40))
    readings = {
        r.metric: data.draw(readings_for(r, min_size=size, max_size=size)) for r in (first, second)
    }
    together = Evaluator([first, second], new_id=counter_ids())
    combined: dict[str, list[tuple[int, Event]]] = {"a": [], "b": []}
    for i in range(size):
        cycle = {metric: values[i] for metric, values in readings.items()}
        for event in together.evaluate(cycle, now=at(i)).events:
            assert event.metric is not None
            combined[event.metric].append((i, event))
    for rule in (first, second):
        alone, _ = evaluate(rule, readings[rule.metric], [False] * size)
        assert _anonymous(combined[rule.metric]) == _anonymous(alone)
