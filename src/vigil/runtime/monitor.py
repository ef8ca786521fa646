"""The monitor: one cycle per tick. Every instance reads its sources and stores its samples;
the leader also combines all instances' latest samples, evaluates, and commits samples,
incident changes and events in one transaction (their notifications claimed in it for the
dispatcher of this process, which it hands them to), then publishes the events.

The leader's own samples are history only: it evaluates its fresh readings in memory, and no
one else reads them back. So it writes them in batches of ``sample_batch`` cycles, with the
first cycle that writes anyway (an incident change, an event, a streak), and at a clean stop;
a cycle with nothing to write opens no transaction. What a crash can lose is the last
``sample_batch`` cycles of this instance's own readings, never an incident, a streak, an event
or a pushed sample. A follower writes its samples every cycle: the leader reads them."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from vigil.core import (
    DuplicateIncidentError,
    Evaluator,
    Event,
    EventKind,
    IllegalTransitionError,
    NotFoundError,
    Rule,
    RuleState,
    Sample,
    ValidationError,
)
from vigil.core.evaluation import split_key
from vigil.metrics import HealthRegistry, Metrics
from vigil.runtime.bus import EventBus
from vigil.runtime.learning import Learner
from vigil.runtime.ports import Handoff, Leadership, MonitorStore
from vigil.runtime.schedule import next_tick
from vigil.runtime.silences import SilenceCache
from vigil.runtime.view import LiveView
from vigil.store import VigilStorageError

logger = logging.getLogger(__name__)

MONITOR_TASK = "vigil.monitor"
MAX_PENDING_SAMPLES = 100_000  # kept while the database is away; the oldest go first
STALE_INTERVALS = 2  # a reading older than this many intervals is no data (DESIGN section 1)
RULE_EVENTS = frozenset({EventKind.RULE_CREATED, EventKind.RULE_CHANGED, EventKind.RULE_DELETED})


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
    # Split rules whose instances outnumber VIGIL_MAX_SERIES_PER_RULE: series refused in the
    # last cycle, by rule (the rule does not grow past the limit).
    series_overflow: dict[str, int] = field(default_factory=dict)


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
        group_window: float = 0.0,
        sample_batch: int = 1,
        learner: Learner | None = None,
        handoff: Handoff | None = None,
    ) -> None:
        """``sample_batch``: cycles of the leader's own samples written in one transaction
        (1: every cycle). ``handoff``: the dispatcher in this process, which takes a cycle's
        notifications from its transaction (no claim of its own to wait for)."""
        if sample_batch < 1:
            raise ValueError(f"sample_batch must be at least 1, got {sample_batch!r}")
        self.store = store
        self.learner = learner  # the learning rules' history, from the store
        self.metrics = metrics
        self.evaluator = evaluator
        self.bus = bus
        self.view = view
        self.leadership = leadership
        if not instance or len(instance) > 100:  # as ``Sample`` checks it (see ``_cycle``)
            raise ValidationError("instance", "must be 1-100 characters")
        self.instance = instance
        # How far back the readings go (the rules' longest look), for the rules' generation.
        self._horizon: tuple[int, float] = (-1, 0.0)
        self.interval = interval
        self.clock = clock
        self.silences = silences  # snoozes and maintenance windows; None: none
        # Incidents opening within this many seconds of each other form one group; 0: off.
        self.group_window = timedelta(seconds=group_window)
        self.sample_batch = sample_batch
        self.handoff = handoff
        self._pending: deque[Sample] = deque()
        self._unwritten_cycles = 0  # cycles whose samples are pending, since the last write
        self._learned_generation = -1  # the evaluator's rules when the learner last looked
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
            series_overflow=self.evaluator.overflow(),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Cycle on a drift-corrected grid until ``stop`` is set; a running cycle always ends
        (and commits) before the loop returns, and the samples not yet written are written."""
        self.health.register(MONITOR_TASK, stale_after=max(3 * self.interval, 60.0))
        loop = asyncio.get_running_loop()
        start = tick = loop.time()
        # One waiter for the whole run: a task per wait would cost more than the wait.
        stopped = loop.create_task(stop.wait(), name="vigil-monitor-stop")
        try:
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
                await asyncio.wait((stopped,), timeout=max(0.0, tick - loop.time()))
        finally:
            stopped.cancel()
        await self.flush()

    async def flush(self) -> None:
        """Write the samples still pending (at a clean stop); never raises for a database
        failure (it goes to health, and the samples stay pending)."""
        async with self._one_at_a_time:
            if not self._pending:
                return
            try:
                await self.store.add_samples(list(self._pending))
            except VigilStorageError as exc:
                self._fail(f"database unavailable: {exc}", database=True)
                return
            self._pending.clear()
            self._unwritten_cycles = 0

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
        if now.tzinfo is None:
            raise ValidationError("now", "the clock must give times with a time zone (UTC)")
        # ``collect`` checked every name and value as ``Sample`` does, and the instance was
        # checked once: checking 10,000 readings again cost a tenth of a 10,000-rule cycle.
        self._keep(
            Sample.checked(self.instance, m, now, v) for m, v in local.items() if v is not None
        )
        leader = await self._elect(now)
        if leader:
            await self.bus.catch_up()  # actions taken elsewhere, before judging this cycle
        readings = await self._readings(local, now)
        self.view.set_readings(readings, at=now, stale_after=self.stale_after)
        if not leader:
            await self.store.add_samples(list(self._pending))
            self._pending.clear()
            self._unwritten_cycles = 0
            self.view.replace_open(await self.store.active_incidents())
            return []
        if self.learner is not None:
            if self._pending and self.evaluator.generation != self._learned_generation:
                # The rules changed: a learning rule may read the history, which must hold
                # this instance's readings up to now (a rare write, never at rest).
                await self.store.add_samples(list(self._pending))
                self._pending.clear()
                self._unwritten_cycles = 0
            self._learned_generation = self.evaluator.generation
            await self.learner.catch_up(self.evaluator, now)
        result = self.evaluator.evaluate_series(
            readings, now=now, silenced=await self._silenced(now)
        )
        self._unwritten_cycles += 1
        # The samples go with the batch's last cycle, or with the first cycle that writes
        # anyway (one transaction either way).
        write_samples = self._unwritten_cycles >= self.sample_batch or bool(
            result.changed or result.events
        )
        claim = self.handoff.claim() if self.handoff is not None else None
        try:
            events = await self.store.commit_cycle(
                samples=list(self._pending) if write_samples else [],
                result=result,
                now=now,
                group_window=self.group_window,
                group_labels={
                    name: rule.group_label
                    for name, rule in self.evaluator.rules.items()
                    if rule.group_label
                },
                claim=claim,
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
        if write_samples:
            self._pending.clear()
            self._unwritten_cycles = 0
        if claim is not None and claim.deliveries and self.handoff is not None:
            self.handoff.take(claim)
        grouped = self._adopt_groups(events)
        self.bus.publish(events)
        self.view.refresh(
            s.incident
            if s.incident.id not in grouped
            else dataclasses.replace(s.incident, group=grouped[s.incident.id])
            for s in result.changed.values()
            if s.incident is not None
        )
        return events

    def _adopt_groups(self, events: Iterable[Event]) -> dict[uuid.UUID, uuid.UUID]:
        """The store put the incidents it opened in groups: the evaluator's own copies
        learn theirs, so what it hands on next carries the group too. Returns them."""
        grouped: dict[uuid.UUID, uuid.UUID] = {}
        for event in events:
            incident = event.incident
            if (
                event.kind is not EventKind.INCIDENT_OPENED
                or incident is None
                or incident.group is None
            ):
                continue
            grouped[incident.id] = incident.group
            try:
                current = self.evaluator.state(incident.rule, incident.series).incident
            except NotFoundError:  # the rule was deleted meanwhile
                continue
            if current is not None and current.id == incident.id:
                self.evaluator.sync(dataclasses.replace(current, group=incident.group))
        return grouped

    async def reload(self) -> None:
        """Take rules, their states and open incidents from the database (at start, on
        becoming the leader, after a conflict)."""
        rules = await self.store.list_rules()
        names = {rule.name for rule in rules}
        for name in set(self.evaluator.rules) - names:
            self.evaluator.remove_rule(name)  # deleted while another instance led
        self.evaluator.set_rules(rules)
        self.view.set_rules(rules)
        states = await self.store.load_states()
        for key in self.evaluator.states():
            if key not in states:
                self.evaluator.restore(key, RuleState())
        for key, state in states.items():
            if split_key(key)[0] in names:
                self.evaluator.restore(key, state)
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
            if self.learner is not None:
                self.learner.forget()  # another instance led meanwhile: learn it all again
            [event] = await self.store.append_events(
                [Event(kind=EventKind.LEADER_CHANGED, at=now, data={"instance": self.instance})]
            )
            self.bus.publish([event])
            logger.info("Vigil instance %r is now the leader", self.instance)
        self._was_leader = leader
        return leader

    @property
    def stale_after(self) -> float:
        """A reading older than this is no data (rules may set their own): two intervals."""
        return STALE_INTERVALS * self.interval

    async def _readings(
        self, local: Mapping[str, float | None], now: datetime
    ) -> dict[str, dict[str, tuple[float, datetime]]]:
        """Every instance's (and pusher's) newest sample of every metric with its time: this
        instance's fresh readings, the others' from the store, as far back as any rule looks
        (its staleness limit, or how long an absent rule waits)."""
        if self._horizon[0] != self.evaluator.generation:  # the rules changed
            horizon = self.stale_after
            for rule in self.evaluator.rules.values():
                horizon = max(horizon, rule.stale_after or 0.0, rule.absent_for or 0.0)
            self._horizon = (self.evaluator.generation, horizon)
        since = now - timedelta(seconds=self._horizon[1] + self.interval)
        readings = await self.store.latest_readings(since=since, exclude_instance=self.instance)
        for metric, value in local.items():
            if value is not None:
                readings.setdefault(metric, {})[self.instance] = (float(value), now)
        return readings

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
        elif event.kind in RULE_EVENTS and "rule" in event.data:
            rule = Rule.from_dict(event.data["rule"])
            if event.kind is not EventKind.RULE_DELETED:
                self.evaluator.set_rule(rule)
            elif rule.name in self.evaluator.rules:
                self.evaluator.remove_rule(rule.name)
