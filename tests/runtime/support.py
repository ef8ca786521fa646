"""A scripted source and a controllable clock for driving a real Vigil, and the runtime's parts
on an in-memory store (``Runtime``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from vigil.core import Evaluator, Event, EventKind
from vigil.metrics import Metrics, MetricSource, Reading
from vigil.runtime import EventBus, LiveView, Monitor, Vigil
from vigil.runtime.monitor import STALE_INTERVALS
from vigil.runtime.notifier import DeliveryPolicy, Notifier
from vigil.runtime.ports import Leadership
from vigil.runtime.silences import SilenceCache
from vigil.settings import Settings
from vigil.store.leader import SoleLeadership
from vigil.store.memory import MemoryStore

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
DEADLINE = 60.0  # generous: reached only when the behaviour under test is broken


class Script:
    """A metric source whose next readings the test sets."""

    name = "script"

    def __init__(self) -> None:
        self.values: dict[str, float | None] = {}

    async def read(self) -> Reading:
        return dict(self.values)


class Broken:
    name = "broken"

    async def read(self) -> Reading:
        raise RuntimeError("sensor unplugged")


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 30) -> None:
        self.now += timedelta(seconds=seconds)


def settings(url: str, *, interval: float = 3600, instance: str = "test") -> Settings:
    """A long interval by default: the loop's first cycle runs at start, then tests drive
    cycles by hand with ``vigil.monitor.cycle()``."""
    return Settings(database_url=url, interval=interval, instance=instance)


class Started:
    """``async with Started(vigil)``: started, and its loop's first cycle is over, so the
    test's own cycles are the only ones until the long interval ends."""

    def __init__(self, vigil: Vigil) -> None:
        self.vigil = vigil

    async def __aenter__(self) -> Vigil:
        await self.vigil.start()
        await wait_until(lambda: self.vigil.monitor.status().cycles >= 1)
        return self.vigil

    async def __aexit__(self, *exc: object) -> None:
        await self.vigil.aclose()


def make_vigil(url: str, script: Script, clock: Clock, **kwargs: Any) -> Started:
    vigil = Vigil(settings(url, **kwargs), sources=[script], process_metrics=False, clock=clock)
    return Started(vigil)


async def wait_until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        # A plain condition (a counter) has no event to await: poll it, with a deadline.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), DEADLINE)


async def cycle(
    vigil: Vigil, clock: Clock, values: Mapping[str, float | None], script: Script
) -> list[Event]:
    clock.advance()
    script.values = dict(values)
    return await vigil.monitor.cycle()


async def collect(stream: AsyncIterator[Event], n: int) -> list[Event]:
    async def take() -> list[Event]:
        return [await anext(stream) for _ in range(n)]

    return await asyncio.wait_for(take(), DEADLINE)


class Runtime:
    """The runtime's parts wired as ``Vigil.start`` wires them, on an in-memory store: for
    tests of the runtime's own logic (what a real database adds is tested in tests/store and
    by the tests that run a whole Vigil).

    ``async with Runtime(...) as runtime``: started, its notifier running, and its first cycle
    over (as a started Vigil's loop runs one at once); then the test runs each cycle."""

    def __init__(
        self,
        store: MemoryStore | None = None,
        *,
        clock: Clock | None = None,
        script: Script | None = None,
        sources: Sequence[MetricSource] = (),
        instance: str = "test",
        interval: float = 30.0,
        policy: DeliveryPolicy | None = None,
        leadership: Leadership | None = None,
        max_series: int = 1000,
    ) -> None:
        self.store = store if store is not None else MemoryStore()
        self.max_series = max_series
        self.clock = clock if clock is not None else Clock()
        self.script = script if script is not None else Script()
        self.metrics = Metrics(window=interval)
        for source in (self.script, *sources):
            self.metrics.add_source(source)
        self.instance = instance
        self.interval = interval
        self.policy = policy if policy is not None else DeliveryPolicy()
        self.leadership = leadership if leadership is not None else SoleLeadership()
        self._stop = asyncio.Event()
        self._notifying: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Runtime:
        store = self.store
        rules = await store.list_rules()
        states = await store.load_states()
        self.bus = EventBus(store, last_id=await store.last_event_id())
        self.view = LiveView(rules, [s.incident for s in states.values() if s.incident])
        self.bus.add_listener(self.view.apply)
        self.silences = SilenceCache(store, self.bus)
        self.bus.add_listener(self.silences.follow)
        self.notifier = Notifier(
            store=store,
            leadership=self.leadership,
            health=self.metrics.health,
            clock=self.clock,
            rules=lambda: self.view.rules,
            open_incidents=self.view.active,
            policy=self.policy,
        )
        self.bus.add_listener(self.notifier.follow)
        self.monitor = Monitor(
            store=store,
            metrics=self.metrics,
            evaluator=Evaluator(
                rules,
                states=states,
                stale_after=STALE_INTERVALS * self.interval,
                max_series=self.max_series,
            ),
            bus=self.bus,
            view=self.view,
            leadership=self.leadership,
            instance=self.instance,
            interval=self.interval,
            clock=self.clock,
            silences=self.silences,
        )
        self._notifying = asyncio.create_task(self.notifier.run(self._stop))
        await self.monitor.cycle()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._notifying is not None:
            await self._notifying
        self.bus.close()

    async def cycle(self, values: Mapping[str, float | None]) -> list[Event]:
        """The next cycle, ``interval`` later, reading ``values``."""
        self.clock.advance(self.interval)
        self.script.values = dict(values)
        return await self.monitor.cycle()

    async def kinds(self, metric: str, *values: float) -> list[EventKind]:
        """One cycle per value of ``metric``: the kinds of the events they made."""
        kinds = []
        for value in values:
            kinds += [event.kind for event in await self.cycle({metric: value})]
        return kinds

    def publish(self, *events: Event) -> None:
        """What ``Vigil``'s actions do after the store: tell everyone at once."""
        self.bus.publish(events)

    async def logged(self, kind: EventKind) -> list[Event]:
        return [event for event in await self.store.events_after(0) if event.kind is kind]
