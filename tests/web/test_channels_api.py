"""The channels API against a real Vigil: channels added, shown masked, changed, removed and
tested on a real receiver at 127.0.0.1, and the outbox (/api/notifications) after deliveries
that failed for good, as the real dispatcher leaves it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from vigil.core import EventKind
from vigil.runtime.notifier import DeliveryPolicy

from ..notify.receiver import Receiver, serving
from .support import LATENCY, T0, Api, eventually, running_api

# What these tests check sits above the store (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only

DISCORD = "discord://1234567890/secrettokenABC"
NEW_DISCORD = "discord://9876543210/othertokenXYZ"
ALL_EVENTS = ["opened", "escalated", "acknowledged", "resolved", "flapping"]


def stamp(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving() as found:
        yield found


async def add(api: Api, name: str, url: str, **fields: Any) -> dict[str, Any]:
    response = await api.post("/api/channels", json={"name": name, "url": url, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def patch(api: Api, name: str, body: Any) -> httpx.Response:
    return await api.request("PATCH", f"/api/channels/{name}", role="admin", json=body)


async def stored_url(api: Api, name: str) -> str:
    return (await api.vigil.store.get_channel(name)).channel.url


def assert_invalid(response: httpx.Response, field: str, case: object) -> None:
    assert response.status_code == 422, (case, response.text)
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid", field), (case, error)


# -- adding and reading -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "masked", "service", "secrets"),
    [
        (DISCORD, "discord://1...0/***", "Discord", ["1234567890", "secrettokenABC"]),
        (
            "json://user:hunter2@127.0.0.1:8080/path?token=xyz",
            "json://user:****@127.0.0.1:8080/***?***",
            "JSON",
            ["hunter2", "/path", "token", "xyz"],
        ),
    ],
)
async def test_a_channel_is_shown_masked_and_stored_in_full(
    api: Api, url: str, masked: str, service: str, secrets: list[str]
) -> None:
    response = await api.post("/api/channels", json={"name": "ops", "url": url})
    assert response.status_code == 201, response.text
    expected = {
        "name": "ops",
        "service": service,
        "url": masked,
        "min_severity": "info",
        "events": ALL_EVENTS,
        "enabled": True,
        "renotify_minutes": None,
        "delivery": "realtime",
        "digest_at": "09:00",
        "timezone": "UTC",
        "created_at": stamp(0),
        "updated_at": stamp(0),
    }
    assert response.json() == expected
    listed = await api.get("/api/channels")
    one = await api.get("/api/channels/ops")
    assert (listed.status_code, one.status_code) == (200, 200)
    assert listed.json() == [expected] and one.json() == expected
    for answer in (response, listed, one):
        leaked = [secret for secret in secrets if secret in answer.text]
        assert leaked == [], answer.text
    assert await stored_url(api, "ops") == url  # the dispatcher needs every part of it


async def test_channels_are_listed_by_name_with_their_settings(api: Api) -> None:
    await add(api, "zulu", "json://127.0.0.1:8080/z")
    await add(
        api,
        "alpha",
        DISCORD,
        min_severity="critical",
        events=["resolved", "opened"],
        enabled=False,
        renotify_minutes=15,
    )
    listed = (await api.get("/api/channels")).json()
    assert [channel["name"] for channel in listed] == ["alpha", "zulu"]
    alpha = listed[0]
    assert (alpha["min_severity"], alpha["enabled"], alpha["renotify_minutes"]) == (
        "critical",
        False,
        15,
    )
    assert alpha["events"] == ["opened", "resolved"]  # in lifecycle order, whatever was sent


async def test_invalid_channels_name_the_field_and_store_nothing(api: Api) -> None:
    valid = {"name": "ops", "url": "json://127.0.0.1:8080/hook"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"url": "discord://1234567890"}, "url"),  # apprise: a Discord URL needs its token
        ({"url": "foo://x"}, "url"),  # no apprise service for the scheme
        ({"url": "https://example.com"}, "url"),  # a web page, not a webhook apprise knows
        ({"url": "json://127.0.0.1/***"}, "url"),  # the masked form of some URL
        ({"url": "json://127.0.0.1:99999/hook"}, "url"),  # no server listens there
        ({"url": "mailto://me:pw@mail.example.com:0?to=a@example.com"}, "url"),
        ({"url": ""}, "url"),
        ({"url": None}, "url"),
        ({"name": "Ops"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 51}, "name"),
        ({"events": ["opened", "exploded"]}, "events[1]"),
        ({"events": []}, "events"),
        ({"renotify_minutes": 0}, "renotify_minutes"),
        ({"renotify_minutes": 7 * 24 * 60 + 1}, "renotify_minutes"),
        ({"renotify_minutes": 1.5}, "renotify_minutes"),
        ({"min_severity": "fatal"}, "min_severity"),
        ({"enabled": "yes"}, "enabled"),
        ({"colour": "red"}, "colour"),  # not a channel field
    ]
    for change, field in cases:
        response = await api.post("/api/channels", json={**valid, **change})
        assert_invalid(response, field, change)
    response = await api.post("/api/channels", json={"name": "ops"})
    assert_invalid(response, "url", "no url")
    assert (await api.get("/api/channels")).json() == []
    assert await api.vigil.store.list_channels() == []


async def test_a_refused_url_is_not_quoted_back_with_its_secret(api: Api) -> None:
    response = await api.post(
        "/api/channels", json={"name": "ops", "url": "discord://supersecret99"}
    )
    assert_invalid(response, "url", "discord without token")
    assert "supersecret99" not in response.text


async def test_a_name_already_taken_is_refused_and_the_first_channel_kept(api: Api) -> None:
    first = await add(api, "ops", DISCORD, min_severity="warning")
    response = await api.post(
        "/api/channels", json={"name": "ops", "url": NEW_DISCORD, "min_severity": "critical"}
    )
    assert_invalid(response, "name", "taken")
    assert "ops" in response.json()["error"]["message"]
    assert (await api.get("/api/channels")).json() == [first]
    assert await stored_url(api, "ops") == DISCORD


async def test_an_unknown_channel_is_404(api: Api) -> None:
    for method, path in (
        ("GET", "/api/channels/nope"),
        ("DELETE", "/api/channels/nope"),
        ("POST", "/api/channels/nope/test"),
    ):
        role = "viewer" if method == "GET" else "admin"
        response = await api.request(method, path, role=role)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "not_found"
    response = await patch(api, "nope", {"enabled": False})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


async def test_viewers_read_channels_and_may_not_change_them(api: Api) -> None:
    await add(api, "ops", DISCORD)
    assert (await api.get("/api/channels", role="viewer")).status_code == 200
    assert (await api.get("/api/channels/ops", role="viewer")).status_code == 200
    response = await api.post(
        "/api/channels", role="viewer", json={"name": "mine", "url": NEW_DISCORD}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert [c.channel.name for c in await api.vigil.store.list_channels()] == ["ops"]


# -- changing -----------------------------------------------------------------------------------


async def test_a_change_keeps_left_out_fields_and_null_turns_reminders_off(api: Api) -> None:
    created = await add(api, "ops", DISCORD, renotify_minutes=10)
    api.clock.advance(60)
    response = await patch(
        api,
        "ops",
        {"min_severity": "critical", "events": ["resolved", "opened"], "enabled": False},
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed == {
        **created,
        "min_severity": "critical",
        "events": ["opened", "resolved"],
        "enabled": False,
        "updated_at": stamp(60),
    }
    assert (await api.get("/api/channels/ops")).json() == changed

    response = await patch(api, "ops", {"renotify_minutes": None})
    assert response.status_code == 200, response.text
    assert response.json() == {**changed, "renotify_minutes": None}
    response = await patch(api, "ops", {"renotify_minutes": 45, "enabled": True})
    assert (response.json()["renotify_minutes"], response.json()["enabled"]) == (45, True)
    stored = (await api.vigil.store.get_channel("ops")).channel
    assert (stored.renotify_minutes, stored.enabled, stored.url) == (45, True, DISCORD)


async def test_the_masked_url_sent_back_keeps_the_stored_one_and_a_new_url_replaces_it(
    api: Api,
) -> None:
    created = await add(api, "ops", DISCORD)
    # What an edit form does: every field sent back as shown, the URL masked.
    editable = ("url", "min_severity", "events", "enabled", "renotify_minutes")
    shown = {field: created[field] for field in editable}
    response = await patch(api, "ops", {**shown, "min_severity": "warning"})
    assert response.status_code == 200, response.text
    assert response.json()["url"] == created["url"] == "discord://1...0/***"
    assert response.json()["min_severity"] == "warning"
    assert await stored_url(api, "ops") == DISCORD

    response = await patch(api, "ops", {"url": NEW_DISCORD})
    assert response.status_code == 200, response.text
    assert response.json()["url"] == "discord://9...0/***"
    assert "othertokenXYZ" not in response.text
    assert await stored_url(api, "ops") == NEW_DISCORD


async def test_an_invalid_change_names_the_field_and_changes_nothing(api: Api) -> None:
    created = await add(api, "ops", DISCORD, min_severity="warning")
    cases: list[tuple[Any, str]] = [
        ({"name": "other"}, "name"),  # the name cannot change
        ({"url": "foo://x"}, "url"),
        ({"url": "discord://1234567890"}, "url"),
        ({"url": "json://127.0.0.1/***"}, "url"),  # masked, but not this channel's URL
        ({"url": None}, "url"),
        ({"min_severity": None}, "min_severity"),  # only renotify_minutes may be null
        ({"events": []}, "events"),
        ({"events": ["exploded"]}, "events[0]"),
        ({"renotify_minutes": 0}, "renotify_minutes"),
        ({"enabled": "no"}, "enabled"),
        ({"colour": "red"}, "colour"),
    ]
    for body, field in cases:
        assert_invalid(await patch(api, "ops", body), field, body)
    assert (await api.get("/api/channels/ops")).json() == created
    assert await stored_url(api, "ops") == DISCORD


# -- removing -----------------------------------------------------------------------------------


async def test_a_removed_channel_is_gone(api: Api) -> None:
    await add(api, "ops", DISCORD)
    await add(api, "other", NEW_DISCORD)
    response = await api.request("DELETE", "/api/channels/ops", role="admin")
    assert (response.status_code, response.content) == (204, b"")
    assert (await api.get("/api/channels/ops")).status_code == 404
    assert [channel["name"] for channel in (await api.get("/api/channels")).json()] == ["other"]
    again = await api.request("DELETE", "/api/channels/ops", role="admin")
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"


async def test_every_change_is_published_naming_who_made_it_without_the_secret(
    api: Api,
) -> None:
    stream = api.vigil.subscribe(after=api.vigil.bus.last_id)
    await add(api, "ops", DISCORD)
    await patch(api, "ops", {"enabled": False})
    await api.request("DELETE", "/api/channels/ops", role="admin")

    published = [await anext(stream) for _ in range(3)]
    assert [(e.kind, e.by) for e in published] == [
        (EventKind.CHANNEL_ADDED, "admin-bot"),
        (EventKind.CHANNEL_CHANGED, "admin-bot"),
        (EventKind.CHANNEL_REMOVED, "admin-bot"),
    ]
    assert published[1].data["changed"] == ["enabled"]
    assert "secrettokenABC" not in str([e.to_dict() for e in published])
    logged = [e.id for e in await api.vigil.store.events_after(0) if e.kind.startswith("channel.")]
    assert logged == [e.id for e in published]  # what the log holds, for other instances


# -- test messages ------------------------------------------------------------------------------


@pytest.mark.parametrize("enabled", [True, False])
async def test_a_test_message_reaches_the_receiver(
    api: Api, receiver: Receiver, enabled: bool
) -> None:
    await add(api, "ops", receiver.url("/test"), enabled=enabled)
    response = await api.post("/api/channels/ops/test")
    assert response.status_code == 200, response.text
    assert response.json() == {"channel": "ops", "delivered": True}
    [hit] = receiver.hits  # answered only once the receiver had it
    assert hit.path == "/test"
    assert hit.body["title"] == "Vigil test message"
    assert "'ops'" in hit.body["message"] and hit.body["type"] == "info"
    assert hit.key != ""  # a JSON webhook gets an Idempotency-Key
    assert await api.vigil.store.list_notifications() == []  # not through the outbox


async def test_a_test_message_the_receiver_refuses_is_502(api: Api, receiver: Receiver) -> None:
    receiver.always_fail.add("/down")
    url = f"json://user:hunter2@127.0.0.1:{receiver.port}/down?token=xyz"
    await add(api, "down", url)
    response = await api.post("/api/channels/down/test")
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("delivery_failed", None)
    assert "'down'" in error["message"] and "500" in error["message"]
    assert "hunter2" not in response.text and "xyz" not in response.text
    assert len(receiver.on("/down")) == 1  # it was sent, and refused


# -- the outbox ---------------------------------------------------------------------------------


async def test_deliveries_given_up_on_are_listed_with_their_error_and_counted(
    migrated_url: str, receiver: Receiver
) -> None:
    receiver.always_fail.add("/down")
    policy = DeliveryPolicy(max_attempts=2, backoff=0.5, check_every=0.5)
    async with running_api(migrated_url, delivery=policy) as api:
        await add(api, "down", receiver.url("/down"))
        await add(api, "up", receiver.url("/up"))
        [opened] = await api.breach(LATENCY, 150)
        assert opened.incident is not None and opened.id is not None
        await receiver.wait_for(lambda: len(receiver.on("/down")) == 1)

        async def first_attempt_recorded() -> bool:
            # Only the failing row is left pending: the other channel's delivery is settled.
            response = await api.get("/api/notifications", params={"status": "pending"})
            rows = response.json()
            return len(rows) == 1 and rows[0]["last_error"] is not None

        await eventually(first_attempt_recorded)
        [waiting] = (await api.get("/api/notifications", params={"status": "pending"})).json()
        assert (waiting["channel"], waiting["attempts"]) == ("down", 1)
        assert waiting["next_attempt_at"] == stamp(60 + policy.retry_delay(1))
        # The retry is due after the backoff on Vigil's clock, which this test moves; the
        # dispatcher's periodic check (every 0.5 s) finds it due.
        api.clock.advance(policy.retry_delay(1))

        async def given_up() -> bool:
            failed = await api.get("/api/notifications", params={"status": "failed"})
            health = (await api.get("/api/health")).json()
            return bool(failed.json()) and health["details"]["notifications"]["failed"] == 1

        await eventually(given_up)
        assert len(receiver.on("/down")) == 2 and len(receiver.on("/up")) == 1

        response = await api.get("/api/notifications", params={"status": "failed"})
        assert response.status_code == 200
        [failed] = response.json()
        assert failed["last_error"] is not None and "500" in failed["last_error"]
        assert {k: v for k, v in failed.items() if k not in ("id", "last_error")} == {
            "channel": "down",
            "incident_id": str(opened.incident.id),
            "event_id": opened.id,
            "repeat": 0,
            "status": "failed",
            "attempts": 2,
            "next_attempt_at": None,  # given up on: never tried again
            "sent_at": None,
            "created_at": stamp(60),
        }

        notifications = (await api.get("/api/health")).json()["details"]["notifications"]
        assert notifications["last_error"].startswith("down: ")
        assert {k: v for k, v in notifications.items() if k != "last_error"} == {
            "dispatching": True,
            "pending": 0,
            "sent": 1,
            "failed": 1,
            "last_error_at": stamp(60 + policy.retry_delay(1)),
        }

        everything = (await api.get("/api/notifications")).json()
        assert sorted((row["channel"], row["status"]) for row in everything) == [
            ("down", "failed"),
            ("up", "sent"),
        ]
        ids = [row["id"] for row in everything]
        assert ids == sorted(ids, reverse=True)  # newest first
        [sent] = [row for row in everything if row["status"] == "sent"]
        assert (sent["attempts"], sent["sent_at"], sent["last_error"]) == (1, stamp(60), None)
        [newest] = (await api.get("/api/notifications", params={"limit": 1})).json()
        assert newest["id"] == max(ids)
        mine = await api.get("/api/notifications", params={"incident_id": str(opened.incident.id)})
        assert len(mine.json()) == 2
        other = await api.get("/api/notifications", params={"incident_id": str(uuid.uuid4())})
        assert other.json() == []


async def test_the_outbox_filters_are_checked(api: Api) -> None:
    for params, field in (
        ({"status": "lost"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"incident_id": "not-a-uuid"}, "incident_id"),
    ):
        assert_invalid(await api.get("/api/notifications", params=params), field, params)
    response = await api.get("/api/notifications", params={"status": "failed"})
    assert (response.status_code, response.json()) == (200, [])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"delivery": "weekly"}, "delivery"),
        ({"delivery": "daily", "digest_at": "25:00"}, "digest_at"),
        ({"delivery": "daily", "timezone": "Mars/Olympus"}, "timezone"),
    ],
)
async def test_a_bad_digest_setting_is_422_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    response = await api.post("/api/channels", json={"name": "ops", "url": DISCORD, **body})
    assert response.status_code == 422, response.text
    assert field in response.text
    assert (await api.get("/api/channels")).json() == []


async def test_a_channel_becomes_a_daily_digest_and_back(api: Api) -> None:
    await add(api, "ops", DISCORD)
    response = await patch(
        api, "ops", {"delivery": "daily", "digest_at": "08:30", "timezone": "Europe/Berlin"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["delivery"], body["digest_at"], body["timezone"]) == (
        "daily",
        "08:30",
        "Europe/Berlin",
    )
    assert (await api.vigil.store.get_channel("ops")).channel.timezone == "Europe/Berlin"
    response = await patch(api, "ops", {"delivery": "realtime"})
    assert response.json()["delivery"] == "realtime"
