"""``Vigil``: what a host embeds. An async context manager that owns the recorder, the sources,
the store, the monitor and the event bus, and tracks every task it starts."""

from __future__ import annotations

import asyncio
import importlib
import logging
import math
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from vigil.core import Evaluator, Event, Incident, Rule, Sample, ValidationError, VigilError
from vigil.core.silences import MaintenanceWindow, Snooze
from vigil.logmask import install as mask_secrets_in_logs
from vigil.metrics import HealthRegistry, LoopLagProbe, Metrics, MetricSource, ProcessSource
from vigil.metrics.recorder import Recorder
from vigil.runtime.bus import EventBus
from vigil.runtime.groupcommit import GroupCommit
from vigil.runtime.health import Health
from vigil.runtime.learning import Learner
from vigil.runtime.monitor import STALE_INTERVALS, Monitor
from vigil.runtime.notifier import DeliveryPolicy, Notifier
from vigil.runtime.series import SeriesBudget
from vigil.runtime.silences import SilenceCache
from vigil.runtime.view import LiveView
from vigil.settings import Settings
from vigil.store import (
    CleanupReport,
    Leadership,
    RulePlan,
    Store,
    StoredChannel,
    VigilStorageError,
)

logger = logging.getLogger(__name__)

RULES_FILE_ACTOR = "rules file"
RETENTION_FIRST_SECONDS = 300.0
RETENTION_EVERY_SECONDS = 86_400.0
SERIES_CHECK_SECONDS = 60.0  # at most; a quarter of the series retention when that is shorter


def utcnow() -> datetime:
    return datetime.now(UTC)


class NotStartedError(VigilError):
    def __init__(self) -> None:
        super().__init__("Vigil is not running: use `async with Vigil(...)` or await start()")


@dataclass(frozen=True, slots=True)
class _Running:
    """Everything that exists only while Vigil runs: made by ``start``, dropped by ``aclose``."""

    store: Store
    leadership: Leadership
    bus: EventBus
    view: LiveView
    silences: SilenceCache
    monitor: Monitor
    notifier: Notifier
    ingestion: GroupCommit  # pushed samples, written by group commit
    stop: asyncio.Event


class Vigil:
    """Embed in a host's event loop::

        async with Vigil(Settings.from_env()) as vigil:
            instrument(bot, vigil)
            await bot.start(token)

    Vigil never calls ``asyncio.run``, installs no signal handler and configures no logging.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        sources: Iterable[MetricSource] = (),
        process_metrics: bool = True,
        clock: Callable[[], datetime] = utcnow,
        delivery: DeliveryPolicy | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """``process_metrics``: watch this process itself (memory, CPU and event-loop lag);
        off, only ``sources`` (and the health registry) are read, which is what a test on a
        busy machine or a process that only relays pushed metrics wants. ``delivery``:
        retries, backoff and timing of notification delivery (by default: the defaults, with
        the ``delivery_lease`` setting). ``metrics``: a hub of the
        caller's own (a recorder on a simulated clock, say) whose window is the interval;
        by default one is made."""
        self.settings = settings if settings is not None else Settings.from_env()
        if metrics is not None and not math.isclose(metrics.window, self.settings.interval):
            raise ValidationError(
                "metrics",
                f"the hub's window ({metrics.window:g} s) must be the monitor's interval "
                f"({self.settings.interval:g} s): each cycle reads one window of samples",
            )
        if metrics is None:
            recorder = Recorder()
            health = HealthRegistry(
                stale_after=self.settings.health_stale_after, clock=recorder.clock
            )
            metrics = Metrics(recorder=recorder, health=health, window=self.settings.interval)
        self.metrics = metrics
        # Lag is real time on the real loop: the probe keeps its own recorder on the
        # monotonic clock, even when the hub's recorder runs on a simulated one.
        self._loop_lag: LoopLagProbe | None = None
        if process_metrics:
            self._loop_lag = LoopLagProbe(window=self.settings.interval)
            self.metrics.add_source(self._loop_lag)
            self.metrics.add_source(ProcessSource())
        for source in sources:
            self.metrics.add_source(source)
        self.clock = clock
        self.delivery = (
            delivery if delivery is not None else DeliveryPolicy(lease=self.settings.delivery_lease)
        )
        # Pushed series, bounded (settings max_metrics, max_series, series_retention). Kept
        # at least one interval: a cycle reads the last interval's samples back into view.
        self.series = SeriesBudget(
            max_metrics=self.settings.max_metrics,
            max_series=self.settings.max_series,
            retention=timedelta(
                seconds=max(self.settings.series_retention, self.settings.interval)
            ),
        )
        self._running: _Running | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closers: list[Callable[[], Awaitable[None]]] = []

    # -- the MetricHost shape integrations plug into ----------------------------------------

    @property
    def recorder(self) -> Recorder:
        return self.metrics.recorder

    @property
    def health_registry(self) -> HealthRegistry:
        return self.metrics.health

    @property
    def window(self) -> float:
        return self.metrics.window

    def add_source(self, source: MetricSource) -> None:
        self.metrics.add_source(source)

    def remove_source(self, name: str) -> None:
        self.metrics.remove_source(name)

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Vigil:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def running(self) -> bool:
        return self._running is not None

    async def start(self) -> None:
        if self._running is not None:
            raise VigilError("Vigil is already running")
        mask_secrets_in_logs()  # a filter on the loggers that can carry secrets: masks only
        store = await Store.open(self.settings.database_url)
        leadership = store.leadership()
        try:
            await leadership.try_acquire()  # SQLite: refuses a second monitor right here
            running = await self._assemble(store, leadership)
        except BaseException:
            await leadership.release()
            await store.close()
            raise
        self._running = running
        if self.settings.rules_file is not None and leadership.is_leader:
            try:
                await self._apply_rules_file(self.settings.rules_file)
            except BaseException:
                await self.aclose()
                raise
        if self._loop_lag is not None:
            self._loop_lag.start()
        self._spawn(running.monitor.run(running.stop), "vigil-monitor")
        self._spawn(running.ingestion.run(), "vigil-ingest")
        self._spawn(self._follow_log(), "vigil-events")
        self._spawn(running.notifier.run(running.stop), "vigil-notifier")
        self._spawn(self._retention(), "vigil-retention")
        self._spawn(self._forget_series(), "vigil-series")

    async def _assemble(self, store: Store, leadership: Leadership) -> _Running:
        """The parts, wired to one another, from the store's rules, states and log."""
        rules = await store.list_rules()
        states = await store.load_states()
        bus = EventBus(store, last_id=await store.last_event_id(), version=store.log_version)
        view = LiveView(rules, [s.incident for s in states.values() if s.incident is not None])
        bus.add_listener(view.apply)
        silences = SilenceCache(store, bus)
        bus.add_listener(silences.follow)
        notifier = Notifier(
            store=store,
            leadership=leadership,
            health=self.metrics.health,
            clock=self.clock,
            rules=lambda: view.rules,
            open_incidents=view.active,
            base_url=self.settings.public_url,
            policy=self.delivery,
            escalations=store,
            digests=store,
        )
        bus.add_listener(notifier.follow)
        monitor = Monitor(
            store=store,
            metrics=self.metrics,
            evaluator=Evaluator(
                rules,
                states=states,
                stale_after=STALE_INTERVALS * self.settings.interval,
                max_series=self.settings.max_series_per_rule,
                flap=self.settings.flap,
            ),
            bus=bus,
            view=view,
            leadership=leadership,
            instance=self.settings.instance,
            interval=self.settings.interval,
            clock=self.clock,
            silences=silences,
            group_window=self.settings.effective_group_window,
            sample_batch=self.settings.effective_sample_batch,
            learner=Learner(
                store, interval=self.settings.interval, own_instance=self.settings.instance
            ),
            handoff=notifier,
        )
        return _Running(
            store=store,
            leadership=leadership,
            bus=bus,
            view=view,
            silences=silences,
            monitor=monitor,
            notifier=notifier,
            ingestion=GroupCommit(
                store.write_samples,
                interval=self.settings.ingest_flush_interval,
                capacity=self.settings.ingest_buffer,
            ),
            stop=asyncio.Event(),
        )

    def add_closer(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Have ``aclose`` await ``closer`` first: an integration's own task that uses the store
        (the Discord poster) ends before the store closes under it."""
        self._closers.append(closer)

    async def aclose(self) -> None:
        """Stop cleanly: the integrations' tasks end, the running cycle finishes and commits,
        deliveries under way finish and are recorded, every task ends."""
        running = self._running
        if running is None:
            return
        for closer in self._closers:
            await closer()
        running.stop.set()
        await running.ingestion.close()  # what was pushed is written before the store closes
        finishing = ("vigil-monitor", "vigil-notifier", "vigil-ingest")
        monitor_tasks = [t for t in self._tasks if t.get_name() in finishing]
        await asyncio.gather(*monitor_tasks, return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._loop_lag is not None:
            await self._loop_lag.stop()
        running.bus.close()
        await running.leadership.release()
        await running.store.close()
        self._running = None

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._reap)

    def _reap(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("Vigil task %s crashed", task.get_name(), exc_info=task.exception())

    async def _follow_log(self) -> None:
        """Pick up events stored by other processes (other instances, the CLI), whenever the
        store says there may be some (``Store.watch_events``)."""
        async with self.store.watch_events() as watch:
            async for _ in watch:
                try:
                    # The watch woke because the log moved, or for its periodic recheck
                    # (which must read even when the version says nothing moved).
                    await self.bus.catch_up(force=True)
                except VigilStorageError as exc:
                    logger.debug("event log unavailable: %s", exc)

    async def _retention(self) -> None:
        """Apply the retention settings once a day (a few minutes after start first), on the
        leader only; cleanup deletes in small batches, so cycles are never held up long."""
        await asyncio.sleep(RETENTION_FIRST_SECONDS)
        while True:
            if self.monitor.leadership.is_leader:
                try:
                    report = await self.cleanup()
                    logger.info("Vigil retention: %s", report)
                except VigilStorageError as exc:
                    logger.warning("Vigil retention failed, trying again tomorrow: %s", exc)
            await asyncio.sleep(RETENTION_EVERY_SECONDS)

    async def _forget_series(self) -> None:
        """Evict stale pushed series now and then, even when nothing is pushed any more."""
        every = min(SERIES_CHECK_SECONDS, self.series.retention.total_seconds() / 4)
        while True:
            await asyncio.sleep(every)
            self.forget_stale_series()

    def forget_stale_series(self) -> int:
        """Forget pushed series (and current values of metrics without a rule) not seen for
        the series retention; how many series were forgotten."""
        now = self.clock()
        evicted = self.series.evict(now)
        self.view.forget_stale(now - self.series.retention)
        return evicted

    async def cleanup(self) -> CleanupReport:
        """Delete what the retention settings no longer keep and compact older history (what
        ``vigil cleanup`` does)."""
        return await self.store.cleanup(
            now=self.clock(),
            incident_retention_days=self.settings.incident_retention_days,
            sample_retention_days=self.settings.sample_retention_days,
            sample_raw_hours=self.settings.sample_raw_hours,
        )

    # -- parts (NotStartedError unless running) ----------------------------------------------

    def _parts(self) -> _Running:
        if self._running is None:
            raise NotStartedError()
        return self._running

    @property
    def store(self) -> Store:
        return self._parts().store

    @property
    def ingestion(self) -> GroupCommit:
        return self._parts().ingestion

    @property
    def bus(self) -> EventBus:
        return self._parts().bus

    @property
    def view(self) -> LiveView:
        return self._parts().view

    @property
    def monitor(self) -> Monitor:
        return self._parts().monitor

    @property
    def notifier(self) -> Notifier:
        return self._parts().notifier

    @property
    def silences(self) -> SilenceCache:
        return self._parts().silences

    def subscribe(self, after: int | None = None) -> AsyncIterator[Event]:
        return self.bus.subscribe(after)

    def health(self) -> Health:
        """The whole picture: this monitor, leadership, notifications, every registered task."""
        running = self._parts()
        return Health(
            monitor=running.monitor.status(),
            notifications=running.notifier.status(),
            tasks=self.metrics.health.snapshot(),
            last_event_id=running.bus.last_id,
            series=self.series.status(),
            ingestion=running.ingestion.status(),
        )

    # -- actions: the store is the truth, the bus tells everyone -----------------------------

    async def acknowledge(
        self, incident_id: uuid.UUID | str, *, by: str, notes: str | None = None
    ) -> Incident:
        incident, event = await self.store.acknowledge_incident(
            incident_id, by=by, now=self.clock(), notes=notes
        )
        self.bus.publish([event])
        return incident

    async def acknowledge_all(self, *, by: str, notes: str | None = None) -> list[Incident]:
        changed = await self.store.acknowledge_all(by=by, now=self.clock(), notes=notes)
        self.bus.publish(event for _, event in changed)
        return [incident for incident, _ in changed]

    async def acknowledge_group(
        self, group_id: uuid.UUID | str, *, by: str, notes: str | None = None
    ) -> list[Incident]:
        """Acknowledge an incident group's active members (``vigil.core.grouping``)."""
        changed = await self.store.acknowledge_group(group_id, by=by, now=self.clock(), notes=notes)
        self.bus.publish(event for _, event in changed)
        return [incident for incident, _ in changed]

    async def resolve(
        self, incident_id: uuid.UUID | str, *, by: str, notes: str | None = None
    ) -> Incident:
        incident, event = await self.store.resolve_incident(
            incident_id, by=by, now=self.clock(), notes=notes
        )
        self.bus.publish([event])
        return incident

    async def add_rule(self, rule: Rule, *, by: str) -> Rule:
        """A new rule (``NameTakenError`` if its name is in use; at most ``max_rules``)."""
        added, event = await self.store.add_rule(
            rule, by=by, now=self.clock(), max_rules=self.settings.max_rules
        )
        self.bus.publish([event])
        return added

    async def replace_rule(self, name: str, rule: Rule, *, by: str) -> Rule:
        """Every field of the rule ``name`` replaced by ``rule``'s (which carries that name)."""
        replaced, event = await self.store.replace_rule(name, rule, by=by, now=self.clock())
        self.bus.publish([event])
        return replaced

    async def update_rule(self, name: str, changes: Mapping[str, Any], *, by: str) -> Rule:
        """Change the given fields of a rule (a ``None`` clears one)."""
        rule, event = await self.store.update_rule(name, changes, by=by, now=self.clock())
        self.bus.publish([event])
        return rule

    async def delete_rule(self, name: str, *, by: str) -> None:
        """Delete a rule; its open incidents are resolved (note "rule deleted")."""
        self.bus.publish(await self.store.delete_rule(name, by=by, now=self.clock()))

    async def apply_rules(
        self, rules: Sequence[Rule], *, by: str, prune: bool = False, dry_run: bool = False
    ) -> RulePlan:
        """Make the rules match ``rules`` in one transaction (see ``Store.apply_rules``)."""
        plan = await self.store.apply_rules(
            rules,
            by=by,
            now=self.clock(),
            prune=prune,
            dry_run=dry_run,
            max_rules=self.settings.max_rules,
        )
        self.bus.publish(plan.events)
        return plan

    async def _apply_rules_file(self, path: Path) -> RulePlan:
        """``VIGIL_RULES_FILE``: added and changed, never pruned. The loader lives with the
        rules file format (``vigil.rulesfile``), imported only when a file is set."""
        load = importlib.import_module("vigil.rulesfile").load
        plan = await self.apply_rules(load(path), by=RULES_FILE_ACTOR)
        logger.info(
            "Vigil applied %s: %d rule(s) added, %d changed, %d unchanged",
            path,
            len(plan.added),
            len(plan.changed),
            len(plan.unchanged),
        )
        return plan

    async def snooze(self, metric: str, *, duration: timedelta, reason: str, by: str) -> Snooze:
        """Silence a rule for ``duration`` (replacing a snooze it has); it resumes by itself."""
        snooze = Snooze.for_duration(
            metric, duration=duration, reason=reason, by=by, now=self.clock()
        )
        self.bus.publish(await self.store.set_snooze(snooze))
        return snooze

    async def end_snooze(self, metric: str, *, by: str) -> None:
        self.bus.publish([await self.store.end_snooze(metric, by=by, now=self.clock())])

    async def add_maintenance(
        self, window: MaintenanceWindow | Mapping[str, Any]
    ) -> MaintenanceWindow:
        added, event = await self.store.add_window(window, now=self.clock())
        self.bus.publish([event])
        return added

    async def remove_maintenance(self, name: str, *, by: str | None = None) -> None:
        self.bus.publish([await self.store.delete_window(name, by=by, now=self.clock())])

    async def add_channel(self, channel: Mapping[str, Any], *, by: str) -> StoredChannel:
        stored, event = await self.store.add_channel(channel, now=self.clock(), by=by)
        self.bus.publish([event])
        return stored

    async def update_channel(
        self, name: str, changes: Mapping[str, Any], *, by: str
    ) -> StoredChannel:
        """Change some fields of a channel; a URL sent back masked keeps the stored one."""
        stored, event = await self.store.update_channel(name, changes, now=self.clock(), by=by)
        self.bus.publish([event])
        return stored

    async def remove_channel(self, name: str, *, by: str) -> None:
        self.bus.publish([await self.store.delete_channel(name, now=self.clock(), by=by)])

    async def ingest(self, samples: Sequence[Sample]) -> int:
        """Store samples pushed by another process; the leader combines them next cycle.
        Returns once they are committed, in one transaction with the other pushes of the
        moment (``ingestion``, group commit). ``SeriesLimitError`` (nothing stored) when a
        sample would start a series past the caps of the bounded series model
        (``Vigil.series``); ``BufferFullError`` (nothing stored) while the ingest buffer is
        full."""
        ingestion = self.ingestion  # NotStartedError before anything is counted
        ingestion.check(len(samples))  # a push refused for room leaves the caps untouched
        self.series.admit(samples, now=self.clock())
        await ingestion.add(samples)
        return len(samples)
