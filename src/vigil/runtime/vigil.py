"""``Vigil``: what a host embeds. An async context manager that owns the recorder, the sources,
the store, the monitor and the event bus, and tracks every task it starts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from sqlalchemy.engine import make_url

from vigil.core import Evaluator, Event, Incident, Rule, Sample, VigilError
from vigil.core.silences import MaintenanceWindow, Snooze
from vigil.logmask import install as mask_secrets_in_logs
from vigil.metrics import HealthRegistry, LoopLagProbe, Metrics, MetricSource, ProcessSource
from vigil.metrics.recorder import Recorder
from vigil.runtime.bus import EventBus
from vigil.runtime.leader import Leadership, leadership_for
from vigil.runtime.monitor import Monitor, MonitorStatus
from vigil.runtime.notifier import DeliveryPolicy, Notifier
from vigil.runtime.quiet import SuppressionCache
from vigil.runtime.view import LiveView
from vigil.settings import Settings
from vigil.store import CleanupReport, Store, StoredChannel, VigilStorageError
from vigil.store._base import EVENTS_CHANNEL

logger = logging.getLogger(__name__)

EVENT_POLL_SECONDS = 1.0  # how often an instance looks for events stored by other processes
RETENTION_FIRST_SECONDS = 300.0
RETENTION_EVERY_SECONDS = 86_400.0
EVENT_RECHECK_SECONDS = 10.0  # the same, when NOTIFY wakes it (a lost notification costs this)


def utcnow() -> datetime:
    return datetime.now(UTC)


class NotStartedError(VigilError):
    def __init__(self) -> None:
        super().__init__("Vigil is not running: use `async with Vigil(...)` or await start()")


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
        retries, backoff and timing of notification delivery. ``metrics``: a hub of the
        caller's own (a recorder on a simulated clock, say); by default one whose windows
        span the interval."""
        self.settings = settings if settings is not None else Settings.from_env()
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
        self._store: Store | None = None
        self._monitor: Monitor | None = None
        self._bus: EventBus | None = None
        self._view: LiveView | None = None
        self._leadership: Leadership | None = None
        self.delivery = delivery if delivery is not None else DeliveryPolicy()
        self._notifier: Notifier | None = None
        self._suppressions: SuppressionCache | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop = asyncio.Event()

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
        return self._monitor is not None

    async def start(self) -> None:
        if self._monitor is not None:
            raise VigilError("Vigil is already running")
        mask_secrets_in_logs()  # a filter on the loggers that can carry secrets: masks only
        store = await Store.open(self.settings.database_url)
        leadership = leadership_for(self.settings.database_url)
        try:
            await leadership.try_acquire()  # SQLite: refuses a second monitor right here
            rules = await store.list_rules()
            states = await store.load_states()
            last_id = await store.last_event_id()
        except BaseException:
            await leadership.release()
            await store.close()
            raise
        evaluator = Evaluator(rules, states=states)
        view = LiveView(rules, [s.incident for s in states.values() if s.incident is not None])
        bus = EventBus(store, last_id=last_id)
        bus.add_listener(view.apply)
        self._store, self._bus, self._view, self._leadership = store, bus, view, leadership
        self._suppressions = SuppressionCache(store, bus)
        bus.add_listener(self._suppressions.follow)
        self._notifier = Notifier(
            store=store,
            leadership=leadership,
            health=self.metrics.health,
            clock=self.clock,
            rules=lambda: view.rules,
            open_incidents=view.active,
            base_url=self.settings.public_url,
            policy=self.delivery,
        )
        bus.add_listener(self._notifier.follow)
        self._monitor = Monitor(
            store=store,
            metrics=self.metrics,
            evaluator=evaluator,
            bus=bus,
            view=view,
            leadership=leadership,
            instance=self.settings.instance,
            interval=self.settings.interval,
            clock=self.clock,
            suppressions=self._suppressions,
        )
        self._stop = asyncio.Event()
        if self._loop_lag is not None:
            self._loop_lag.start()
        self._spawn(self._monitor.run(self._stop), "vigil-monitor")
        self._spawn(self._follow_log(), "vigil-events")
        self._spawn(self._notifier.run(self._stop), "vigil-notifier")
        self._spawn(self._retention(), "vigil-retention")

    async def aclose(self) -> None:
        """Stop cleanly: the running cycle finishes and commits, deliveries under way finish
        and are recorded, every task ends."""
        if self._monitor is None:
            return
        self._stop.set()
        finishing = ("vigil-monitor", "vigil-notifier")
        monitor_tasks = [t for t in self._tasks if t.get_name() in finishing]
        await asyncio.gather(*monitor_tasks, return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._loop_lag is not None:
            await self._loop_lag.stop()
        assert self._bus is not None and self._leadership is not None and self._store is not None
        self._bus.close()
        await self._leadership.release()
        await self._store.close()
        self._monitor = self._bus = self._view = self._store = self._leadership = None
        self._notifier = self._suppressions = None

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._reap)

    def _reap(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("Vigil task %s crashed", task.get_name(), exc_info=task.exception())

    async def _follow_log(self) -> None:
        """Pick up events stored by other processes (other instances, the CLI): woken by
        PostgreSQL's NOTIFY where there is one, and by a poll in any case. A lost LISTEN
        connection (a database outage) is opened again."""
        wake = asyncio.Event()
        while True:
            async with _notifications(self.settings.database_url, wake) as lost:
                poll = EVENT_POLL_SECONDS if lost is None else EVENT_RECHECK_SECONDS
                while lost is None or not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), poll)
                    wake.clear()
                    try:
                        await self.bus.catch_up()
                    except VigilStorageError as exc:
                        logger.debug("event log unavailable: %s", exc)
            await asyncio.sleep(EVENT_POLL_SECONDS)

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

    async def cleanup(self) -> CleanupReport:
        """Delete what the retention settings no longer keep (what ``vigil cleanup`` does)."""
        return await self.store.cleanup(
            now=self.clock(),
            incident_retention_days=self.settings.incident_retention_days,
            sample_retention_days=self.settings.sample_retention_days,
        )

    # -- parts -----------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            raise NotStartedError()
        return self._store

    @property
    def bus(self) -> EventBus:
        if self._bus is None:
            raise NotStartedError()
        return self._bus

    @property
    def view(self) -> LiveView:
        if self._view is None:
            raise NotStartedError()
        return self._view

    @property
    def monitor(self) -> Monitor:
        if self._monitor is None:
            raise NotStartedError()
        return self._monitor

    @property
    def notifier(self) -> Notifier:
        if self._notifier is None:
            raise NotStartedError()
        return self._notifier

    @property
    def suppressions(self) -> SuppressionCache:
        if self._suppressions is None:
            raise NotStartedError()
        return self._suppressions

    def subscribe(self, after: int | None = None) -> AsyncIterator[Event]:
        return self.bus.subscribe(after)

    def health(self) -> dict[str, Any]:
        """The whole picture: this monitor, leadership, and every registered task."""
        status: MonitorStatus | None = self._monitor.status() if self._monitor else None
        return {
            "running": self.running,
            "monitor": status,
            "notifications": self._notifier.status() if self._notifier else None,
            "tasks": self.metrics.health.snapshot(),
        }

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

    async def resolve(
        self, incident_id: uuid.UUID | str, *, by: str, notes: str | None = None
    ) -> Incident:
        incident, event = await self.store.resolve_incident(
            incident_id, by=by, now=self.clock(), notes=notes
        )
        self.bus.publish([event])
        return incident

    async def update_rule(self, metric: str, changes: Mapping[str, Any], *, by: str) -> Rule:
        rule, event = await self.store.update_rule(metric, changes, by=by, now=self.clock())
        self.bus.publish([event])
        return rule

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
        """Store samples pushed by another process; the leader combines them next cycle."""
        await self.store.add_samples(samples)
        return len(samples)


@contextlib.asynccontextmanager
async def _notifications(url: str, wake: asyncio.Event) -> AsyncIterator[asyncio.Event | None]:
    """LISTEN for new events on PostgreSQL, on a connection of its own, setting ``wake`` for
    each. Yields an event that is set when the connection is lost (already set when it could
    not be opened), or ``None`` without PostgreSQL, where the caller simply polls."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        yield None
        return
    import asyncpg

    dsn = parsed.set(drivername="postgresql").render_as_string(False)
    lost = asyncio.Event()
    try:
        connection = await asyncpg.connect(dsn, timeout=10)
        connection.add_termination_listener(lambda *_: lost.set())
        await connection.add_listener(EVENTS_CHANNEL, lambda *_: wake.set())
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        logger.warning("cannot LISTEN for events (%s): trying again", exc)
        lost.set()  # the caller waits a moment and calls again
        yield lost
        return
    wake.set()  # events stored while nobody listened
    try:
        yield lost
    finally:
        with contextlib.suppress(Exception):
            await connection.close(timeout=10)
