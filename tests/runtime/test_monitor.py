"""The monitor's logic, cycle by cycle, on an in-memory store."""

from __future__ import annotations

import asyncio

from vigil.core import EventKind, Severity, Status
from vigil.store.memory import MemoryStore

from .support import Broken, Runtime, wait_until

LATENCY = "gateway_latency"


async def test_breach_opens_escalates_and_auto_resolves() -> None:
    async with Runtime() as runtime:
        stream = runtime.bus.subscribe()
        kinds = await runtime.kinds(LATENCY, 150, 150, 250, 250, 50, 50, 50)
        assert kinds == [
            EventKind.INCIDENT_OPENED,
            EventKind.INCIDENT_ESCALATED,
            EventKind.INCIDENT_RESOLVED,
        ]
        received = [await anext(stream) for _ in range(3)]
        assert [e.kind for e in received] == kinds
        assert [e.id for e in received] == sorted(e.id or 0 for e in received)
        resolved = received[-1].incident
        assert resolved is not None
        assert (resolved.status, resolved.severity, resolved.peak_value) == (
            Status.RESOLVED,
            Severity.CRITICAL,
            250,
        )
        assert runtime.view.active() == [] and await runtime.store.active_incidents() == []
        stored = [s.value for s in runtime.store.samples if s.metric == LATENCY]
        assert stored == [150, 150, 250, 250, 50, 50, 50]


async def test_the_live_view_follows_cycles_and_actions() -> None:
    async with Runtime() as runtime:
        await runtime.kinds(LATENCY, 150, 150)
        [incident] = runtime.view.active()
        assert runtime.view.current[LATENCY].value == 150
        assert runtime.view.summary()[Severity.WARNING] == 1
        acked, event = await runtime.store.acknowledge_incident(
            incident.id, by="ana", now=runtime.clock(), notes="looking"
        )
        runtime.publish(event)
        assert runtime.view.active() == [acked]
        # acknowledged, it still escalates and auto-resolves; the acknowledgement survives
        await runtime.kinds(LATENCY, 250, 250)
        [escalated] = runtime.view.active()
        assert (escalated.severity, escalated.acknowledged_by) == (Severity.CRITICAL, "ana")
        _, event = await runtime.store.resolve_incident(incident.id, by="ana", now=runtime.clock())
        runtime.publish(event)
        assert runtime.view.active() == []
        # a manual resolution restarts the streak: one more breach opens nothing
        assert await runtime.kinds(LATENCY, 250) == []


async def test_a_restart_mid_streak_continues_the_streak() -> None:
    store = MemoryStore()
    async with Runtime(store) as runtime:
        assert await runtime.kinds(LATENCY, 150) == []
    # the new instance's first cycle reads no data
    async with Runtime(store, clock=runtime.clock) as again:
        assert await again.kinds(LATENCY, 150) == [EventKind.INCIDENT_OPENED]


async def test_a_restart_mid_incident_neither_duplicates_nor_forgets() -> None:
    store = MemoryStore()
    async with Runtime(store) as runtime:
        await runtime.kinds(LATENCY, 150, 150, 50)
        [before] = runtime.view.active()
    async with Runtime(store, clock=runtime.clock) as again:
        assert again.view.active() == [before]
        assert await again.kinds(LATENCY, 150) == []  # no second incident
        assert await again.kinds(LATENCY, 50, 50, 50) == [EventKind.INCIDENT_RESOLVED]
    opened = await again.logged(EventKind.INCIDENT_OPENED)
    assert len(opened) == 1


async def test_a_restart_after_a_manual_resolution_starts_the_streak_afresh() -> None:
    store = MemoryStore()
    async with Runtime(store) as runtime:
        await runtime.kinds(LATENCY, 150, 150, 150)
        [incident] = runtime.view.active()
        _, event = await store.resolve_incident(incident.id, by="ana", now=runtime.clock())
        runtime.publish(event)
    async with Runtime(store, clock=runtime.clock) as again:
        assert await again.kinds(LATENCY, 150) == []  # one breach of the two it takes
        assert await again.kinds(LATENCY, 150) == [EventKind.INCIDENT_OPENED]


async def test_a_failing_source_costs_only_its_own_metrics() -> None:
    async with Runtime(sources=[Broken()]) as runtime:
        assert await runtime.kinds(LATENCY, 150, 150) == [EventKind.INCIDENT_OPENED]
        assert runtime.monitor.status().database_ok


async def test_a_rule_changed_elsewhere_applies_to_the_next_cycle() -> None:
    async with Runtime() as runtime:
        # as the CLI would: stored, and told nobody
        await runtime.store.update_rule(
            LATENCY, {"warning": 300, "critical": 400}, by="cli", now=runtime.clock()
        )
        # the leader reads the log before judging the cycle
        assert await runtime.kinds(LATENCY, 250, 250) == []
        assert runtime.view.rules[LATENCY].warning == 300
        [changed] = await runtime.logged(EventKind.RULE_CHANGED)
        assert changed.by == "cli"


async def test_a_follower_stores_its_samples_and_shows_the_leader_incidents() -> None:
    store = MemoryStore()
    async with Runtime(store, instance="leader") as leader:
        await leader.kinds(LATENCY, 250, 250)
        [incident] = await store.active_incidents()
        follower = Runtime(store, clock=leader.clock, instance="follower", leadership=_Follower())
        async with follower:
            assert await follower.cycle({LATENCY: 10.0}) == []
            assert follower.view.active() == [incident]
            assert follower.monitor.status().leader is False
        assert [s.instance for s in store.samples if s.value == 10.0] == ["follower"]


class _Follower:
    is_leader = False

    async def try_acquire(self) -> bool:
        return False

    async def still_leader(self) -> bool:
        return False

    async def release(self) -> None:
        return None


class Slow:
    """A source slower than the interval: each cycle overruns."""

    name = "slow"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.reads = 0

    async def read(self) -> dict[str, float | None]:
        self.reads += 1
        await asyncio.sleep(self.seconds)  # the system under test is slow, not the test
        return {LATENCY: 20.0}


async def test_an_overrunning_cycle_is_reported_late_never_overlapped() -> None:
    slow = Slow(1.6)
    runtime = Runtime(sources=[slow], interval=1)
    async with runtime:
        stop = asyncio.Event()
        loop = asyncio.create_task(runtime.monitor.run(stop))
        try:
            await wait_until(lambda: runtime.monitor.status().cycles >= 2)
        finally:
            stop.set()
            await loop
        status = runtime.monitor.status()
        assert status.cycles_late >= 1  # every cycle covered at least one tick
        assert slow.reads == status.cycles  # one read per cycle, in turn
