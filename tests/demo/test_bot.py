"""The demo's scenario, played on a fast clock through a real Vigil on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vigil.core import DEFAULT_RULES, EventKind, Severity
from vigil.demo.bot import SCENARIO_CYCLES, DemoBot, activity
from vigil.metrics import HealthRegistry, Metrics, Recorder
from vigil.notify import Channel
from vigil.runtime import Vigil
from vigil.runtime.notifier import DeliveryPolicy
from vigil.settings import Settings
from vigil.store import Store

from ..notify.receiver import serving
from ..runtime.support import Started

INTERVAL = 3.0
NAMES = {rule.metric: rule.display_name for rule in DEFAULT_RULES}
T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


class Mono:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_story_covers_every_default_rule_it_promises() -> None:
    phases = {activity(c).phase for c in range(SCENARIO_CYCLES)}
    assert "calm" in phases
    for episode in (
        "gateway latency critical",
        "error storm",
        "slow database",
        "rate-limit pressure",
        "gateway disconnected",
        "reminders task stalled",
        "command burst",
    ):
        assert any(episode in phase for phase in phases), episode
    assert activity(3).phase == activity(3 + SCENARIO_CYCLES).phase  # it repeats


async def test_the_demo_opens_escalates_and_resolves_incidents_and_notifies(
    sqlite_url: str,
) -> None:
    mono = Mono()
    recorder = Recorder(clock=mono)
    health = HealthRegistry(clock=mono)
    # The loop's own cycles wait an hour: the test runs each cycle. The hub spans that interval,
    # as Vigil requires; the bot's sources keep their own simulated 3 s windows.
    # Grouping off: its window is two of these hour-long intervals, so the whole story would be
    # one group, and this test counts one message per incident event.
    settings = Settings(database_url=sqlite_url, interval=3600, instance="demo", group_window=0)
    metrics = Metrics(recorder=recorder, health=health, window=settings.interval)
    bot = DemoBot(recorder, health, interval=INTERVAL)
    wall = [T0]
    # The health registry judges every task on the test's fast clock (3 s a cycle, cycles run
    # back to back), but the dispatcher beats on real time, when an event wakes it or every
    # check_every: a long check_every gives it a limit (three of them) the story never reaches.
    # Every incident event still wakes it to deliver.
    vigil = Vigil(
        settings,
        sources=bot.sources,
        process_metrics=False,
        metrics=metrics,
        clock=lambda: wall[0],
        delivery=DeliveryPolicy(check_every=3600),
    )
    events = []
    async with serving() as receiver:
        async with await Store.open(sqlite_url) as store:  # the demo's local channel
            await store.add_channel(Channel(name="demo", url=receiver.url("/demo")), now=T0)
        async with Started(vigil):
            for _ in range(SCENARIO_CYCLES):  # the whole story, once
                for _ in range(6):  # the bot acts between cycles, half a second at a time
                    mono.now += INTERVAL / 6
                    bot.advance(mono.now)
                wall[0] += timedelta(seconds=INTERVAL)
                events += await vigil.monitor.cycle()
            leftover = vigil.view.active()
            incident_events = [e for e in events if e.incident is not None]
            await receiver.wait_for(lambda: len(receiver.on("/demo")) >= len(incident_events))
        # one message per incident event, each once, naming its incident
        assert len(receiver.on("/demo")) == len(incident_events)
        assert set(receiver.copies().values()) == {1}
        titles = [str(hit.body.get("title", "")) for hit in receiver.on("/demo")]
        for event in incident_events:
            assert event.incident is not None
            name = NAMES[event.incident.metric]
            assert any(name in title for title in titles), name

    def kinds(metric: str) -> list[tuple[EventKind, Severity]]:
        return [(e.kind, e.incident.severity) for e in events if e.metric == metric and e.incident]

    assert kinds("gateway_latency") == [
        (EventKind.INCIDENT_OPENED, Severity.WARNING),
        (EventKind.INCIDENT_ESCALATED, Severity.CRITICAL),
        (EventKind.INCIDENT_RESOLVED, Severity.CRITICAL),
    ]
    for metric in (
        "error_rate",
        "command_p95_latency",
        "database_query_time",
        "api_rate_limit_usage",
        "api_rate_limit_hits",
        "bot_disconnected",
        "service_failure",
    ):
        opened_then_resolved = [k for k, _ in kinds(metric)]
        assert opened_then_resolved[0] is EventKind.INCIDENT_OPENED, metric
        assert opened_then_resolved[-1] is EventKind.INCIDENT_RESOLVED, metric
    assert leftover == []  # after the story, everything has recovered by itself
