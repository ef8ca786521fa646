"""Table tests: each bullet of DESIGN §1 "Evaluation" has rows here."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from vigil.core import (
    DEFAULT_RULES,
    DuplicateIncidentError,
    Evaluator,
    EventKind,
    IllegalTransitionError,
    NotFoundError,
    Resolution,
    Rule,
    RuleState,
    Severity,
    Status,
    ValidationError,
    step,
)
from vigil.core.rules import Direction, Kind, NoData, SplitBy

from .support import T0, at, counter_ids, latency_rule, run

OPENED, ESCALATED, RESOLVED = "opened", "escalated", "resolved"
N = None
BELOW = {"warning": 20, "critical": 10, "direction": "below"}


def summary(readings: Sequence[float | None], **rule: Any) -> list[tuple[int, str, str]]:
    _, events = run(latency_rule(**rule), readings)
    return [
        (i, e.kind.value.removeprefix("incident."), e.incident.severity.value)
        for i, e in events
        if e.incident is not None
    ]


@pytest.mark.parametrize(
    ("readings", "rule", "expected"),
    [
        # open after breaches_required consecutive breaches, with the current reading's severity
        ([150], {}, []),
        ([150, 150], {}, [(1, OPENED, "warning")]),
        ([250, 250], {}, [(1, OPENED, "critical")]),
        ([150, 250], {}, [(1, OPENED, "critical")]),
        ([250, 150], {}, [(1, OPENED, "warning")]),
        ([100, 100], {}, [(1, OPENED, "warning")]),  # >= at the boundary
        ([99.99, 100, 99.99, 100], {}, []),
        ([150], {"breaches_required": 1}, [(0, OPENED, "warning")]),
        ([150, 150, 150], {"breaches_required": 3}, [(2, OPENED, "warning")]),
        # one normal reading breaks the streak; missing data changes no counter
        ([150, 50, 150], {}, []),
        ([150, N, 150], {}, [(2, OPENED, "warning")]),
        ([150, N, N, N, 150], {}, [(4, OPENED, "warning")]),
        # at most one open incident per rule, however long the breach
        ([150] * 20, {}, [(1, OPENED, "warning")]),
        # escalation needs breaches_required consecutive critical readings
        ([150, 150, 250, 250], {}, [(1, OPENED, "warning"), (3, ESCALATED, "critical")]),
        ([150, 150, 250, 150, 250], {}, [(1, OPENED, "warning")]),
        ([150, 150, 250, N, 250], {}, [(1, OPENED, "warning"), (4, ESCALATED, "critical")]),
        ([150, 150, 250, 250, 250, 250], {}, [(1, OPENED, "warning"), (3, ESCALATED, "critical")]),
        # severity never drops inside one incident
        ([250, 250, 150, 150, 150], {}, [(1, OPENED, "critical")]),
        # auto-resolve after recoveries_required consecutive normals
        ([150, 150, 50, 50, 50], {}, [(1, OPENED, "warning"), (4, RESOLVED, "warning")]),
        (
            [150, 150, 50, 50, 150, 50, 50, 50],
            {},
            [(1, OPENED, "warning"), (7, RESOLVED, "warning")],
        ),
        ([150, 150, 50, N, 50, 50], {}, [(1, OPENED, "warning"), (5, RESOLVED, "warning")]),
        (
            [150, 150, 50],
            {"recoveries_required": 1},
            [(1, OPENED, "warning"), (2, RESOLVED, "warning")],
        ),
        # a new incident after resolution needs a fresh streak
        (
            [150, 150, 50, 50, 50, 150, 150],
            {},
            [(1, OPENED, "warning"), (4, RESOLVED, "warning"), (6, OPENED, "warning")],
        ),
        # hysteresis: between recovery and the threshold counts as neither breach nor normal
        ([150, 150, 90, 90, 90, 90], {"recovery": 80}, [(1, OPENED, "warning")]),
        (
            [150, 150, 90, 70, 70, 70],
            {"recovery": 80},
            [(1, OPENED, "warning"), (5, RESOLVED, "warning")],
        ),
        (
            [150, 150, 70, 90, 70, 70],
            {"recovery": 80},
            [(1, OPENED, "warning"), (5, RESOLVED, "warning")],
        ),
        ([150, 150, 80, 80, 80], {"recovery": 80}, [(1, OPENED, "warning")]),  # strictly past
        ([150, 150, 250, 90, 250], {"recovery": 80}, [(1, OPENED, "warning")]),
        # with no incident open, a reading in the band is simply normal
        ([150, 90, 150], {"recovery": 80}, []),
        # direction below: lower is worse
        ([15, 15], BELOW, [(1, OPENED, "warning")]),
        ([10, 10], BELOW, [(1, OPENED, "critical")]),
        ([15, 15, 25, 25, 25], BELOW, [(1, OPENED, "warning"), (4, RESOLVED, "warning")]),
        ([15, 15, 22, 22, 22], {**BELOW, "recovery": 25}, [(1, OPENED, "warning")]),
        # null thresholds
        ([150, 150], {"warning": None}, []),
        ([250, 250], {"warning": None}, [(1, OPENED, "critical")]),
        ([1e9, 1e9], {"critical": None}, [(1, OPENED, "warning")]),
        # a disabled rule keeps counting but opens nothing
        ([150, 150, 250, 250], {"enabled": False}, []),
    ],
)
def test_evaluation_table(
    readings: list[float | None], rule: dict[str, Any], expected: list[tuple[int, str, str]]
) -> None:
    assert summary(readings, **rule) == expected


def test_the_incident_snapshots_threshold_value_and_message() -> None:
    _, events = run(latency_rule(), [231.4, 231.4])
    incident = events[0][1].incident
    assert incident is not None
    assert incident.message == "Gateway Latency exceeded critical threshold: 231.40 ms >= 200.00 ms"
    assert (incident.threshold, incident.value, incident.status) == (200, 231.4, Status.ACTIVE)
    assert incident.triggered_at == at(1)


def test_below_message_says_fell_below() -> None:
    rule = latency_rule(metric="free_slots", unit="", warning=20, critical=10, direction="below")
    _, events = run(rule, [12.5, 12.5])
    incident = events[0][1].incident
    assert incident is not None
    assert incident.message == "Free Slots fell below warning threshold: 12.50 <= 20.00"


def test_escalation_keeps_the_incident_and_its_trigger() -> None:
    """Issue 15 #5: the threshold and value stay those that opened the incident; the
    escalation's own are in its event, and the message follows the severity."""
    evaluator, events = run(latency_rule(), [150, 150, 250, 260])
    opened, escalated = events[0][1].incident, events[1][1].incident
    assert opened is not None and escalated is not None
    assert escalated.id == opened.id
    assert (escalated.severity, escalated.threshold, escalated.value) == (
        Severity.CRITICAL,
        100,
        150,
    )
    assert escalated.message.endswith("260.00 ms >= 200.00 ms")
    assert events[1][1].data == {"from": "warning", "threshold": 200, "value": 260}
    assert evaluator.state("gateway_latency").incident == escalated


@pytest.mark.parametrize(
    ("rule", "readings", "peak", "last"),
    [
        ({}, [150, 150, 180, 120, 160], 180, 160),
        ({"recovery": 80}, [150, 150, 90], 150, 90),
        ({"warning": 20, "critical": 10, "direction": "below"}, [15, 15, 8, 18], 8, 18),
    ],
)
def test_peak_and_last_value_follow_the_readings(
    rule: dict[str, Any], readings: list[float], peak: float, last: float
) -> None:
    evaluator, _ = run(latency_rule(**rule), readings)
    incident = evaluator.state("gateway_latency").incident
    assert incident is not None
    assert (incident.peak_value, incident.last_value) == (peak, last)


def test_a_steady_breach_keeps_its_incident_and_a_new_value_updates_it() -> None:
    """An open incident is observed every cycle; a reading that changes neither its last nor
    its peak value leaves it as it is (the same incident, not a copy of it every cycle)."""
    rule = latency_rule()
    state, _ = step(rule, RuleState(), 150, now=at(0))
    opened, _ = step(rule, state, 150, now=at(1))
    assert opened.incident is not None
    steady, events = step(rule, opened, 150, now=at(2))
    assert events == [] and steady.incident is opened.incident
    assert steady.breach_streak == opened.breach_streak + 1
    higher, _ = step(rule, steady, 180, now=at(3))
    assert higher.incident is not None and higher.incident.id == opened.incident.id
    assert (higher.incident.peak_value, higher.incident.last_value) == (180, 180)
    lower, _ = step(rule, higher, 160, now=at(4))
    assert lower.incident is not None
    assert (lower.incident.peak_value, lower.incident.last_value) == (180, 160)
    again, _ = step(rule, lower, 160, now=at(5))
    assert again.incident is lower.incident


def test_resolution_is_automatic_and_timed() -> None:
    _, events = run(latency_rule(), [150, 150, 50, 50, 50])
    resolved = events[-1][1].incident
    assert resolved is not None
    assert (resolved.status, resolved.resolution, resolved.resolved_by) == (
        Status.RESOLVED,
        Resolution.AUTO,
        None,
    )
    assert resolved.resolved_at == at(4)
    assert resolved.duration_s(at(99)) == 90


def test_silencing_blocks_opening_and_escalation_but_not_recovery() -> None:
    rule = latency_rule()
    # snoozed through the first two breaches: the streak still counts, so it opens on resume
    assert [(i, e.kind) for i, e in run(rule, [150, 150, 150], silenced={0, 1})[1]] == [
        (2, EventKind.INCIDENT_OPENED)
    ]
    _, events = run(rule, [150, 150, 250, 250, 50, 50, 50], silenced={2, 3, 4, 5, 6})
    assert [(i, e.kind) for i, e in events] == [
        (1, EventKind.INCIDENT_OPENED),
        (6, EventKind.INCIDENT_RESOLVED),
    ]


def test_streaks_are_exposed_for_persistence() -> None:
    evaluator, _ = run(latency_rule(), [150, 150, 50, 50])
    state = evaluator.state("gateway_latency")
    assert (state.breach_streak, state.normal_streak, state.critical_streak) == (0, 2, 0)
    evaluator, _ = run(latency_rule(), [250])
    assert evaluator.state("gateway_latency") == RuleState(1, 0, 1, None)


def test_streaks_stop_at_the_largest_count_a_rule_may_require() -> None:
    evaluator, _ = run(latency_rule(enabled=False), [250] * 150)
    assert evaluator.state("gateway_latency") == RuleState(100, 0, 100, None)
    result = evaluator.evaluate({"gateway_latency": 250}, now=at(151))
    assert result.changed == {}


# -- the evaluator as a whole --------------------------------------------------------------


def test_a_cycle_reports_changed_states_only() -> None:
    evaluator = Evaluator(DEFAULT_RULES, new_id=counter_ids())
    readings = {"gateway_latency": 50.0, "error_rate": 3.0, "memory_usage": None}
    result = evaluator.evaluate(readings, now=T0)
    assert result.changed == {"error_rate": RuleState(1, 0, 0, None)}
    assert result.events == []


@pytest.mark.parametrize(
    ("readings", "field", "fragment"),
    [
        ({"gateway_latency": math.nan}, "gateway_latency", "finite"),
        ({"gateway_latency": math.inf}, "gateway_latency", "finite"),
        ({"gateway_latency": -math.inf}, "gateway_latency", "finite"),
        ({"gateway_latency": "fast"}, "gateway_latency", "number or None"),
        ({"no_such_metric": 1.0}, "no_such_metric", "no rule"),
    ],
)
def test_bad_readings_are_rejected_before_anything_changes(
    readings: dict[str, Any], field: str, fragment: str
) -> None:
    evaluator = Evaluator(DEFAULT_RULES)
    evaluator.evaluate({"error_rate": 3.0}, now=T0)
    before = evaluator.states()
    with pytest.raises(ValidationError) as caught:
        evaluator.evaluate({"error_rate": 3.0, **readings}, now=at(1))
    assert caught.value.field == field
    assert fragment in str(caught.value)
    assert evaluator.states() == before


def test_a_boolean_reading_counts_as_zero_or_one() -> None:
    assert summary([True, True], warning=None, critical=1) == [(1, OPENED, "critical")]
    assert summary([False, False], warning=None, critical=1) == []


def test_step_rejects_a_nan_reading() -> None:
    with pytest.raises(ValidationError, match="finite"):
        step(latency_rule(), RuleState(), math.nan, now=T0)


@pytest.mark.parametrize(
    ("no_data", "readings", "opened"),
    [
        # Missing data under ``keep`` changes nothing: the streak of two breaches goes on.
        (NoData.KEEP, [150.0, None, 150.0], [(2, "warning")]),
        (NoData.KEEP, [None, None, None], []),
        # Under ``ok`` it reads as normal and ends the streak.
        (NoData.OK, [150.0, None, 150.0], []),
        # Under ``alerting`` it is a breach at the rule's top level.
        (NoData.ALERTING, [150.0, None, 150.0], [(1, "critical")]),
        (NoData.ALERTING, [None, None, None], [(1, "critical")]),
    ],
)
def test_step_takes_missing_data_as_the_rule_says(
    no_data: NoData, readings: list[float | None], opened: list[tuple[int, str]]
) -> None:
    rule, state, new_id = latency_rule(no_data=no_data), RuleState(), counter_ids()
    found: list[tuple[int, str]] = []
    for i, value in enumerate(readings):
        state, events = step(rule, state, value, now=at(i), new_id=new_id)
        found += [(i, e.incident.severity.value) for e in events if e.incident is not None]
    assert found == opened


def test_duplicate_rules_are_refused() -> None:
    with pytest.raises(ValidationError, match="duplicate"):
        Evaluator([latency_rule(), latency_rule()])


def test_changing_a_rule_keeps_its_streak_and_incident() -> None:
    evaluator, _ = run(latency_rule(), [150, 150])
    evaluator.set_rule(latency_rule(warning=300, critical=400))
    state = evaluator.state("gateway_latency")
    assert state.incident is not None and state.breach_streak == 2
    # 150 is now normal against the new thresholds: three of them resolve the incident
    events = [evaluator.evaluate({"gateway_latency": 150}, now=at(i)).events for i in range(3)]
    assert [len(e) for e in events] == [0, 0, 1]


def test_a_restored_state_continues_the_streak() -> None:
    first, _ = run(latency_rule(), [150])
    second = Evaluator([latency_rule()], states=first.states())
    result = second.evaluate({"gateway_latency": 150}, now=at(1))
    assert [e.kind for e in result.events] == [EventKind.INCIDENT_OPENED]


def test_restore_refuses_a_resolved_or_foreign_incident() -> None:
    evaluator, events = run(latency_rule(), [150, 150, 50, 50, 50])
    resolved = events[-1][1].incident
    assert resolved is not None
    with pytest.raises(ValidationError, match="only an open incident"):
        evaluator.restore("gateway_latency", RuleState(incident=resolved))
    other = Evaluator(DEFAULT_RULES)
    with pytest.raises(ValidationError, match="belongs to"):
        other.restore("error_rate", RuleState(incident=events[0][1].incident))
    with pytest.raises(NotFoundError):
        other.restore("nope", RuleState())


def test_rollback_undoes_a_cycle_as_if_it_never_ran() -> None:
    evaluator, _ = run(latency_rule(), [150])
    before = evaluator.states()
    result = evaluator.evaluate({"gateway_latency": 150}, now=at(1))
    assert [e.kind for e in result.events] == [EventKind.INCIDENT_OPENED]
    assert result.previous == {"gateway_latency": RuleState(1, 0, 0, None)}
    evaluator.rollback(result)
    assert evaluator.states() == before
    # the retry opens the incident again, exactly once
    retried = evaluator.evaluate({"gateway_latency": 150}, now=at(2))
    assert [e.kind for e in retried.events] == [EventKind.INCIDENT_OPENED]


# -- manual actions -----------------------------------------------------------------------


def test_acknowledge_then_resolve_by_hand() -> None:
    evaluator, events = run(latency_rule(), [150, 150])
    incident = events[0][1].incident
    assert incident is not None
    ack = evaluator.acknowledge(incident.id, by="ana", now=at(5), notes="  looking  ")
    assert ack.kind is EventKind.INCIDENT_ACKNOWLEDGED and ack.by == "ana"
    assert ack.incident is not None and ack.incident.notes == "looking"
    assert evaluator.state("gateway_latency").incident == ack.incident
    done = evaluator.resolve(incident.id, by="ben", now=at(6))
    assert done.incident is not None
    assert (done.incident.status, done.incident.resolution, done.incident.resolved_by) == (
        Status.RESOLVED,
        Resolution.MANUAL,
        "ben",
    )
    assert done.incident.notes == "looking"
    # the streak restarts: one more breach is not enough for a new incident
    assert evaluator.evaluate({"gateway_latency": 150}, now=at(7)).events == []
    assert len(evaluator.evaluate({"gateway_latency": 150}, now=at(8)).events) == 1


def test_an_acknowledged_incident_still_auto_resolves() -> None:
    evaluator, events = run(latency_rule(), [150, 150])
    incident = events[0][1].incident
    assert incident is not None
    evaluator.acknowledge(incident.id, by="ana", now=at(2))
    results = [evaluator.evaluate({"gateway_latency": 50}, now=at(3 + i)) for i in range(3)]
    resolved = results[-1].events[0].incident
    assert resolved is not None
    assert (resolved.status, resolved.acknowledged_by, resolved.resolution) == (
        Status.RESOLVED,
        "ana",
        Resolution.AUTO,
    )


def test_actions_on_unknown_or_closed_incidents_fail_clearly() -> None:
    evaluator, events = run(latency_rule(), [150, 150])
    incident = events[0][1].incident
    assert incident is not None
    with pytest.raises(NotFoundError, match="open incident"):
        evaluator.acknowledge(uuid.uuid4(), by="ana", now=at(3))
    evaluator.acknowledge(incident.id, by="ana", now=at(3))
    with pytest.raises(IllegalTransitionError, match="acknowledged"):
        evaluator.acknowledge(incident.id, by="ana", now=at(4))
    evaluator.resolve(incident.id, by="ana", now=at(5))
    with pytest.raises(NotFoundError):
        evaluator.resolve(incident.id, by="ana", now=at(6))


def test_sync_takes_in_changes_made_elsewhere() -> None:
    evaluator, events = run(latency_rule(), [150, 150])
    incident = events[0][1].incident
    assert incident is not None
    other, _ = run(latency_rule(), [150, 150])
    acked = other.acknowledge(incident.id, by="ana", now=at(3)).incident
    assert acked is not None
    evaluator.sync(acked)
    assert evaluator.state("gateway_latency").incident == acked
    resolved = other.resolve(incident.id, by="ana", now=at(4)).incident
    assert resolved is not None
    evaluator.sync(resolved)
    assert evaluator.state("gateway_latency") == RuleState()
    stranger, _ = run(latency_rule(), [150, 150])
    foreign = Evaluator([latency_rule()], new_id=lambda: uuid.UUID(int=99))
    foreign.evaluate({"gateway_latency": 150}, now=T0)
    opened = foreign.evaluate({"gateway_latency": 150}, now=at(1)).events[0].incident
    assert opened is not None
    with pytest.raises(DuplicateIncidentError):
        stranger.sync(opened)


# -- quiet_range: the readings that change nothing, for a replay to skip ----------------------


def test_the_quiet_range_is_below_the_first_threshold_of_idle_unsplit_rules() -> None:
    evaluator = Evaluator([Rule(metric="lag", warning=100, critical=200)])
    assert evaluator.quiet_range("lag") == (-math.inf, 100)
    evaluator.set_rule(Rule(name="lag_low", metric="lag", critical=10, direction=Direction.BELOW))
    assert evaluator.quiet_range("lag") == (10, 100)  # both rules stay as they are
    assert evaluator.quiet_range("unread") == (-math.inf, math.inf)


def test_nothing_is_quiet_once_a_streak_or_an_incident_is_under_way() -> None:
    evaluator = Evaluator([Rule(metric="lag", warning=100, critical=200)])
    evaluator.evaluate({"lag": 150.0}, now=T0)  # one breach counted
    low, high = evaluator.quiet_range("lag") or (0.0, 0.0)
    assert not low < high


@pytest.mark.parametrize(
    "other",
    [
        Rule(name="lag_gone", metric="lag", critical=100, no_data=NoData.ALERTING),
        Rule(name="lag_each", metric="lag", critical=100, split_by=SplitBy.INSTANCE),
        Rule(name="both", kind=Kind.COMPOSITE, condition="lag >= 1 and errors >= 1"),
        Rule(name="silent", kind=Kind.ABSENT, metric="lag", absent_for=60),
    ],
)
def test_no_quiet_range_where_missing_data_or_other_kinds_count(other: Rule) -> None:
    evaluator = Evaluator([Rule(metric="lag", warning=100, critical=200), other])
    assert evaluator.quiet_range("lag") is None
