"""Table tests: per-instance readings (``Evaluator.evaluate_series``), for rules split by
instance and for stale readings (DESIGN §1 "Rules" and "Evaluation")."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from vigil.core import Evaluator, Rule
from vigil.core.rules import Kind, NoData, SplitBy

from .support import at, counter_ids

STALE = object()  # a reading sampled long before the cycle (past stale_after)

BOTH = Rule(
    name="slow_and_failing",
    kind=Kind.COMPOSITE,
    condition="lag >= 100 and errors >= 5",
    split_by=SplitBy.INSTANCE,
    stale_after=45,
)


def per_instance(threshold: dict[str, Any]) -> Rule:
    return Rule(
        name="lag_each",
        metric="lag",
        warning=100,
        critical=200,
        split_by=SplitBy.INSTANCE,
        stale_after=45,
        **threshold,
    )


def cycles(
    rule: Rule,
    rounds: list[dict[str, dict[str, object]]],
    *,
    changes: Mapping[int, Rule] | None = None,
) -> list[tuple[int, str, str]]:
    """Each round's readings (``STALE`` for an old sample) evaluated in turn, the rule changed
    before the rounds ``changes`` names: the (round, event, instance) of every incident event."""
    evaluator = Evaluator([rule], new_id=counter_ids())
    seen: list[tuple[int, str, str]] = []
    for i, round_ in enumerate(rounds):
        if changes and i in changes:
            evaluator.set_rule(changes[i])
        now = at(i)
        readings = {
            metric: {name: _reading(value, now) for name, value in by_instance.items()}
            for metric, by_instance in round_.items()
        }
        for event in evaluator.evaluate_series(readings, now=now).events:
            assert event.incident is not None
            kind = event.kind.value.removeprefix("incident.")
            seen.append((i, kind, event.incident.instance or ""))
    return seen


def _reading(value: object, now: datetime) -> tuple[float, datetime]:
    if value is STALE:
        return (500.0, now - timedelta(seconds=600))  # a breach, were it fresh
    assert isinstance(value, int | float)
    return (float(value), now)


def kept(rule: Rule, round_: Mapping[str, Mapping[str, float]]) -> set[str]:
    """The series one round leaves state for."""
    evaluator = Evaluator([rule], new_id=counter_ids())
    readings = {m: {n: (float(v), at(0)) for n, v in b.items()} for m, b in round_.items()}
    return {
        key.rpartition("/")[2] for key in evaluator.evaluate_series(readings, now=at(0)).changed
    }


BREACH_0 = {"lag": {"a": 150, "b": 150}, "errors": {"a": 10, "b": 1}}


@pytest.mark.parametrize(
    ("rounds", "expected"),
    [
        # each instance's condition on its own readings: only "a" holds it
        ([BREACH_0, BREACH_0], [(1, "opened", "a")]),
        # a stale term is no data, which moves no counter (no_data: keep): the streak goes on
        ([BREACH_0, {"lag": {"a": STALE}, "errors": {"a": 10}}, BREACH_0], [(2, "opened", "a")]),
        # so is an instance whose readings vanish, while another's streak starts and breaks
        ([BREACH_0, {"lag": {"b": 150}, "errors": {"b": 10}}, BREACH_0], [(2, "opened", "a")]),
    ],
)
def test_a_split_composite_rule_judges_each_instance_alone(
    rounds: list[dict[str, dict[str, object]]], expected: list[tuple[int, str, str]]
) -> None:
    assert cycles(BOTH, rounds) == expected


def test_a_new_instance_reading_normal_leaves_no_series_behind() -> None:
    assert kept(BOTH, BREACH_0) == {"a"}
    assert kept(per_instance({}), {"lag": {"a": 150, "b": 50}}) == {"a"}
    # a term missing under ``no_data: ok`` reads as normal: nothing to remember either
    assert kept(dataclasses.replace(BOTH, no_data=NoData.OK), {"lag": {"c": 150}}) == set()


@pytest.mark.parametrize(
    ("no_data", "rounds", "expected"),
    [
        # a stale reading is no data: under keep it opens nothing however high it was
        (NoData.KEEP, [{"lag": {"a": STALE}}] * 3, []),
        # under alerting it is a breach at the most severe level, for that instance only
        (NoData.ALERTING, [{"lag": {"a": STALE, "b": 50}}] * 2, [(1, "opened", "a")]),
        # an instance known to the rule that sends nothing any more is no data as well
        (NoData.ALERTING, [{"lag": {"a": 50, "b": 150}}, {"lag": {"a": 50}}], [(1, "opened", "b")]),
        (NoData.KEEP, [{"lag": {"a": 50, "b": 150}}, {"lag": {"a": 50}}, {"lag": {"a": 50}}], []),
    ],
)
def test_a_split_threshold_rule_counts_stale_and_missing_instances_as_no_data(
    no_data: NoData,
    rounds: list[dict[str, dict[str, object]]],
    expected: list[tuple[int, str, str]],
) -> None:
    assert cycles(per_instance({"no_data": no_data}), rounds) == expected


def test_an_unsplit_rule_ignores_its_one_instance_once_stale() -> None:
    rule = Rule(name="lag", metric="lag", warning=100, critical=200, stale_after=45)
    assert cycles(rule, [{"lag": {"a": STALE}}] * 3) == []
    assert cycles(rule, [{"lag": {"a": 150}}] * 2) == [(1, "opened", "")]


@pytest.mark.parametrize(
    ("rule", "no_data", "expected"),
    [
        (Rule(name="lag_usual", kind=Kind.ANOMALY, metric="lag", min_history=60), NoData.KEEP, []),
        (
            Rule(name="lag_usual", kind=Kind.ANOMALY, metric="lag", min_history=60),
            NoData.ALERTING,
            [(1, "opened", "")],
        ),
        (
            Rule(name="lag_trend", kind=Kind.FORECAST, metric="lag", critical=480, horizon=7200),
            NoData.KEEP,
            [],
        ),
        (
            Rule(name="lag_trend", kind=Kind.FORECAST, metric="lag", critical=480, horizon=7200),
            NoData.ALERTING,
            [(1, "opened", "")],
        ),
    ],
)
def test_a_learning_rule_takes_its_one_stale_instance_as_no_data(
    rule: Rule, no_data: NoData, expected: list[tuple[int, str, str]]
) -> None:
    """A stale reading (a breach, were it fresh) is no data to an anomaly or forecast rule
    too: nothing under keep, the top level under alerting."""
    stale = dataclasses.replace(rule, stale_after=45, no_data=no_data)
    assert cycles(stale, [{"lag": {"a": STALE}}] * 3) == expected


def test_a_rule_newly_split_releases_its_combined_series_before_judging_it_anew() -> None:
    """Split by instance, a rule no longer has its combined series: the next cycle resolves
    that series' incident (note "rule changed", tests/core/test_kinds.py) and forgets it. The
    process's own readings (instance "") share its key, so what they read in that cycle counts
    for nothing: their new streak starts a cycle after instance "a"'s."""
    rule = Rule(name="lag_each", metric="lag", warning=100, critical=200)
    split = dataclasses.replace(rule, split_by=SplitBy.INSTANCE)
    rounds: list[dict[str, dict[str, object]]] = [{"lag": {"": 150, "a": 150}}] * 5
    assert cycles(rule, rounds, changes={2: split}) == [
        (1, "opened", ""),
        (2, "resolved", ""),
        (3, "opened", "a"),
        (4, "opened", ""),
    ]
