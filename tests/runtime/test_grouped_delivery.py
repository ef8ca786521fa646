"""End to end: a real Vigil served over HTTP, its dispatcher delivering to a real receiver on
127.0.0.1. Three rules breaching together are told of in one message (counted at the
receiver); a fourth joining later brings one follow-up; the group's resolution is one
message. Without grouping, the same breach is three messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.web.support import LATENCY, Api, running_api, served
from vigil.runtime.notifier import DeliveryPolicy

from ..notify.receiver import PATIENCE, Receiver, serving

ERRORS = "error_rate"
COMMANDS = "command_p95_latency"
MEMORY = "memory_usage"
BREACHING = {LATENCY: 250.0, ERRORS: 7.0, COMMANDS: 350.0}
NORMAL = {LATENCY: 10.0, ERRORS: 0.0, COMMANDS: 10.0, MEMORY: 10.0}
QUICK = DeliveryPolicy(check_every=0.2, lease=5.0)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving() as found:
        yield found


async def sent(api: Api, count: int) -> None:
    """Wait until ``count`` messages were sent and none is pending (a condition on the
    database, polled with a deadline)."""
    async with asyncio.timeout(PATIENCE):
        while True:
            counts = await api.vigil.store.outbox_counts()
            if counts.sent >= count and counts.pending == 0:
                return
            await asyncio.sleep(0.05)


async def add_channel(base: str, api: Api, url: str) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.post(
            "/api/channels", json={"name": "ops", "url": url}, headers=api.auth("admin")
        )
        assert response.status_code == 201, response.text


async def test_three_rules_breaching_together_send_one_grouped_message(
    migrated_url: str, receiver: Receiver
) -> None:
    async with (
        running_api(migrated_url, delivery=QUICK, settings_changes={"group_window": 60.0}) as api,
        served(api.app) as (base, _),
    ):
        await add_channel(base, api, receiver.url("/ops"))
        for _ in range(2):  # breaches_required: 2
            await api.cycle(BREACHING)
        await sent(api, 1)
        assert len(receiver.hits) == 1
        [hit] = receiver.hits
        title = hit.body["title"]
        assert title.startswith("[CRITICAL] 3 incidents: ")
        for rule in (LATENCY, ERRORS, COMMANDS):
            assert rule in title and rule in hit.body["message"]
        assert "most severe critical" in title

        # A fourth rule breaching a cycle later joins the group: one follow-up, no sooner
        # than the window (60 s) after the first message.
        await api.cycle({**BREACHING, MEMORY: 500.0})
        await api.cycle({**BREACHING, MEMORY: 500.0})
        async with httpx.AsyncClient(base_url=base) as client:
            groups = (await client.get("/api/alerts/groups", headers=api.auth("viewer"))).json()
        [group] = groups
        assert group["size"] == 4
        await sent(api, 2)
        assert len(receiver.hits) == 2
        follow_up = receiver.hits[1]
        assert follow_up.body["title"].startswith("[CRITICAL] 4 incidents: ")

        # All recover together: one message for the group's resolution.
        for _ in range(3):  # recoveries_required: 3
            await api.cycle(NORMAL)
        await sent(api, 3)
        resolved = receiver.hits[2]
        assert resolved.body["title"].startswith("[RESOLVED] 4 incidents: ")
        counts = await api.vigil.store.outbox_counts()
        assert (counts.pending, counts.sent) == (0, 3)
        assert len(receiver.hits) == 3  # 4 incidents, 3 messages (ungrouped: 4 + 4)


async def test_without_grouping_each_incident_is_its_own_message(
    migrated_url: str, receiver: Receiver
) -> None:
    async with (
        running_api(migrated_url, delivery=QUICK, settings_changes={"group_window": 0.0}) as api,
        served(api.app) as (base, _),
    ):
        await add_channel(base, api, receiver.url("/ops"))
        for _ in range(2):
            await api.cycle(BREACHING)
        await sent(api, 3)
        titles = sorted(hit.body["title"] for hit in receiver.hits)
        assert all("incident opened" in title for title in titles)
        counts = await api.vigil.store.outbox_counts()
        assert (counts.pending, counts.sent) == (0, 3)


async def test_each_critical_member_of_a_group_is_reminded(
    migrated_url: str, receiver: Receiver
) -> None:
    async with running_api(
        migrated_url, delivery=QUICK, settings_changes={"group_window": 60.0}
    ) as api:
        await api.vigil.store.add_channel(
            {"name": "pager", "url": receiver.url("/pager"), "renotify_minutes": 5},
            now=api.clock(),
        )
        for _ in range(2):
            await api.cycle(BREACHING)  # two critical members, one warning
        await sent(api, 1)
        critical = {i.id for i in api.vigil.view.active() if i.severity.value == "critical"}
        assert len(critical) == 2
        api.clock.advance(5 * 60)
        # The notifier's own round (every 0.2 s) may write some of them first: what counts
        # is that each is written, once.
        await api.vigil.notifier.remind(api.clock())
        reminders = [row for row in await api.vigil.store.list_notifications() if row.repeat == 1]
        assert {row.incident_id for row in reminders} == critical
        assert len(reminders) == len(critical)  # once each
        assert await api.vigil.notifier.remind(api.clock()) == 0  # written once
