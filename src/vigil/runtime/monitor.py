"""The monitor: one cycle per tick. Every instance reads its sources and stores its samples;
the leader also combines all instances' latest samples, evaluates, and commits samples,
incident changes and events in one transaction, then publishes the events."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from vigil.core import (
    DuplicateIncidentError,
    Evaluator,
    Event,
    EventKind,
    IllegalTransitionError,
    Rule,
    RuleState,
    Sample,
    combine,
)
from vigil.metrics import HealthRegistry, Metrics
from vigil.runtime.bus import EventBus
from vigil.runtime.ports import Leadership, MonitorStore
from vigil.runtime.schedule import next_tick
from vigil.runtime.silences import SilenceCache
from vigil.runtime.view import LiveView
from vigil.store import VigilStorageError

logger = logging.getLogger(__name__)

MONITOR_TASK = "vigil.monitor"
MAX_PENDING_SAMPLES = 100_000  # kept while the database is away; the oldest go first


@dataclass(frozen=True, slots=True)
class MonitorStatus:
    instance: str
    leader: bool
    cycles: int
    cycles_late: int
    last_cycle_at: datetime | None
    last_cycle_seconds: float | None
    database_ok: bool
    last_error: str | None
    pending_samples: int
    dropped_samples: int


class Monitor:
    def __init__(
        self,
        *,
        store: MonitorStore,
        metrics: Metrics,
        evaluator: Evaluator,
        bus: EventBus,
        view: LiveView,
        leadership: Leadership,
        instance: str,
        interval: float,
        clock: Callable[[], datetime],
        silences: SilenceCache | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.evaluator = evaluator
        self.bus = bus
        self.view = view
        self.leadership = leadership
        self.instance = instance
        self.interval = interval
        self.clock = clock
        self.silences = silences  # snoozes and maintenance windows; None: none
        self._pending: deque[Sample] = deque()
        self._dropped = 0
        self._cycles = 0
        self._late = 0
        self._last_at: datetime | None = None
        self._last_seconds: float | None = None
        self._database_ok = True
        self._last_error: str | None = None
        self._was_leader = False
        self._one_at_a_time = asyncio.Lock()  # cycles never overlap, whoever starts them
        bus.add_listener(self._follow)

    @property
    def health(self) -> HealthRegistry:
        return self.metrics.health

    def status(self) -> MonitorStatus:
        return MonitorStatus(
            instance=self.instance,
            leader=self.leadership.is_leader,
            cycles=self._cycles,
            cycles_late=self._late,
            last_cycle_at=self._last_at,
            last_cycle_seconds=self._last_seconds,
            database_ok=self._database_ok,
            last_error=self._last_error,
            pending_samples=len(self._pending),
            dropped_samples=self._dropped,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Cycle on a drift-corrected grid until ``stop`` is set; a running cycle always ends
        (and commits) before the loop returns."""
        self.health.register(MONITOR_TASK, stale_after=max(3 * self.interval, 60.0))
        loop = asyncio.get_running_loop()
        start = tick = loop.time()
        while not stop.is_set():
            await self.cycle()
            tick, skipped = next_tick(start, self.interval, tick, loop.time())
            if skipped:
                self._late += skipped
                logger.warning(
                    "Vigil cycle overran its %.1f s interval: %d tick(s) skipped",
                    self.interval,
                    skipped,
                )
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, tick - loop.time()))
            except TimeoutError:
                pass

    async def cycle(self) -> list[Event]:
        """One cycle; never raises for a source or database failure (they go to health)."""
        async with self._one_at_a_time:
            return await self._guarded_cycle()

    async def _guarded_cycle(self) -> list[Event]:
        started = time.perf_counter()
        now = self.clock()
        try:
            events = await self._cycle(now)
        except VigilStorageError as exc:
            self._fail(f"database unavailable: {exc}", database=True)
            events = []
        except Exception as exc:  # a bug must not kill the monitor: report it and go on
            logger.exception("Vigil monitor cycle failed")
            self._fail(f"{type(exc).__name__}: {exc}", database=self._database_ok)
            events = []
        else:
            self._database_ok = True
            self._last_error = None
            self.health.beat(MONITOR_TASK)
        self._cycles += 1
        self._last_at = now
        self._last_seconds = time.perf_counter() - started
        return events

    async def _cycle(self, now: datetime) -> list[Event]:
        local = await self.metrics.read()
        self._keep(Sample(self.instance, m, now, v) for m, v in local.items() if v is not None)
        leader = await self._elect(now)
        if leader:
            await self.bus.catch_up()  # actions taken elsewhere, before judging this cycle
        combined = await self._combine(local, since=now - timedelta(seconds=self.interval))
        self.view.set_values({**local, **combined}, at=now)
        if not leader:
            await self.store.add_samples(list(self._pending))
            self._pending.clear()
            self.view.replace_open(await self.store.active_incidents())
            return []
        readings = {metric: combined.get(metric) for metric in self.evaluator.rules}
        result = self.evaluator.evaluate(readings, now=now, silenced=await self._silenced(now))
        try:
            events = await self.store.commit_cycle(
                samples=list(self._pending), result=result, now=now
            )
        except (IllegalTransitionError, DuplicateIncidentError) as exc:
            # Someone else changed an incident meanwhile: take the database's word for it.
            logger.info("Vigil cycle conflicted with a change made elsewhere (%s): reloading", exc)
            self.evaluator.rollback(result)
            await self.bus.catch_up()
            await self.reload()
            return []
        except BaseException:
            self.evaluator.rollback(result)
            raise
        self._pending.clear()
        self.bus.publish(events)
        self.view.refresh(s.incident for s in result.changed.values() if s.incident is not None)
        return events

    async def reload(self) -> None:
        """Take rules, their states and open incidents from the database (at start, on
        becoming the leader, after a conflict)."""
        for rule in await self.store.list_rules():
            self.evaluator.set_rule(rule)
            self.view.rules[rule.metric] = rule
        states = await self.store.load_states()
        for metric in self.evaluator.rules:
            self.evaluator.restore(metric, states.get(metric) or RuleState())
        if self.silences is not None:
            self.silences.invalidate()

    async def _silenced(self, now: datetime) -> frozenset[str]:
        """Rules snoozed or in maintenance at ``now`` (see ``runtime.silences``)."""
        if self.silences is None:
            return frozenset()
        return await self.silences.silenced(now, self.evaluator.rules)

    async def _elect(self, now: datetime) -> bool:
        leader = await self.leadership.try_acquire()
        if leader and not self._was_leader:
            await self.reload()  # the previous leader's work, before evaluating anything
            [event] = await self.store.append_events(
                [Event(kind=EventKind.LEADER_CHANGED, at=now, data={"instance": self.instance})]
            )
            self.bus.publish([event])
            logger.info("Vigil instance %r is now the leader", self.instance)
        self._was_leader = leader
        return leader

    async def _combine(
        self, local: Mapping[str, float | None], *, since: datetime
    ) -> dict[str, float | None]:
        """Each rule's value across instances: this instance's fresh reading plus every other
        instance's (or pusher's) newest sample of the last interval, combined per ``aggregate``."""
        values = await self.store.latest_values(since=since, exclude_instance=self.instance)
        for metric, value in local.items():
            if value is not None:
                values.setdefault(metric, []).append(value)
        rules = self.evaluator.rules
        return {
            metric: combine(vals, rules[metric].aggregate) if metric in rules else max(vals)
            for metric, vals in values.items()
        }

    def _keep(self, samples: Iterable[Sample]) -> None:
        for sample in samples:
            if len(self._pending) >= MAX_PENDING_SAMPLES:
                self._pending.popleft()
                self._dropped += 1
            self._pending.append(sample)

    def _fail(self, message: str, *, database: bool) -> None:
        self._database_ok = not database
        self._last_error = message
        self.health.report_error(MONITOR_TASK, message)
        logger.warning("Vigil monitor: %s", message)

    def _follow(self, event: Event) -> None:
        """Keep the evaluator in step with incident and rule changes made anywhere."""
        if event.incident is not None:
            try:
                self.evaluator.sync(event.incident)
            except DuplicateIncidentError:
                logger.error("event %s names a second open incident for %r", event.id, event.metric)
        elif event.kind is EventKind.RULE_CHANGED and "rule" in event.data:
            self.evaluator.set_rule(Rule.from_dict(event.data["rule"]))
