"""Table tests for the open rule model: every kind, per-instance series, staleness, no data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from vigil.core import (
    DEFAULT_RULES,
    Evaluator,
    Event,
    EventKind,
    Kind,
    Level,
    NoData,
    Resolution,
    Rule,
    RuleState,
    SplitBy,
)
from vigil.core.evaluation import Reading, series_key, split_key

from .support import T0, at, counter_ids, latency_rule

OPENED, ESCALATED, RESOLVED = "opened", "escalated", "resolved"
Cycle = Mapping[str, Mapping[str, float | tuple[float, int]]]
Cycles = Sequence[Cycle]


def series_run(
    rules: Sequence[Rule], cycles: Sequence[Cycle], **options: Any
) -> tuple[Evaluator, list[tuple[int, Event]]]:
    """Feed ``{metric: {instance: value | (value, sampled at cycle n)}}`` per cycle (a bare
    value is sampled in its own cycle); cycles are 30 s apart."""
    evaluator = Evaluator(rules, new_id=counter_ids(), **options)
    events: list[tuple[int, Event]] = []
    for i, cycle in enumerate(cycles):
        readings: dict[str, dict[str, Reading]] = {}
        for metric, by_instance in cycle.items():
            for instance, reading in by_instance.items():
                value, when = reading if isinstance(reading, tuple) else (reading, i)
                readings.setdefault(metric, {})[instance] = (value, at(when))
        events.extend((i, e) for e in evaluator.evaluate_series(readings, now=at(i)).events)
    return evaluator, events


def kinds_of(events: list[tuple[int, Event]]) -> list[tuple[int, str, str | None]]:
    out = []
    for i, event in events:
        assert event.incident is not None
        out.append((i, event.kind.value.removeprefix("incident."), event.incident.instance))
    return out


# -- absent ---------------------------------------------------------------------------------

HEARTBEAT = Rule(name="heartbeat", kind=Kind.ABSENT, metric="hb", absent_for=60)


@pytest.mark.parametrize(
    ("cycles", "expected"),
    [
        # samples every cycle: never absent
        ([{"hb": {"a": 1}}] * 6, []),
        # the last sample at cycle 0 (t=0); absent_for 60 s is reached at cycle 2 (t=60),
        # breaches_required 2 opens at cycle 3
        ([{"hb": {"a": 1}}, {}, {}, {}, {}], [(3, OPENED, None)]),
        # samples return: three normal cycles resolve it
        (
            [{"hb": {"a": 1}}, {}, {}, {}, {"hb": {"a": 1}}, {"hb": {"a": 1}}, {"hb": {"a": 1}}],
            [(3, OPENED, None), (6, RESOLVED, None)],
        ),
        # an old sample is still a sample: what counts is its time, not when it arrives
        (
            [{"hb": {"a": (1, 0)}}, {"hb": {"a": (1, 0)}}, {"hb": {"a": (1, 0)}}, {}],
            [(3, OPENED, None)],
        ),
        # any instance's sample keeps an unsplit absent rule quiet
        ([{"hb": {"a": 1}}, {"hb": {"b": 1}}, {"hb": {"a": 1}}, {"hb": {"b": 1}}], []),
    ],
)
def test_absent_timing(cycles: Cycles, expected: list[tuple[int, str, str | None]]) -> None:
    _, events = series_run([HEARTBEAT], cycles)
    assert kinds_of(events) == expected


def test_absent_incident_says_how_long_and_snapshots_absent_for() -> None:
    _, events = series_run([HEARTBEAT], [{"hb": {"a": 1}}, {}, {}, {}])
    incident = events[0][1].incident
    assert incident is not None
    assert incident.message == "Heartbeat has had no sample for 90 s"
    assert (incident.rule, incident.metric, incident.severity.value) == (
        "heartbeat",
        "hb",
        "critical",
    )
    assert (incident.threshold, incident.value) == (60, 90)


def test_absent_never_seen_counts_from_the_first_cycle() -> None:
    _, events = series_run([HEARTBEAT], [{}] * 5)
    assert kinds_of(events) == [(3, OPENED, None)]


def test_absent_split_watches_each_instance_it_has_seen() -> None:
    rule = Rule(
        name="heartbeat", kind=Kind.ABSENT, metric="hb", absent_for=60, split_by=SplitBy.INSTANCE
    )
    both: Cycle = {"hb": {"a": 1, "b": 1}}
    one: Cycle = {"hb": {"a": 1}}
    cycles = [both, one, one, one, one]
    evaluator, events = series_run([rule], cycles)
    assert kinds_of(events) == [(3, OPENED, "b")]
    incident = events[0][1].incident
    assert incident is not None and incident.message == "Heartbeat has had no sample on b for 90 s"
    assert evaluator.series("heartbeat") == ["a", "b"]


# -- composite ------------------------------------------------------------------------------

SLOW_AND_FAILING = Rule(
    name="slow_and_failing",
    kind=Kind.COMPOSITE,
    condition="command_p95_latency >= 500 and error_rate >= 5",
)


def composite_run(condition: str, cycles: list[dict[str, float]], **fields: Any) -> list[str]:
    rule = Rule(name="c", kind=Kind.COMPOSITE, condition=condition, **fields)
    evaluator = Evaluator([rule], new_id=counter_ids())
    out = []
    for i, values in enumerate(cycles):
        for event in evaluator.evaluate(values, now=at(i)).events:
            out.append(f"{i}:{event.kind.value.removeprefix('incident.')}")
    return out


@pytest.mark.parametrize(
    ("condition", "cycles", "expected"),
    [
        ("a >= 5 and b >= 5", [{"a": 5, "b": 5}] * 2, ["1:opened"]),
        ("a >= 5 and b >= 5", [{"a": 5, "b": 4}] * 4, []),
        ("a >= 5 or b >= 5", [{"a": 0, "b": 9}] * 2, ["1:opened"]),
        # a term without data makes the whole condition no data: nothing counts (keep)
        ("a >= 5 or b >= 5", [{"a": 9}, {"a": 9}, {"a": 9, "b": 0}], []),
        (
            "a >= 5 or b >= 5",
            [{"a": 9}, {"a": 9, "b": 0}, {"a": 9}, {"a": 9, "b": 0}],
            ["3:opened"],
        ),
        ("a >= 5 and b >= 5", [{"a": 9, "b": 9}, {"a": 9}, {"a": 9, "b": 9}], ["2:opened"]),
        # precedence: and binds tighter than or -> a or (b and c)
        ("a > 0 or b > 0 and c > 0", [{"a": 1, "b": 0, "c": 0}] * 2, ["1:opened"]),
        ("a > 0 or b > 0 and c > 0", [{"a": 0, "b": 1, "c": 0}] * 2, []),
        # parentheses change it
        ("(a > 0 or b > 0) and c > 0", [{"a": 1, "b": 0, "c": 0}] * 2, []),
        ("(a > 0 or b > 0) and c > 0", [{"a": 0, "b": 1, "c": 1}] * 2, ["1:opened"]),
        # resolves after recoveries_required cycles where it does not hold
        (
            "a >= 5",
            [{"a": 5}, {"a": 5}, {"a": 1}, {"a": 1}, {"a": 1}],
            ["1:opened", "4:resolved"],
        ),
    ],
)
def test_composite_semantics(
    condition: str, cycles: list[dict[str, float]], expected: list[str]
) -> None:
    assert composite_run(condition, cycles) == expected


def test_composite_incident_records_every_term() -> None:
    evaluator = Evaluator([SLOW_AND_FAILING], new_id=counter_ids())
    readings = {"command_p95_latency": 612.0, "error_rate": 7.5}
    evaluator.evaluate(readings, now=at(0))
    [event] = evaluator.evaluate(readings, now=at(1)).events
    incident = event.incident
    assert incident is not None
    assert incident.message == (
        "Slow And Failing: command_p95_latency >= 500 and error_rate >= 5 holds "
        "(command_p95_latency 612.00, error_rate 7.50)"
    )
    assert incident.condition == "command_p95_latency >= 500 and error_rate >= 5"
    assert incident.values == {"command_p95_latency": 612.0, "error_rate": 7.5}
    assert (incident.rule, incident.metric, incident.severity.value) == (
        "slow_and_failing",
        "command_p95_latency",
        "critical",
    )
    assert (incident.threshold, incident.value) == (500, 612)


# -- split per instance ---------------------------------------------------------------------


def test_split_series_are_independent() -> None:
    rule = latency_rule(
        name="latency_by_shard", display_name="Gateway Latency", split_by=SplitBy.INSTANCE
    )
    cycles: list[Cycle] = [
        {"gateway_latency": {"shard-0": 50, "shard-1": 250}},
        {"gateway_latency": {"shard-0": 50, "shard-1": 250}},
        {"gateway_latency": {"shard-0": 150, "shard-1": 50}},
        {"gateway_latency": {"shard-0": 150, "shard-1": 50}},
        {"gateway_latency": {"shard-0": 150, "shard-1": 50}},
    ]
    evaluator, events = series_run([rule], cycles)
    assert kinds_of(events) == [
        (1, OPENED, "shard-1"),
        (3, OPENED, "shard-0"),
        (4, RESOLVED, "shard-1"),
    ]
    first = events[0][1].incident
    assert first is not None
    assert first.message == (
        "Gateway Latency exceeded critical threshold on shard-1: 250.00 ms >= 200.00 ms"
    )
    assert first.rule == "latency_by_shard" and first.series == "shard-1"
    # a resolved series of a split rule leaves nothing behind; the open one stays
    assert evaluator.series("latency_by_shard") == ["shard-0"]
    assert evaluator.state("latency_by_shard", "shard-0").incident is not None
    assert series_key("latency_by_shard", "shard-0") in evaluator.states()


def test_unsplit_combines_instances_by_aggregate() -> None:
    cycles: list[Cycle] = [{"gateway_latency": {"a": 50, "b": 160, "c": 120}}] * 2
    _, events = series_run([latency_rule()], cycles)
    assert [e.incident.value for _, e in events if e.incident] == [160]
    _, events = series_run([latency_rule(aggregate="avg")], cycles)
    assert [e.incident.value for _, e in events if e.incident] == [110]
    _, events = series_run([latency_rule(aggregate="min")], cycles)
    assert events == []


def test_series_beyond_the_limit_are_refused_and_reported() -> None:
    rule = latency_rule(name="by_shard", split_by=SplitBy.INSTANCE)
    shards = {f"s{i}": 250.0 for i in range(5)}
    evaluator, events = series_run([rule], [{"gateway_latency": shards}] * 2, max_series=3)
    assert len(evaluator.series("by_shard")) == 3
    assert evaluator.overflow() == {"by_shard": 2}
    assert len(events) == 3


# -- staleness and no data ------------------------------------------------------------------


def test_a_stale_reading_is_no_data() -> None:
    rule = latency_rule(stale_after=45)
    # sampled at cycle 0 and never again: 30 s old at cycle 1 (fresh), 60 s at cycle 2 (stale)
    cycles: list[Cycle] = [{"gateway_latency": {"a": (150, 0)}}] * 4
    evaluator, events = series_run([rule], cycles)
    assert kinds_of(events) == [(1, OPENED, None)]
    assert evaluator.state("gateway_latency").breach_streak == 2
    # the evaluator's default applies to rules without their own
    _, events = series_run([latency_rule()], cycles, stale_after=20)
    assert events == []


@pytest.mark.parametrize(
    ("policy", "readings", "expected"),
    [
        # keep: missing data changes nothing
        (NoData.KEEP, [150, 150, None, None, None, None], [(1, OPENED)]),
        (NoData.KEEP, [None] * 5, []),
        # ok: counts as normal readings, so an open incident resolves
        (NoData.OK, [150, 150, None, None, None], [(1, OPENED), (4, RESOLVED)]),
        (NoData.OK, [150, None, 150], []),
        # alerting: counts as a breach at the most severe level
        (NoData.ALERTING, [None, None], [(1, OPENED)]),
        (NoData.ALERTING, [150, 150, None, None], [(1, OPENED), (3, ESCALATED)]),
    ],
)
def test_no_data_policies(
    policy: NoData, readings: list[float | None], expected: list[tuple[int, str]]
) -> None:
    evaluator = Evaluator([latency_rule(no_data=policy)], new_id=counter_ids())
    got: list[tuple[int, str]] = []
    for i, value in enumerate(readings):
        result = evaluator.evaluate({"gateway_latency": value}, now=at(i))
        got.extend((i, e.kind.value.removeprefix("incident.")) for e in result.events)
    assert got == expected


def test_an_incident_opened_for_missing_data_says_so() -> None:
    evaluator = Evaluator([latency_rule(no_data=NoData.ALERTING)], new_id=counter_ids())
    evaluator.evaluate({}, now=at(0))
    [event] = evaluator.evaluate({}, now=at(1)).events
    incident = event.incident
    assert incident is not None
    assert incident.no_data is True and incident.severity.value == "critical"
    assert incident.message == "Gateway Latency has no data (no_data is alerting)"
    # data returns, still breaching: the incident is no longer about missing data
    evaluator.evaluate({"gateway_latency": 250}, now=at(2))
    state = evaluator.state("gateway_latency")
    assert state.incident is not None and state.incident.no_data is False
    assert state.incident.last_value == 250


def test_composite_no_data_policy_applies_to_a_missing_term() -> None:
    assert composite_run("a > 1 and b > 1", [{"a": 5}] * 2, no_data=NoData.ALERTING) == ["1:opened"]


# -- messages of event-unit rules (issue 15 #10) -----------------------------------------------


def _message(rule: Rule, value: float) -> str:
    evaluator = Evaluator([rule], new_id=counter_ids())
    evaluator.evaluate({rule.metric: value}, now=at(0))
    [event] = evaluator.evaluate({rule.metric: value}, now=at(1)).events
    assert event.incident is not None
    return event.incident.message


def test_event_unit_rules_say_what_happened() -> None:
    rules = {rule.metric: rule for rule in DEFAULT_RULES}
    assert _message(rules["bot_disconnected"], 1) == "Bot Disconnected: the bot is disconnected"
    assert _message(rules["service_failure"], 1) == "Service Failure: 1 background service failing"
    assert _message(rules["service_failure"], 3) == "Service Failure: 3 background services failing"
    custom = Rule(metric="restarts", unit="event", critical=2)
    assert _message(custom, 4) == "Restarts: 4 events (critical at 2)"
    for message in (_message(rules["bot_disconnected"], 1), _message(custom, 4)):
        assert "threshold" not in message and ">=" not in message


# -- several rules on one metric, keys ---------------------------------------------------------


def test_several_rules_watch_one_metric() -> None:
    fast = latency_rule(name="latency_fast", breaches_required=1)
    slow = latency_rule(name="latency_slow", breaches_required=3)
    evaluator = Evaluator([fast, slow], new_id=counter_ids())
    names = []
    for i in range(3):
        for event in evaluator.evaluate({"gateway_latency": 150}, now=at(i)).events:
            assert event.incident is not None and event.rule == event.incident.rule
            names.append((i, event.incident.rule))
    assert names == [(0, "latency_fast"), (2, "latency_slow")]


def test_series_keys_round_trip() -> None:
    assert series_key("r") == "r" and split_key("r") == ("r", "")
    assert split_key(series_key("r", "shard/1")) == ("r", "shard/1")


def test_states_restore_per_series() -> None:
    rule = latency_rule(name="by_shard", split_by=SplitBy.INSTANCE)
    cycles: list[Cycle] = [{"gateway_latency": {"a": 250, "b": 150}}]
    first, _ = series_run([rule], cycles)
    states = first.states()
    assert states == {
        "by_shard/a": RuleState(1, 0, 1, None),
        "by_shard/b": RuleState(1, 0, 0, None),
    }
    second = Evaluator([rule], states=states, new_id=counter_ids())
    readings = {"gateway_latency": {"a": (250.0, at(1)), "b": (50.0, at(1))}}
    [opened] = second.evaluate_series(readings, now=at(1)).events
    assert opened.incident is not None and opened.incident.instance == "a"
    assert second.series("by_shard") == ["a"]


def test_changing_the_shape_of_a_rule_keeps_only_series_with_incidents() -> None:
    evaluator = Evaluator([latency_rule()], new_id=counter_ids())
    evaluator.evaluate({"gateway_latency": 150}, now=T0)
    evaluator.set_rule(latency_rule(split_by=SplitBy.INSTANCE))
    assert evaluator.states() == {}
    at_ = T0 + timedelta(seconds=30)
    evaluator.evaluate_series({"gateway_latency": {"x": (150.0, at_)}}, now=at_)
    assert evaluator.series("gateway_latency") == ["x"]
    assert Level.CRITICAL.rank > Level.WARNING.rank
    assert isinstance(at_, datetime)


def _readings(values: Mapping[str, float], i: int) -> dict[str, dict[str, Reading]]:
    return {"gateway_latency": {k: (v, at(i)) for k, v in values.items()}}


@pytest.mark.parametrize(
    ("before", "after", "instance"),
    [
        # a rule no longer split: the instance's incident can never be evaluated again
        (SplitBy.INSTANCE, SplitBy.NONE, "a"),
        # a rule now split: the combined series' incident can never be evaluated again
        (SplitBy.NONE, SplitBy.INSTANCE, None),
    ],
)
def test_a_series_the_changed_rule_no_longer_has_resolves_on_the_next_cycle(
    before: SplitBy, after: SplitBy, instance: str | None
) -> None:
    rule = latency_rule(name="lat", split_by=before, breaches_required=1)
    evaluator = Evaluator([rule], new_id=counter_ids())
    [opened] = evaluator.evaluate_series(_readings({"a": 250}, 0), now=at(0)).events
    assert opened.incident is not None and opened.incident.instance == instance
    evaluator.set_rule(rule.updated({"split_by": after}))
    result = evaluator.evaluate_series(_readings({"a": 50}, 1), now=at(1))
    [resolved] = result.events
    assert resolved.kind is EventKind.INCIDENT_RESOLVED
    assert resolved.incident is not None and resolved.incident.id == opened.incident.id
    assert resolved.incident.resolution is Resolution.AUTO
    assert resolved.incident.resolved_by is None
    assert resolved.data == {"note": "rule changed"}
    old_key = series_key("lat", opened.incident.series)
    assert result.changed[old_key] == RuleState() and result.previous[old_key].incident
    assert evaluator.open_incidents() == []
    # the changed rule carries on with its own series: a breach opens a new incident
    [again] = evaluator.evaluate_series(_readings({"a": 250}, 2), now=at(2)).events
    assert again.kind is EventKind.INCIDENT_OPENED
    assert again.incident is not None and again.incident.id != opened.incident.id
    assert again.incident.instance == (None if after is SplitBy.NONE else "a")


def test_a_series_kept_by_a_changed_rule_keeps_its_incident() -> None:
    """A new metric or kind with the same split: the incident carries on under the new rule."""
    rule = latency_rule(name="lat", breaches_required=1)
    evaluator = Evaluator([rule], new_id=counter_ids())
    [opened] = evaluator.evaluate({"gateway_latency": 250}, now=at(0)).events
    evaluator.set_rule(latency_rule(name="lat", metric="command_latency", breaches_required=1))
    assert evaluator.evaluate({"command_latency": 250}, now=at(1)).events == []
    assert [i.id for i in evaluator.open_incidents()] == [opened.incident.id]  # type: ignore[union-attr]


def test_a_stored_series_of_another_shape_is_released_after_a_restart() -> None:
    """The rule changed while no monitor ran (another process, a rules file): the states
    restored at start still hold the old series' incident."""
    split = latency_rule(name="lat", split_by=SplitBy.INSTANCE, breaches_required=1)
    first = Evaluator([split], new_id=counter_ids())
    [opened] = first.evaluate_series(_readings({"a": 250}, 0), now=at(0)).events
    unsplit = split.updated({"split_by": SplitBy.NONE})
    second = Evaluator([unsplit], states=first.states(), new_id=counter_ids())
    result = second.evaluate_series(_readings({"a": 50}, 1), now=at(1))
    assert [(e.kind, e.incident.id) for e in result.events if e.incident] == [
        (EventKind.INCIDENT_RESOLVED, opened.incident.id)  # type: ignore[union-attr]
    ]
    assert second.states() == {"lat": RuleState()}  # only the unsplit rule's own series


def test_a_release_rolled_back_is_released_again() -> None:
    rule = latency_rule(name="lat", split_by=SplitBy.INSTANCE, breaches_required=1)
    evaluator = Evaluator([rule], new_id=counter_ids())
    evaluator.evaluate_series(_readings({"a": 250}, 0), now=at(0))
    evaluator.set_rule(rule.updated({"split_by": SplitBy.NONE}))
    failed = evaluator.evaluate_series(_readings({"a": 50}, 1), now=at(1))
    assert len(failed.events) == 1
    evaluator.rollback(failed)  # the cycle's commit failed: as if it never ran
    assert len(evaluator.open_incidents()) == 1
    retried = evaluator.evaluate_series(_readings({"a": 50}, 2), now=at(2))
    assert [e.kind for e in retried.events] == [EventKind.INCIDENT_RESOLVED]
    assert evaluator.open_incidents() == []
