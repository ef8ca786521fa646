"""What the learning kinds learned, outside the cycle: the window they learn from
(``learning_window``), the band an anomaly rule judges by (``Evaluator.band``, what the charts
draw) and a memory handed from one evaluator to another (``Evaluator.adopt``, what a restart
does after replaying the stored samples)."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import pytest

from vigil.core import Evaluator, EventKind, Rule
from vigil.core.learning import Baseline, Trend, learning_window

from .support import T0, counter_ids, latency_rule

MINUTE = 60.0
HOUR = 3600.0
DAY = 86_400.0
STEP = 5 * MINUTE


def anomaly(**overrides: object) -> Rule:
    fields: dict[str, object] = {"kind": "anomaly", "metric": "gateway_latency", "unit": "ms"}
    fields.update(overrides)
    return Rule(**fields)  # type: ignore[arg-type]


def forecast(**overrides: object) -> Rule:
    fields: dict[str, object] = {
        "kind": "forecast",
        "metric": "memory_usage",
        "critical": 480.0,
        "horizon": 2 * HOUR,
    }
    fields.update(overrides)
    return Rule(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rule", "seconds"),
    [
        (anomaly(), 7 * DAY + HOUR),  # a week for every hour of the week, and an hour
        (anomaly(min_history=14 * DAY), 14 * DAY + HOUR),  # longer history: all of it
        (forecast(), 2 * HOUR + 2 * HOUR / 20),  # the lookback and a bucket
        (forecast(lookback=HOUR, min_history=3 * HOUR), 3 * HOUR + HOUR / 20),
        (latency_rule(), 0.0),  # nothing learned
    ],
)
def test_the_window_a_rule_learns_from(rule: Rule, seconds: float) -> None:
    assert learning_window(rule) == pytest.approx(seconds)


def latency(t: float, rng: random.Random) -> float:
    return 100.0 + 40.0 * math.cos(t / DAY * 2 * math.pi) + rng.gauss(0.0, 3.0)


def learned(
    evaluator: Evaluator, seconds: float, *, start: float = 0.0, metric: str = "gateway_latency"
) -> float:
    """Feed a daily shape every STEP from ``start`` to ``seconds`` after T0; the next
    cycle's offset."""
    rng = random.Random(3)
    t = start
    while t < seconds:
        evaluator.evaluate({metric: latency(t, rng)}, now=T0 + timedelta(seconds=t))
        t += STEP
    return t


def breach(evaluator: Evaluator, t: float, value: float, cycles: int = 2) -> list[EventKind]:
    return [
        event.kind
        for k in range(cycles)
        for event in evaluator.evaluate(
            {"gateway_latency": value}, now=T0 + timedelta(seconds=t + k * STEP)
        ).events
    ]


def test_the_band_is_what_the_rule_judges_by_and_nothing_before_min_history() -> None:
    rule = anomaly(min_history=DAY, breaches_required=1)
    evaluator = Evaluator([rule], new_id=counter_ids())
    t = learned(evaluator, DAY - HOUR)
    assert evaluator.band(rule.name, at=T0 + timedelta(seconds=t - STEP)) is None  # too young
    t = learned(evaluator, 2 * DAY, start=t)
    before = evaluator.band(rule.name, at=T0 + timedelta(seconds=t - STEP))
    assert before is not None
    low, baseline, high = before
    assert low < baseline < high
    assert baseline - low == pytest.approx(high - baseline)
    # The band a breach is judged by is the one drawn, and the incident keeps it.
    now = T0 + timedelta(seconds=t)
    [opened] = evaluator.evaluate({"gateway_latency": baseline + 10 * (high - low)}, now=now).events
    drawn = evaluator.band(rule.name, at=now)
    assert drawn is not None and opened.incident is not None
    assert opened.incident.values == {
        "low": drawn[0],
        "baseline": drawn[1],
        "high": drawn[2],
        "weekly": 0.0,  # two days: the hour of the day stands in
    }
    assert opened.incident.threshold == drawn[2]


def test_a_band_is_drawn_only_for_anomaly_rules() -> None:
    rules = [latency_rule(name="plain"), forecast(name="leak")]
    evaluator = Evaluator(rules, new_id=counter_ids())
    learned(evaluator, 2 * HOUR, metric="memory_usage")
    assert evaluator.band("plain", at=T0) is None
    assert evaluator.band("leak", at=T0 + timedelta(hours=2)) is None


def test_an_adopted_memory_fires_at_once_where_a_fresh_one_waits() -> None:
    rule = anomaly(min_history=DAY)
    teacher = Evaluator([rule], new_id=counter_ids())
    t = learned(teacher, 2 * DAY)
    memories = teacher.memories()
    assert set(memories) == {rule.name} and isinstance(memories[rule.name], Baseline)

    restarted = Evaluator([rule], new_id=counter_ids())
    assert restarted.adopt(memories) == 1
    assert breach(restarted, t, 900.0) == [EventKind.INCIDENT_OPENED]

    fresh = Evaluator([rule], new_id=counter_ids())
    assert breach(fresh, t, 900.0, cycles=5) == []  # waits min_history again


def test_what_does_not_fit_is_not_adopted() -> None:
    leak = forecast(name="leak")
    teacher = Evaluator([leak, anomaly(name="odd", split_by="instance")], new_id=counter_ids())
    for k in range(200):
        now = T0 + timedelta(seconds=30 * k)
        teacher.evaluate_series(
            {
                "memory_usage": {"": (300.0 + k, now)},
                "gateway_latency": {"a": (100.0, now), "b": (100.0, now)},
            },
            now=now,
        )
    memories = teacher.memories()
    assert set(memories) == {"leak", "odd/a", "odd/b"}
    assert isinstance(memories["leak"], Trend)

    other = Evaluator(
        [
            leak.updated({"lookback": HOUR}),  # another trend window: learns afresh
            anomaly(name="odd", split_by="instance"),
        ],
        new_id=counter_ids(),
        max_series=1,  # room for one of the two instances
    )
    assert other.adopt({**memories, "gone": memories["leak"]}) == 1
    assert other.memories().keys() == {"odd/a"}
    # A series the rule does not have (unsplit for a split rule) is not taken.
    split = Evaluator([anomaly(name="odd", split_by="instance")], new_id=counter_ids())
    assert split.adopt({"odd": memories["odd/a"]}) == 0
    # A memory of one kind is not taken by a rule of another.
    swapped = Evaluator([anomaly(name="leak", metric="memory_usage")], new_id=counter_ids())
    assert swapped.adopt({"leak": memories["leak"]}) == 0
