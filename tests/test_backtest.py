"""The replay itself: cycles in, a report out, through the real evaluator (no file, no clock)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from vigil.backtest import Cycle, replay
from vigil.core import DEFAULT_RULES, Rule
from vigil.core.flapping import FlapSettings
from vigil.core.rules import Kind, SplitBy

RULES = {rule.name: rule for rule in DEFAULT_RULES}
T0 = datetime(2026, 1, 1, tzinfo=UTC)
LATENCY = "gateway_latency"  # warning 100 ms, critical 200 ms; 2 breaches, 3 recoveries


def cycles(*readings: Mapping[str, float]) -> list[Cycle]:
    """One cycle a minute from T0, labelled by its minute; one unnamed instance."""
    return [
        Cycle(f"m{minute}", T0 + timedelta(minutes=minute), {m: {"": v} for m, v in values.items()})
        for minute, values in enumerate(readings)
    ]


def per_instance(*readings: dict[str, dict[str, float]]) -> list[Cycle]:
    return [
        Cycle(f"m{minute}", T0 + timedelta(minutes=minute), values)
        for minute, values in enumerate(readings)
    ]


def test_an_incident_opens_escalates_and_resolves_with_its_cycles_labels() -> None:
    report = replay(
        cycles(
            {LATENCY: 150},
            {LATENCY: 150},  # opens (warning) at m1
            {LATENCY: 250},
            {LATENCY: 260},  # escalates at m3
            {LATENCY: 50},
            {LATENCY: 50},
            {LATENCY: 50},  # resolves at m6
        ),
        RULES,
    )
    [outcome] = report.outcomes
    assert (outcome.metric, outcome.severity) == (LATENCY, "critical")
    assert (outcome.opened_at, outcome.escalated_at, outcome.resolved_at) == ("m1", "m3", "m6")
    assert (outcome.value, outcome.peak_value, outcome.threshold) == (150, 260, 100)
    assert outcome.duration_s == 5 * 60
    assert report.cycles == 7 and report.metrics == {LATENCY}
    assert report.per_rule() == {LATENCY: (1, 300.0)}


def test_an_incident_still_open_lasts_until_the_last_cycle() -> None:
    report = replay(
        cycles({LATENCY: 150}, {LATENCY: 150}, {LATENCY: 170}, {"error_rate": 0.1}), RULES
    )
    [outcome] = report.outcomes
    assert outcome.resolved_at is None
    assert outcome.peak_value == 170
    assert outcome.duration_s == 2 * 60  # from m1 to m3, the last cycle
    assert report.metrics == {LATENCY, "error_rate"}
    assert report.per_rule() == {LATENCY: (1, 120.0)}  # error_rate: no incident, no entry


def test_a_rule_with_no_reading_in_a_cycle_has_no_data_there() -> None:
    # the gap neither breaks nor extends the streak (no_data: keep)
    report = replay(cycles({LATENCY: 150}, {"error_rate": 0.1}, {LATENCY: 150}), RULES)
    assert [o.opened_at for o in report.outcomes] == ["m2"]


def test_nothing_to_replay_is_an_empty_report() -> None:
    report = replay([], RULES)
    assert (report.outcomes, report.cycles, report.metrics) == ([], 0, set())


def test_json_has_exactly_the_documented_keys() -> None:
    [outcome] = replay(cycles({LATENCY: 150}, {LATENCY: 150}), RULES).outcomes
    assert outcome.to_json() == {
        "rule": LATENCY,
        "metric": LATENCY,
        "instance": None,
        "severity": "warning",
        "opened_at": "m1",
        "escalated_at": None,
        "resolved_at": None,
        "flapping_at": None,
        "threshold": 100.0,
        "value": 150.0,
        "peak_value": 150.0,
    }


def test_a_composite_rule_replays_with_its_terms() -> None:
    slow = Rule(
        name="slow_and_failing",
        kind=Kind.COMPOSITE,
        condition="command_p95_latency >= 500 and error_rate >= 5",
    )
    both = {"command_p95_latency": 600, "error_rate": 7}
    report = replay(
        cycles({"command_p95_latency": 600, "error_rate": 1}, both, both),
        {slow.name: slow},
    )
    [outcome] = report.outcomes
    assert (outcome.rule, outcome.opened_at, outcome.severity) == (
        "slow_and_failing",
        "m2",
        "critical",
    )


def test_an_absent_rule_fires_when_the_trace_stops_having_its_metric() -> None:
    beat = Rule(name="beat", kind=Kind.ABSENT, metric="heartbeat", absent_for=150)
    readings = [{"heartbeat": 1.0}, {"heartbeat": 1.0}] + [{"other": 0.0}] * 5
    report = replay(cycles(*readings), {beat.name: beat})
    [outcome] = report.outcomes
    # last sample at m1; 150 s without one at m3.5: breaches at m4 and m5, opens at m5
    assert (outcome.rule, outcome.opened_at, outcome.resolved_at) == ("beat", "m5", None)


def test_a_split_rule_opens_one_incident_for_the_instance_that_breaches() -> None:
    shards = Rule(name="shards", metric=LATENCY, critical=200, split_by=SplitBy.INSTANCE)
    hot = {LATENCY: {"shard-0": 50.0, "shard-1": 250.0}}
    report = replay(per_instance(hot, hot, hot), {shards.name: shards})
    [outcome] = report.outcomes
    assert (outcome.rule, outcome.instance, outcome.opened_at) == ("shards", "shard-1", "m1")
    assert report.per_rule() == {"shards": (1, 60.0)}


# Jitter around the critical threshold, then a bounce every five minutes (2 breaches open, 3
# recoveries resolve the seeded rule's incident each time).
JITTER = [250.0, 250.0, 50.0, 250.0, 50.0] + [250.0, 250.0, 50.0, 50.0, 50.0] * 8


def test_flap_detection_holds_an_oscillating_trace_in_one_incident() -> None:
    trace = cycles(*({LATENCY: value} for value in JITTER))
    without = replay(trace, RULES)
    with_flap = replay(trace, RULES, flap=FlapSettings())
    assert len(without.outcomes) == 8 and without.flaps == {}
    assert without.notifications == 16  # opened and resolved, eight times
    [held] = with_flap.outcomes
    assert (held.opened_at, held.flapping_at, held.resolved_at) == ("m1", "m4", None)
    assert with_flap.flaps == {LATENCY: 1}
    assert with_flap.notifications == 2  # opened, flapping
    # Grouping leaves the flapping notice its own message, as the outbox does.
    grouped = replay(trace, RULES, flap=FlapSettings(), group_window=120)
    assert grouped.grouped_notifications == 2


def test_a_flap_that_calms_down_resolves_as_usual() -> None:
    calm = [50.0] * 25
    trace = cycles(*({LATENCY: value} for value in JITTER + calm))
    [held] = replay(trace, RULES, flap=FlapSettings()).outcomes
    assert held.resolved_at is not None
    # flapping ends once at most one change, in the older half, is left (below 5 %): the
    # incident resolves then, the three recoveries long since counted
    assert int(held.resolved_at.removeprefix("m")) > len(JITTER) + 3


# -- notifications with incident grouping -----------------------------------------------------

ERRORS, COMMANDS = "error_rate", "command_p95_latency"


def test_three_rules_breaching_together_are_one_message_with_grouping() -> None:
    together = {LATENCY: 250.0, ERRORS: 7.0, COMMANDS: 600.0}
    calm = {LATENCY: 10.0, ERRORS: 0.0, COMMANDS: 10.0}
    trace = cycles(together, together, calm, calm, calm)
    plain = replay(trace, RULES)
    grouped = replay(trace, RULES, group_window=120)
    # Without grouping: 3 opened + 3 resolved. With it: one opening, one resolution.
    assert (plain.notifications, grouped.notifications) == (6, 6)
    assert (grouped.grouped_notifications, grouped.groups) == (2, 1)
    assert plain.grouped_notifications == 6  # window 0: every event is a message


def test_a_late_member_is_one_follow_up_and_the_last_resolution_the_only_one() -> None:
    # Latency opens at m1; errors at m3 (within 120 s of it): a follow-up; both resolve.
    trace = cycles(
        {LATENCY: 150},
        {LATENCY: 150},
        {LATENCY: 150, ERRORS: 2},
        {LATENCY: 150, ERRORS: 2},
        {LATENCY: 10, ERRORS: 0},
        {LATENCY: 10, ERRORS: 0},
        {LATENCY: 10, ERRORS: 0},
    )
    report = replay(trace, RULES, group_window=120)
    assert report.notifications == 4
    assert (report.grouped_notifications, report.groups) == (3, 1)


def test_incidents_further_apart_than_the_window_are_told_apart() -> None:
    trace = cycles(
        {LATENCY: 150},
        {LATENCY: 150},
        {LATENCY: 10},
        {LATENCY: 10},
        {LATENCY: 10, ERRORS: 2},
        {ERRORS: 2},
        {ERRORS: 0},
        {ERRORS: 0},
        {ERRORS: 0},
    )
    report = replay(trace, RULES, group_window=60)
    assert report.grouped_notifications == report.notifications == 4
    assert report.groups == 0


def test_rules_declared_related_group_whatever_the_window() -> None:
    related = {
        name: rule.updated({"group_label": "discord"}) if name in (LATENCY, ERRORS) else rule
        for name, rule in RULES.items()
    }
    trace = cycles(
        {LATENCY: 150},
        {LATENCY: 150},
        *[{LATENCY: 150} for _ in range(10)],
        {LATENCY: 150, ERRORS: 2},
        {LATENCY: 150, ERRORS: 2},
    )
    assert replay(trace, related, group_window=60).groups == 1
    assert replay(trace, RULES, group_window=60).groups == 0
