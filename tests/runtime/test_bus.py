from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from vigil.core import Event, EventKind
from vigil.runtime.bus import EventBus
from vigil.store.memory import MemoryStore

T0 = datetime(2026, 11, 27, tzinfo=UTC)
DEADLINE = 30.0  # generous: only reached when the behaviour under test is broken


async def make(log: MemoryStore, n: int) -> list[Event]:
    """``n`` events stored in the log (not yet published)."""
    return await log.append_events(
        [Event(kind=EventKind.LEADER_CHANGED, at=T0, data={"n": i}) for i in range(n)]
    )


async def take(stream: AsyncIterator[Event], n: int) -> list[int]:
    async def collect() -> list[int]:
        return [(await anext(stream)).id or 0 for _ in range(n)]

    return await asyncio.wait_for(collect(), DEADLINE)


async def test_subscribers_receive_every_event_in_order() -> None:
    log = MemoryStore()
    bus = EventBus(log)
    first, second = bus.subscribe(), bus.subscribe()
    pending = asyncio.gather(take(first, 5), take(second, 5))
    await asyncio.sleep(0)  # let both subscriptions start waiting
    events = await make(log, 5)
    bus.publish(events[:2])
    bus.publish(events[2:])
    assert list(await pending) == [[1, 2, 3, 4, 5], [1, 2, 3, 4, 5]]
    bus.close()


async def test_replay_from_an_id_reads_the_ring_then_goes_live() -> None:
    log = MemoryStore()
    bus = EventBus(log)
    bus.publish(await make(log, 4))
    stream = bus.subscribe(after=2)
    assert await take(stream, 2) == [3, 4]
    bus.publish(await make(log, 1))
    assert await take(stream, 1) == [5]
    bus.close()


async def test_a_subscriber_behind_the_ring_catches_up_from_the_log() -> None:
    log = MemoryStore()
    bus = EventBus(log, buffer=3)
    bus.publish(await make(log, 10))  # the ring now holds 8..10 only
    assert await take(bus.subscribe(after=0), 10) == list(range(1, 11))
    bus.close()


async def test_a_stalled_subscriber_does_not_delay_others_or_grow_memory() -> None:
    log = MemoryStore()
    bus = EventBus(log, buffer=8)
    stalled = bus.subscribe(after=0)  # never read while the others are served
    lively = bus.subscribe(after=0)
    for _ in range(50):
        bus.publish(await make(log, 10))
    assert await take(lively, 500) == list(range(1, 501))
    assert len(bus._recent) == 8
    assert await take(stalled, 500) == list(range(1, 501))
    bus.close()


async def test_events_seen_twice_are_published_once() -> None:
    log = MemoryStore()
    bus = EventBus(log)
    seen: list[int] = []
    bus.add_listener(lambda e: seen.append(e.id or 0))
    events = await make(log, 3)
    assert bus.publish(events[:2]) == 2
    assert await bus.catch_up() == 1  # only the third was new
    assert bus.publish(events) == 0
    assert seen == [1, 2, 3]


async def test_a_failing_listener_does_not_stop_the_others(caplog: object) -> None:
    log = MemoryStore()
    bus = EventBus(log)
    seen: list[int] = []

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    bus.add_listener(broken)
    bus.add_listener(lambda e: seen.append(e.id or 0))
    bus.publish(await make(log, 2))
    assert seen == [1, 2]


async def test_close_ends_subscriptions() -> None:
    bus = EventBus(MemoryStore())
    stream = bus.subscribe()
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    bus.close()
    done, _ = await asyncio.wait([waiting], timeout=DEADLINE)
    assert waiting in done and isinstance(waiting.exception(), StopAsyncIteration)


class CountingLog(MemoryStore):
    """A log that counts its reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def events_after(self, last_id: int, *, limit: int = 500) -> list[Event]:
        self.reads += 1
        return await super().events_after(last_id, limit=limit)


async def test_catching_up_reads_the_log_only_when_its_version_moved() -> None:
    log = CountingLog()
    bus = EventBus(log, version=log.log_version)
    assert await bus.catch_up() == 0 and log.reads == 1  # the first time, it reads
    for _ in range(5):
        assert await bus.catch_up() == 0
    assert log.reads == 1  # nothing appended: no read
    await make(log, 2)  # stored by "another process": not published here
    assert await bus.catch_up() == 2 and log.reads == 2
    assert await bus.catch_up() == 0 and log.reads == 2
    assert await bus.catch_up(force=True) == 0 and log.reads == 3  # a recheck reads anyway
    assert bus.last_id == 2
    bus.close()


async def test_without_a_version_every_catch_up_reads() -> None:
    log = CountingLog()
    bus = EventBus(log)
    for _ in range(3):
        await bus.catch_up()
    assert log.reads == 3
    bus.close()
