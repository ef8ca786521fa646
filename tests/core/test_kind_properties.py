"""Invariants of every kind of rule, split or not, over random per-instance readings."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.core import (
    Aggregate,
    Evaluator,
    Event,
    EventKind,
    Kind,
    Level,
    NoData,
    Rule,
    Severity,
    SplitBy,
    combine,
)
from vigil.core.evaluation import Reading, series_key

from .support import at, counter_ids

PROPERTY = settings(deadline=None, max_examples=200)
INSTANCES = ("a", "b")
VALUES = [0.0, 50.0, 99.0, 100.0, 150.0, 200.0, 250.0]

# One cycle: per metric and instance, a new sample's value, or None (no new sample).
CycleSpec = dict[str, dict[str, float | None]]


@st.composite
def any_rules(draw: st.DrawFn, name: str = "r") -> Rule:
    kind = draw(st.sampled_from(Kind))
    common: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "split_by": draw(st.sampled_from(SplitBy)),
        "breaches_required": draw(st.integers(1, 3)),
        "recoveries_required": draw(st.integers(1, 3)),
        "enabled": draw(st.sampled_from([True, True, False])),
        "stale_after": draw(st.sampled_from([None, 45.0, 75.0])),
    }
    if kind is not Kind.ABSENT:
        common["no_data"] = draw(st.sampled_from(NoData))
    if kind is Kind.THRESHOLD:
        has = draw(st.sampled_from([(True, True), (True, False), (False, True)]))
        return Rule(
            metric="m",
            warning=100.0 if has[0] else None,
            critical=200.0 if has[1] else None,
            recovery=draw(st.sampled_from([None, 50.0])),
            aggregate=draw(st.sampled_from(Aggregate)),
            **common,
        )
    if kind is Kind.ABSENT:
        return Rule(metric="m", absent_for=draw(st.sampled_from([30.0, 60.0, 90.0])), **common)
    if kind is Kind.ANOMALY:
        return Rule(
            metric="m",
            sensitivity=draw(st.sampled_from([0.5, 4.0])),
            min_history=60.0,
            severity=draw(st.sampled_from([Level.WARNING, Level.CRITICAL])),
            **common,
        )
    if kind is Kind.FORECAST:
        has = draw(st.sampled_from([(True, True), (True, False), (False, True)]))
        return Rule(
            metric="m",
            warning=100.0 if has[0] else None,
            critical=200.0 if has[1] else None,
            horizon=draw(st.sampled_from([60.0, 600.0])),
            lookback=300.0,
            min_history=120.0,
            **common,
        )
    condition = draw(
        st.sampled_from(
            ["m >= 100 and n >= 100", "m >= 200 or n < 50", "(m > 99 or n > 99) and m < 250"]
        )
    )
    return Rule(
        condition=condition,
        severity=draw(st.sampled_from([Level.WARNING, Level.CRITICAL])),
        **common,
    )


def cycles_strategy(size: int | None = None) -> st.SearchStrategy[list[CycleSpec]]:
    sample = st.sampled_from(VALUES) | st.none() | st.none() | st.none()
    cycle = st.fixed_dictionaries(
        {m: st.fixed_dictionaries({i: sample for i in INSTANCES}) for m in ("m", "n")}
    )
    if size is not None:
        return st.lists(cycle, min_size=size, max_size=size)
    return st.lists(cycle, max_size=30)


def readings_per_cycle(cycles: Sequence[CycleSpec]) -> list[dict[str, dict[str, Reading]]]:
    """What the monitor hands over each cycle: every instance's newest sample so far."""
    newest: dict[str, dict[str, Reading]] = {}
    out = []
    for i, cycle in enumerate(cycles):
        for metric, by_instance in cycle.items():
            for instance, value in by_instance.items():
                if value is not None:
                    newest.setdefault(metric, {})[instance] = (value, at(i))
        out.append({metric: dict(by) for metric, by in newest.items()})
    return out


def run(
    rules: Sequence[Rule],
    cycles: Sequence[CycleSpec],
    silent: Sequence[bool] = (),
    cuts: Sequence[int] = (),
) -> list[tuple[int, Event]]:
    new_id = counter_ids()
    evaluator = Evaluator(rules, new_id=new_id)
    events: list[tuple[int, Event]] = []
    for i, readings in enumerate(readings_per_cycle(cycles)):
        if i in cuts:  # a restart: only the persisted states survive
            evaluator = Evaluator(rules, states=evaluator.states(), new_id=new_id)
        silenced = {r.name for r in rules} if i < len(silent) and silent[i] else set()
        result = evaluator.evaluate_series(readings, now=at(i), silenced=silenced)
        events.extend((i, e) for e in result.events)
        for key, state in evaluator.states().items():
            if state.normal_streak:
                assert state.incident is not None, key  # normal streak only while open
            if state.incident is not None:
                assert series_key(state.incident.rule, state.incident.series) == key
    return events


@pytest.mark.untraced  # table tests reach what only these did (test_split_series, test_learning)
@PROPERTY
@given(any_rules(), cycles_strategy(), st.data())
def test_every_kind_keeps_the_incident_invariants(
    rule: Rule, cycles: list[CycleSpec], data: st.DataObject
) -> None:
    silent = data.draw(st.lists(st.booleans(), min_size=len(cycles), max_size=len(cycles)))
    open_by_series: dict[str, uuid.UUID] = {}
    severity: dict[uuid.UUID, Severity] = {}
    for i, event in run([rule], cycles, silent):
        incident = event.incident
        assert incident is not None
        assert incident.rule == rule.name == event.rule
        key = series_key(incident.rule, incident.series)
        if rule.split_by is SplitBy.NONE:
            assert incident.instance is None
        else:
            assert incident.instance in INSTANCES
        if event.kind is EventKind.INCIDENT_OPENED:
            assert key not in open_by_series  # at most one open incident per rule and series
            assert rule.enabled and not silent[i]
            open_by_series[key] = incident.id
            severity[incident.id] = incident.severity
        else:
            assert open_by_series.get(key) == incident.id
            if event.kind is EventKind.INCIDENT_ESCALATED:
                assert rule.enabled and not silent[i]
                assert (severity[incident.id], incident.severity) == (
                    Severity.WARNING,
                    Severity.CRITICAL,
                )
            assert incident.severity.rank >= severity[incident.id].rank  # never drops
            severity[incident.id] = incident.severity
            if event.kind is EventKind.INCIDENT_RESOLVED:
                del open_by_series[key]
        if rule.kind is Kind.COMPOSITE and event.kind is EventKind.INCIDENT_OPENED:
            assert incident.condition == rule.condition
            assert incident.no_data or set(incident.values or {}) == set(rule.metrics)


@pytest.mark.untraced  # table tests reach what only these did (test_split_series, test_learning)
@PROPERTY
@given(any_rules(), cycles_strategy(), st.lists(st.integers(0, 30), max_size=4))
def test_every_kind_is_independent_of_how_cycles_are_batched(
    rule: Rule, cycles: list[CycleSpec], cuts: list[int]
) -> None:
    """Restarting from the persisted states at any cycle changes nothing (absent rules: given
    every instance's newest sample, as the monitor reads it from the store). Not so for the
    learning kinds: what they learned is not persisted, a restart learns it again."""
    if rule.kind in (Kind.ANOMALY, Kind.FORECAST):
        cuts = []
    if rule.kind is Kind.ABSENT:
        cycles = [{"m": {"a": 1.0, "b": 1.0}, "n": {}}, *cycles]  # seen before any restart
        cuts = [c + 1 for c in cuts]
    assert run([rule], cycles, cuts=cuts) == run([rule], cycles)


def _anonymous(events: list[tuple[int, Event]]) -> list[tuple[int, dict[str, Any]]]:
    zero = uuid.UUID(int=0)
    out = []
    for i, event in events:
        assert event.incident is not None
        plain = dataclasses.replace(event, incident=dataclasses.replace(event.incident, id=zero))
        out.append((i, plain.to_dict()))
    return out


@pytest.mark.untraced  # table tests reach what only these did (test_split_series, test_learning)
@PROPERTY
@given(any_rules("first"), any_rules("second"), cycles_strategy())
def test_rules_of_every_kind_evaluated_together_behave_as_if_alone(
    first: Rule, second: Rule, cycles: list[CycleSpec]
) -> None:
    together = run([first, second], cycles)
    for rule in (first, second):
        mine = [(i, e) for i, e in together if e.rule == rule.name]
        assert _anonymous(mine) == _anonymous(run([rule], cycles))


@st.composite
def threshold_rules(draw: st.DrawFn) -> Rule:
    has = draw(st.sampled_from([(True, True), (True, False), (False, True)]))
    return Rule(
        metric="m",
        warning=100.0 if has[0] else None,
        critical=200.0 if has[1] else None,
        recovery=draw(st.sampled_from([None, 50.0])),
        aggregate=draw(st.sampled_from(Aggregate)),
        breaches_required=draw(st.integers(1, 3)),
        recoveries_required=draw(st.integers(1, 3)),
    )


@pytest.mark.untraced
@PROPERTY
@given(threshold_rules(), cycles_strategy())
def test_an_unsplit_threshold_rule_behaves_exactly_as_before(
    rule: Rule, cycles: list[CycleSpec]
) -> None:
    """``split_by: none``: per-instance readings give what the combined value always gave
    (the ``evaluate`` of one value per metric, which the existing tests pin)."""
    series = Evaluator([rule], new_id=counter_ids())
    combined = Evaluator([rule], new_id=counter_ids())
    for i, cycle in enumerate(cycles):
        fresh = {inst: v for inst, v in cycle["m"].items() if v is not None}
        readings = {"m": {inst: (v, at(i)) for inst, v in fresh.items()}}
        value = combine(fresh.values(), rule.aggregate)
        got = series.evaluate_series(readings, now=at(i))
        expected = combined.evaluate({"m": value}, now=at(i))
        assert got.events == expected.events
        assert got.changed == expected.changed


@pytest.mark.untraced  # table tests reach what only these did (test_split_series, test_learning)
@PROPERTY
@given(
    any_rules(),
    any_rules(),
    cycles_strategy(),
    st.integers(0, 30),
    st.booleans(),
)
def test_a_changed_rule_leaves_no_incident_it_cannot_resolve(
    before: Rule, after: Rule, cycles: list[CycleSpec], change: int, restart: bool
) -> None:
    """A rule replaced by any other (kind, split, thresholds), in the running evaluator or
    while none ran: one cycle later, every open incident is on a series the new rule has, and
    the incidents' lifecycle stays whole (opened once, resolved once, one open per series)."""
    new_id = counter_ids()
    evaluator = Evaluator([before], new_id=new_id)
    opened: set[uuid.UUID] = set()
    open_by_series: dict[str, uuid.UUID] = {}
    rule = before
    for i, readings in enumerate(readings_per_cycle(cycles)):
        if i == change:
            rule = after
            if restart:
                evaluator = Evaluator([after], states=evaluator.states(), new_id=new_id)
            else:
                evaluator.set_rule(after)
        for event in evaluator.evaluate_series(readings, now=at(i)).events:
            incident = event.incident
            assert incident is not None
            key = series_key(incident.rule, incident.series)
            if event.kind is EventKind.INCIDENT_OPENED:
                assert key not in open_by_series and incident.id not in opened
                opened.add(incident.id)
                open_by_series[key] = incident.id
            else:
                assert open_by_series.get(key) == incident.id
                if event.kind is EventKind.INCIDENT_RESOLVED:
                    del open_by_series[key]
        if i >= change:
            split = rule.split_by is not SplitBy.NONE
            for incident in evaluator.open_incidents():
                assert (incident.instance is not None) == split, incident
    assert {i.id for i in evaluator.open_incidents()} == set(open_by_series.values())
