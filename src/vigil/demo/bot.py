"""The demo's simulated bot: a scripted day of trouble, compressed into a few minutes.

``activity(cycle)`` is the story, a pure function of time measured in monitor cycles, so the
live demo and its fast-clock test replay exactly the same thing. ``DemoBot`` turns it into
what a real discord.py bot would feed Vigil: command timings and failures through
``CommandStats``, HTTP responses with Discord's rate-limit headers through ``HttpTracker``,
gateway state through ``GatewaySource``, query times, and a background task's heartbeats.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Final

from vigil.metrics import (
    CommandStats,
    GatewaySource,
    HealthRegistry,
    HttpTracker,
    MetricSource,
    QueryTimer,
    Recorder,
)
from vigil.metrics import database as database_metrics

SCENARIO_CYCLES: Final = 40  # then the story starts again
REMINDERS: Final = "reminders"  # the background task that stops beating
BUCKET_LIMIT: Final = 50


@dataclass(frozen=True, slots=True)
class Activity:
    """What the simulated bot is doing at one moment."""

    phase: str
    gateway_ms: float
    commands_per_s: float
    command_ms: float  # median; durations spread around it
    failure_rate: float  # share of commands that fail
    query_ms: float
    bucket_usage: float  # share of the busiest rate-limit bucket spent, 0..1
    rate_limited_per_s: float  # HTTP 429 responses per second
    connected: bool
    reminders_beating: bool


CALM = Activity(
    phase="calm",
    gateway_ms=45.0,
    commands_per_s=4.0,
    command_ms=80.0,
    failure_rate=0.002,
    query_ms=6.0,
    bucket_usage=0.35,
    rate_limited_per_s=0.0,
    connected=True,
    reminders_beating=True,
)


def activity(cycle: float) -> Activity:
    """The story, by monitor cycle (it repeats every ``SCENARIO_CYCLES``)."""
    c = cycle % SCENARIO_CYCLES
    now = CALM
    phases: list[str] = []

    def during(start: float, end: float, name: str, **changes: object) -> None:
        nonlocal now
        if start <= c < end:
            phases.append(name)
            now = _replace(now, **changes)

    during(4, 7, "gateway latency rising", gateway_ms=150.0)
    during(7, 11, "gateway latency critical", gateway_ms=260.0)
    during(9, 15, "error storm", commands_per_s=10.0, failure_rate=0.1, command_ms=140.0)
    during(15, 21, "slow database", query_ms=72.0)
    during(19, 25, "rate-limit pressure", bucket_usage=0.92, rate_limited_per_s=0.2)
    during(23, 27, "gateway disconnected", connected=False)
    during(26, 33, "reminders task stalled", reminders_beating=False)
    during(31, 35, "command burst", commands_per_s=20.0, command_ms=420.0)
    return _replace(now, phase=" + ".join(phases) or "calm")


def _replace(base: Activity, **changes: object) -> Activity:
    from dataclasses import replace

    return replace(base, **changes)  # type: ignore[arg-type]


class DemoBot:
    """Feeds Vigil's sources as a busy bot would. ``advance(now)`` plays the activity from the
    last call up to ``now`` (seconds on the recorder's clock)."""

    def __init__(
        self,
        recorder: Recorder,
        health: HealthRegistry,
        *,
        interval: float,
        seed: int = 570,
    ) -> None:
        self.interval = interval
        self.recorder = recorder
        self.health = health
        self.commands = CommandStats(recorder, window=interval)
        self.queries = QueryTimer(recorder, window=interval)
        # 429s over the last ten cycles, not an hour: so the demo also shows them clearing.
        self.http = HttpTracker(recorder, window=interval, hits_window=10 * interval)
        self.gateway = GatewaySource(latency=self._latency_s, connect_grace=0, clock=recorder.clock)
        self._rng = random.Random(seed)
        self._started = recorder.clock()
        self._last = self._started
        self._carry = {"commands": 0.0, "queries": 0.0, "requests": 0.0, "429": 0.0}
        self.current = activity(0)
        health.register(REMINDERS, stale_after=2 * interval)
        self.gateway.connected(0)

    @property
    def sources(self) -> list[MetricSource]:
        return [self.commands, self.queries, self.http, self.gateway]

    def cycle(self, now: float) -> float:
        return (now - self._started) / self.interval

    def advance(self, now: float) -> Activity:
        elapsed = max(0.0, now - self._last)
        self._last = now
        act = self.current = activity(self.cycle(now))
        if act.connected:
            self.gateway.connected(0)
        else:
            self.gateway.disconnected(0)
        if act.reminders_beating:
            self.health.beat(REMINDERS)
        rng = self._rng
        for _ in range(self._count("commands", act.commands_per_s * elapsed)):
            duration = act.command_ms * math.exp(rng.gauss(0.0, 0.35))
            self.commands.finished(duration, failed=rng.random() < act.failure_rate)
        for _ in range(self._count("queries", 3.0 * elapsed)):
            self.recorder.record(
                database_metrics.LATENCY, act.query_ms * math.exp(rng.gauss(0, 0.2))
            )
        remaining = round(BUCKET_LIMIT * (1.0 - act.bucket_usage))
        headers = {"X-RateLimit-Limit": str(BUCKET_LIMIT), "X-RateLimit-Remaining": str(remaining)}
        for _ in range(self._count("requests", 2.0 * elapsed)):
            self.http.observe(200, headers)
        for _ in range(self._count("429", act.rate_limited_per_s * elapsed)):
            self.http.observe(429, {**headers, "X-RateLimit-Remaining": "0", "Retry-After": "1"})
        return act

    def _count(self, what: str, expected: float) -> int:
        """Whole events for a fractional expectation, carrying the remainder over."""
        total = self._carry[what] + expected
        whole = int(total)
        self._carry[what] = total - whole
        return whole

    def _latency_s(self) -> float:
        spread = self._rng.gauss(0.0, 0.04 * self.current.gateway_ms)
        return max(1.0, self.current.gateway_ms + spread) / 1000.0
