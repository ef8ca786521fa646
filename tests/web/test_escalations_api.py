"""The escalation policies API against a real Vigil, and end to end on a real server with two
local receivers: an unacknowledged critical reaches the second channel after the configured
time (a fake clock, no sleeping) and stops when acknowledged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from vigil.runtime.notifier import DeliveryPolicy

from ..notify.receiver import Receiver, serving
from .support import LATENCY, Api, eventually, running_api, served

# What these tests check sits above the store (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only

POLICY: dict[str, Any] = {
    "name": "night",
    "description": "first responders, then the pager",
    "steps": [
        {"channels": ["first"], "wait_minutes": 15},
        {"channels": ["second"], "wait_minutes": 10},
    ],
    "repeat_minutes": None,
    "rules": [],
    "severities": ["critical"],
}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving() as found:
        yield found


async def add_channels(api: Api, receiver: Receiver) -> None:
    for name in ("first", "second"):
        url = receiver.url(f"/{name}").replace("http://", "json://")
        response = await api.post("/api/channels", json={"name": name, "url": url})
        assert response.status_code == 201, response.text


async def test_policies_are_added_listed_changed_and_removed(api: Api, receiver: Receiver) -> None:
    await add_channels(api, receiver)
    response = await api.post("/api/escalations", json=POLICY)
    assert response.status_code == 201, response.text
    assert response.json() == POLICY
    assert (await api.get("/api/escalations")).json() == [POLICY]
    response = await api.request(
        "PATCH",
        "/api/escalations/night",
        role="admin",
        json={"repeat_minutes": 30, "rules": ["error_rate"]},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {**POLICY, "repeat_minutes": 30, "rules": ["error_rate"]}
    assert (await api.get("/api/escalations/night")).json()["repeat_minutes"] == 30
    assert (await api.request("DELETE", "/api/escalations/night", role="admin")).status_code == 204
    assert (await api.get("/api/escalations/night")).status_code == 404
    assert (await api.request("DELETE", "/api/escalations/night", role="admin")).status_code == 404
    denied = await api.post("/api/escalations", json=POLICY, role="viewer")
    assert denied.status_code == 403


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"steps": [{"channels": ["nobody"]}]}, "steps[0].channels[0]"),
        ({"steps": []}, "steps"),
        ({"steps": [{"channels": ["first"], "wait_minutes": 0}]}, "wait_minutes"),
        ({"repeat_minutes": "soon"}, "repeat_minutes"),
        ({"severities": ["huge"]}, "severities"),
        ({"name": "Not A Name"}, "name"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_policies_are_422_naming_the_field(
    api: Api, receiver: Receiver, change: dict[str, Any], field: str
) -> None:
    await add_channels(api, receiver)
    response = await api.post("/api/escalations", json={**POLICY, **change})
    assert response.status_code == 422, response.text
    assert field in response.text
    assert (await api.get("/api/escalations")).json() == []


async def test_a_rule_or_severity_follows_one_policy(api: Api, receiver: Receiver) -> None:
    await add_channels(api, receiver)
    assert (await api.post("/api/escalations", json=POLICY)).status_code == 201
    again = await api.post("/api/escalations", json=POLICY)
    assert again.status_code == 422 and "already exists" in again.text
    clash = await api.post("/api/escalations", json={**POLICY, "name": "day"})
    assert clash.status_code == 422 and "severities" in clash.text


async def test_an_unacknowledged_critical_reaches_the_second_channel_and_stops_when_acknowledged(
    migrated_url: str, receiver: Receiver
) -> None:
    async with running_api(migrated_url, delivery=DeliveryPolicy(check_every=0.2)) as api:
        async with served(api.app) as (base, _), httpx.AsyncClient(base_url=base) as client:
            admin = api.auth("admin")
            for name in ("first", "second"):
                url = receiver.url(f"/{name}").replace("http://", "json://")
                response = await client.post(
                    "/api/channels", json={"name": name, "url": url}, headers=admin
                )
                assert response.status_code == 201, response.text
            policy = {**POLICY, "repeat_minutes": 10}
            response = await client.post("/api/escalations", json=policy, headers=admin)
            assert response.status_code == 201, response.text

            await api.breach(LATENCY, 250)  # critical
            [incident] = api.vigil.view.active()
            await receiver.wait_for(lambda: len(receiver.on("/first")) == 1)
            assert receiver.on("/first")[0].body["title"].endswith("incident opened")

            api.clock.advance(14 * 60)
            assert await api.vigil.notifier.escalate(api.clock()) == 0
            assert receiver.on("/second") == []  # 14 minutes: not yet
            api.clock.advance(60)  # 15 minutes unacknowledged: the second step
            await receiver.wait_for(lambda: len(receiver.on("/second")) == 1)
            assert "still unacknowledged" in receiver.on("/second")[0].body["title"]

            response = await client.post(
                f"/api/alerts/incidents/{incident.id}/acknowledge", json={}, headers=admin
            )
            assert response.status_code == 200, response.text
            await receiver.wait_for(lambda: len(receiver.on("/second")) == 2)
            assert receiver.on("/second")[1].body["title"].endswith("acknowledged by admin-bot")
            api.clock.advance(120 * 60)  # past every repeat it would have had
            assert await api.vigil.notifier.escalate(api.clock()) == 0
            await receiver.wait_for(lambda: len(receiver.on("/first")) == 2)

            async def all_sent() -> bool:
                outbox = await client.get("/api/notifications", headers=admin)
                return {item["status"] for item in outbox.json()} == {"sent"}

            await eventually(all_sent)
            outbox = (await client.get("/api/notifications", headers=admin)).json()
            assert len(outbox) == 4  # opened, step 2, the acknowledgement to each: no repeats
    assert [len(receiver.on(path)) for path in ("/first", "/second")] == [2, 2]
