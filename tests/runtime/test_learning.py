"""Learning across restarts, on real SQLite and PostgreSQL: an anomaly or forecast rule that
learned its series goes on judging by it after Vigil restarts on the same database (the
monitor learns again from the stored samples before its first evaluation), instead of
waiting ``min_history`` again; and a learning rule added beside a metric with history judges
by that history at once."""

from __future__ import annotations

import math
import random
from datetime import timedelta

from vigil.core import EventKind, Rule, Sample
from vigil.core.learning import Baseline
from vigil.runtime import Vigil

from .support import Clock, Script, make_vigil

METRIC = "queue_latency"
STEP = 300.0  # five minutes between cycles: a day is 288 of them
FIVE_MINUTES = timedelta(seconds=STEP)
DAY = 86_400.0


def usual(k: int, rng: random.Random) -> float:
    """A daily cycle about 100 ms, and a little noise."""
    return 100.0 + 20.0 * math.sin(k * STEP / DAY * 2 * math.pi) + rng.gauss(0.0, 1.0)


async def step(vigil: Vigil, clock: Clock, script: Script, value: float) -> list[EventKind]:
    clock.advance(STEP)
    script.values = {METRIC: value}
    return [event.kind for event in await vigil.monitor.cycle() if event.incident is not None]


ANOMALY = Rule.from_dict(
    {"name": "odd_queue", "kind": "anomaly", "metric": METRIC, "min_history": DAY}
)
FORECAST = Rule.from_dict(
    {
        "name": "queue_leak",
        "kind": "forecast",
        "metric": METRIC,
        "critical": 1000.0,
        "horizon": 3600.0,
        "min_history": 6 * 3600.0,
    }
)


async def test_an_anomaly_rule_fires_at_once_after_a_restart(migrated_url: str) -> None:
    script, clock, rng = Script(), Clock(), random.Random(5)
    async with make_vigil(migrated_url, script, clock, interval=3600) as vigil:
        await vigil.add_rule(ANOMALY, by="test")
        # A day and an hour of cycles: past min_history, every hour of the day learned.
        for k in range(int(DAY / STEP) + 12):
            assert await step(vigil, clock, script, usual(k, rng)) == []
        learned = vigil.monitor.evaluator.memories()[ANOMALY.name]
        assert isinstance(learned, Baseline) and learned.band is not None
        first = learned.first
    clock.advance(STEP)  # down for a while

    async with make_vigil(migrated_url, script, clock, interval=3600) as vigil:
        # Started: its first cycle learned the stored history before judging.
        relearned = vigil.monitor.evaluator.memories()[ANOMALY.name]
        assert isinstance(relearned, Baseline) and relearned.first == first
        kinds = [*await step(vigil, clock, script, 500.0), *await step(vigil, clock, script, 500.0)]
        assert kinds == [EventKind.INCIDENT_OPENED]  # breaches_required 2: the second opens
        [incident] = vigil.view.active()
        assert incident.rule == ANOMALY.name and "unusually high" in incident.message


async def test_a_forecast_rule_keeps_its_trend_across_a_restart(migrated_url: str) -> None:
    script, clock = Script(), Clock()
    async with make_vigil(migrated_url, script, clock, interval=3600) as vigil:
        await vigil.add_rule(FORECAST, by="test")
        for _ in range(int(6 * 3600 / STEP) + 2):  # six hours, flat at 500
            assert await step(vigil, clock, script, 500.0) == []
    async with make_vigil(migrated_url, script, clock, interval=3600) as vigil:
        # A steep rise: the trend it learned before reaches 1000 within the hour at once;
        # a forecast learning afresh would wait six hours.
        kinds: list[EventKind] = []
        for value in (700.0, 900.0, 1100.0, 1300.0, 1500.0, 1700.0):
            kinds += await step(vigil, clock, script, value)
        assert EventKind.INCIDENT_OPENED in kinds


async def test_a_learning_rule_added_beside_history_judges_by_it_at_once(
    migrated_url: str,
) -> None:
    script, clock, rng = Script(), Clock(), random.Random(6)
    history = int(DAY / STEP) + 12
    async with make_vigil(migrated_url, script, clock, interval=3600) as vigil:
        # What a pusher sent over the last day and an hour, then the rule.
        await vigil.store.add_samples(
            [
                Sample("pusher", METRIC, clock.now - (history - k) * FIVE_MINUTES, usual(k, rng))
                for k in range(history)
            ]
        )
        await vigil.add_rule(ANOMALY, by="test")
        kinds = [*await step(vigil, clock, script, 500.0), *await step(vigil, clock, script, 500.0)]
        assert kinds == [EventKind.INCIDENT_OPENED]


async def test_an_instance_taking_over_learns_what_the_leader_had(
    migrated_postgres_url: str,
) -> None:
    """PostgreSQL, two instances: the follower did not evaluate while the other led; when it
    takes over it learns the history before judging, and fires at once."""
    clock, rng = Clock(), random.Random(7)
    leader_script, follower_script = Script(), Script()
    url = migrated_postgres_url
    leader = await make_vigil(url, leader_script, clock, interval=3600, instance="a").__aenter__()
    try:
        async with make_vigil(url, follower_script, clock, interval=3600, instance="b") as follower:
            assert leader.monitor.status().leader and not follower.monitor.status().leader
            await leader.add_rule(ANOMALY, by="test")
            for k in range(int(DAY / STEP) + 12):
                assert await step(leader, clock, leader_script, usual(k, rng)) == []
            await leader.aclose()  # the leader goes away
            assert ANOMALY.name not in follower.monitor.evaluator.memories()  # never evaluated
            kinds = [
                *await step(follower, clock, follower_script, 500.0),
                *await step(follower, clock, follower_script, 500.0),
            ]
            assert follower.monitor.status().leader
            assert kinds == [EventKind.INCIDENT_OPENED]
    finally:
        if leader.running:
            await leader.aclose()
