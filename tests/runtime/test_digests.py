"""A daily digest from real Vigils on PostgreSQL to a real receiver, on a fake clock: delivered
once for its day across a restart and a leader change, and the next day's by the new leader."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.notify.receiver import Receiver, serving
from vigil.runtime import Vigil
from vigil.runtime.notifier import DeliveryPolicy

from .support import Clock, Script, Started, settings, wait_until
from .test_dispatch import add_channel, breach

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)  # 08:00 in Berlin
QUICK = DeliveryPolicy(check_every=0.2)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving() as found:
        yield found


def instance(url: str, script: Script, clock: Clock, name: str) -> Started:
    vigil = Vigil(
        settings(url, instance=name),
        sources=[script],
        process_metrics=False,
        clock=clock,
        delivery=QUICK,
    )
    return Started(vigil)


async def test_a_daily_digest_is_delivered_once_across_a_restart_and_a_leader_change(
    migrated_postgres_url: str, receiver: Receiver
) -> None:
    url, script, clock = migrated_postgres_url, Script(), Clock(T0)
    async with instance(url, script, clock, "a") as a:
        assert a.monitor.leadership.is_leader
        await add_channel(a, "live", receiver.url("/live"))
        await add_channel(
            a,
            "daily",
            receiver.url("/daily"),
            delivery="daily",
            digest_at="09:00",
            timezone="Europe/Berlin",
        )
        await breach(a, clock, script, 250, 250)  # a critical opens
        await receiver.wait_for(lambda: len(receiver.on("/live")) == 1)
        assert receiver.on("/daily") == []  # nothing in real time for a digest channel
        clock.advance(3600 - 60)  # 09:00 in Berlin: the day's period is over
        await receiver.wait_for(lambda: len(receiver.on("/daily")) == 1)
        [hit] = receiver.on("/daily")
        assert hit.body["title"] == "Daily digest: 1 opened, 0 escalated, 0 resolved, 1 still open"
        assert "CRITICAL gateway_latency" in hit.body["message"]
        await wait_until(lambda: a.notifier.status().delivered == 2)

    # Restarted: the period's digest is written, so nothing is written again.
    async with instance(url, script, clock, "a") as a:
        assert a.monitor.leadership.is_leader
        assert await a.notifier.digest(clock()) == 0
        async with instance(url, script, clock, "b") as b:
            assert not b.monitor.leadership.is_leader
            await a.aclose()  # the leader goes away; the next cycle makes b the leader
            await b.monitor.cycle()
            assert b.monitor.leadership.is_leader
            assert await b.notifier.digest(clock()) == 0
            clock.advance(timedelta(days=1).total_seconds())  # the next day's 09:00
            await receiver.wait_for(lambda: len(receiver.on("/daily")) == 2)
            await wait_until(lambda: b.notifier.status().delivered == 1)
            assert await b.notifier.digest(clock()) == 0
    second = receiver.on("/daily")[1]
    assert second.body["title"] == "Daily digest: 0 opened, 0 escalated, 0 resolved, 1 still open"
    assert len({hit.key for hit in receiver.on("/daily")}) == 2
    assert len(receiver.on("/live")) == 1
