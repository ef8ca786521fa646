"""The snoozes and maintenance API against a real Vigil: what it stores and shows, the events
it logs, and that a silenced rule really opens no incident through the monitor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from vigil.core import Event, EventKind
from vigil.core.silences import Weekday

from .support import LATENCY, T0, Api

# What these tests check sits above the store (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only

MEMORY = "memory_usage"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def stamp(seconds: float) -> str:
    return iso(T0 + timedelta(seconds=seconds))


def assert_invalid(response: httpx.Response, field: str, case: object) -> None:
    assert response.status_code == 422, (case, response.text)
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid", field), (case, error)


async def logged(api: Api, kind: EventKind) -> list[Event]:
    return [event for event in await api.vigil.store.events_after(0) if event.kind is kind]


async def delete(api: Api, path: str) -> httpx.Response:
    return await api.request("DELETE", path, role="admin")


# -- snoozes ------------------------------------------------------------------------------------


async def test_a_snooze_is_shown_logged_and_silences_its_rule_until_lifted(api: Api) -> None:
    response = await api.put(f"/api/snoozes/{LATENCY}", json={"minutes": 30, "reason": " deploy "})
    assert response.status_code == 200, response.text
    snooze = {
        "metric": LATENCY,
        "until": stamp(30 * 60),
        "reason": "deploy",
        "by": "admin-bot",
        "created_at": stamp(0),
    }
    assert response.json() == snooze
    listed = await api.get("/api/snoozes", role="viewer")
    assert (listed.status_code, listed.json()) == (200, [snooze])
    [started] = await logged(api, EventKind.SNOOZE_STARTED)
    assert (started.metric, started.by, started.data["reason"]) == (LATENCY, "admin-bot", "deploy")
    assert started.data["until"] == (T0 + timedelta(minutes=30)).isoformat()

    assert await api.breach(LATENCY, 150, times=3) == []
    assert (await api.get("/api/alerts/active")).json() == []
    assert [e.kind for e in await api.breach(MEMORY, 500)] == [EventKind.INCIDENT_OPENED]

    response = await delete(api, f"/api/snoozes/{LATENCY}")
    assert (response.status_code, response.content) == (204, b"")
    assert (await api.get("/api/snoozes")).json() == []
    [ended] = await logged(api, EventKind.SNOOZE_ENDED)
    assert (ended.metric, ended.by, ended.data["expired"]) == (LATENCY, "admin-bot", False)
    [opened] = await api.breach(LATENCY, 150, times=1)  # its streak went on while snoozed
    assert opened.kind is EventKind.INCIDENT_OPENED
    assert [i["metric"] for i in (await api.get("/api/alerts/active")).json()] == [MEMORY, LATENCY]

    again = await delete(api, f"/api/snoozes/{LATENCY}")
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"


async def test_a_new_snooze_replaces_the_running_one(api: Api) -> None:
    await api.put(f"/api/snoozes/{LATENCY}", json={"minutes": 10, "reason": "first"})
    api.clock.advance(60)
    response = await api.put(f"/api/snoozes/{LATENCY}", json={"minutes": 5, "reason": "second"})
    assert response.status_code == 200, response.text
    assert (response.json()["until"], response.json()["created_at"]) == (stamp(360), stamp(60))
    [only] = (await api.get("/api/snoozes")).json()
    assert (only["reason"], only["until"]) == ("second", stamp(360))
    [ended] = await logged(api, EventKind.SNOOZE_ENDED)
    assert ended.data["until"] == (T0 + timedelta(minutes=10)).isoformat()
    assert len(await logged(api, EventKind.SNOOZE_STARTED)) == 2


async def test_a_snooze_past_its_end_is_no_longer_listed(api: Api) -> None:
    await api.put(f"/api/snoozes/{LATENCY}", json={"minutes": 1, "reason": "blip"})
    api.clock.advance(60)
    assert (await api.get("/api/snoozes")).json() == []
    assert (await delete(api, f"/api/snoozes/{LATENCY}")).status_code == 404


async def test_snoozing_an_unknown_rule_is_404(api: Api) -> None:
    for metric in ("no_such_metric", "Not-A-Metric"):
        response = await api.put(f"/api/snoozes/{metric}", json={"minutes": 5, "reason": "x"})
        assert response.status_code == 404, (metric, response.text)
        assert response.json()["error"]["code"] == "not_found"
        assert (await delete(api, f"/api/snoozes/{metric}")).status_code == 404
    assert (await api.get("/api/snoozes")).json() == []
    assert await logged(api, EventKind.SNOOZE_STARTED) == []


async def test_an_invalid_snooze_names_the_field_and_stores_nothing(api: Api) -> None:
    cases: list[tuple[Any, str]] = [
        ({"minutes": 0, "reason": "x"}, "minutes"),
        ({"minutes": -5, "reason": "x"}, "minutes"),
        ({"minutes": 30 * 24 * 60 + 1, "reason": "x"}, "minutes"),
        ({"minutes": 1.5, "reason": "x"}, "minutes"),
        ({"minutes": "5", "reason": "x"}, "minutes"),
        ({"reason": "x"}, "minutes"),
        ({"minutes": 5}, "reason"),
        ({"minutes": 5, "reason": ""}, "reason"),
        ({"minutes": 5, "reason": "   "}, "reason"),
        ({"minutes": 5, "reason": "x" * 501}, "reason"),
        ({"minutes": 5, "reason": "x", "until": "2026-12-01T00:00:00Z"}, "until"),
    ]
    for body, field in cases:
        assert_invalid(await api.put(f"/api/snoozes/{LATENCY}", json=body), field, body)
    assert (await api.get("/api/snoozes")).json() == []
    assert await logged(api, EventKind.SNOOZE_STARTED) == []


async def test_viewers_see_snoozes_and_may_not_snooze(api: Api) -> None:
    response = await api.put(
        f"/api/snoozes/{LATENCY}", role="viewer", json={"minutes": 5, "reason": "x"}
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    assert (await api.get("/api/snoozes", role="viewer")).json() == []


# -- maintenance windows ------------------------------------------------------------------------


async def test_a_one_off_window_is_stored_shown_and_removed(api: Api) -> None:
    body = {
        "name": "db-upgrade",
        "kind": "once",
        "metrics": [MEMORY, LATENCY],
        "start": "2026-11-27T12:00:00+01:00",  # 11:00 UTC, an hour after the clock's now
        "end": "2026-11-27T13:00:00+01:00",
        "reason": "upgrading PostgreSQL",
    }
    response = await api.post("/api/maintenance", json=body)
    assert response.status_code == 201, response.text
    window = {
        "name": "db-upgrade",
        "kind": "once",
        "metrics": [LATENCY, MEMORY],
        "start": stamp(3600),
        "end": stamp(7200),
        "weekdays": None,
        "start_time": None,
        "end_time": None,
        "timezone": None,
        "reason": "upgrading PostgreSQL",
        "by": "admin-bot",
        "active": False,
        "next_change": stamp(3600),
    }
    assert response.json() == window
    assert (await api.get("/api/maintenance/db-upgrade", role="viewer")).json() == window
    assert (await api.get("/api/maintenance", role="viewer")).json() == [window]
    [added] = await logged(api, EventKind.MAINTENANCE_ADDED)
    assert (added.by, added.data["window"]["name"]) == ("admin-bot", "db-upgrade")

    api.clock.advance(3600)  # now it has begun
    now_active = {**window, "active": True, "next_change": stamp(7200)}
    assert (await api.get("/api/maintenance/db-upgrade")).json() == now_active
    api.clock.advance(3600)  # and now it is over, for good
    over = {**window, "active": False, "next_change": None}
    assert (await api.get("/api/maintenance")).json() == [over]

    response = await delete(api, "/api/maintenance/db-upgrade")
    assert (response.status_code, response.content) == (204, b"")
    gone = await api.get("/api/maintenance/db-upgrade")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert (await api.get("/api/maintenance")).json() == []
    assert (await delete(api, "/api/maintenance/db-upgrade")).status_code == 404
    [removed] = await logged(api, EventKind.MAINTENANCE_REMOVED)
    assert removed.by == "admin-bot"


async def test_a_weekly_window_across_midnight_follows_berlin_time(api: Api) -> None:
    body = {
        "name": "backups",
        "kind": "weekly",
        "weekdays": ["sat", "fri"],
        "start_time": "23:00",
        "end_time": "02:00",
        "timezone": "Europe/Berlin",
        "reason": "nightly backups",
    }
    response = await api.post("/api/maintenance", json=body)
    assert response.status_code == 201, response.text
    window = response.json()
    assert {k: window[k] for k in ("weekdays", "start_time", "end_time", "timezone")} == {
        "weekdays": ["fri", "sat"],
        "start_time": "23:00",
        "end_time": "02:00",
        "timezone": "Europe/Berlin",
    }
    assert (window["metrics"], window["start"], window["end"]) == (None, None, None)
    # The clock's now is Friday 27 November 2026, 11:00 in Berlin (CET, UTC+1).
    assert (window["active"], window["next_change"]) == (False, "2026-11-27T22:00:00Z")
    stored = await api.vigil.store.get_window("backups")
    assert stored.weekdays == frozenset({Weekday.FRI, Weekday.SAT})
    assert (stored.timezone, stored.by) == ("Europe/Berlin", "admin-bot")

    moments = [
        # Friday 23:30 CET: on, until 02:00 CET on Saturday
        (datetime(2026, 11, 27, 22, 30, tzinfo=UTC), True, "2026-11-28T01:00:00Z"),
        # Sunday midday: off until Friday 23:00
        (datetime(2026, 11, 29, 11, 0, tzinfo=UTC), False, "2026-12-04T22:00:00Z"),
        # Saturday 27 March 2027, 23:30 CET: the clocks go forward at 02:00, so the window
        # ends at the jump, 01:00 UTC, the first moment the local clock shows 02:00 or later
        (datetime(2027, 3, 27, 22, 30, tzinfo=UTC), True, "2027-03-28T01:00:00Z"),
        # Friday 2 April 2027, summer time (UTC+2): 23:00 local is 21:00 UTC
        (datetime(2027, 4, 2, 12, 0, tzinfo=UTC), False, "2027-04-02T21:00:00Z"),
    ]
    for now, active, next_change in moments:
        api.clock.now = now
        shown = (await api.get("/api/maintenance/backups")).json()
        assert (shown["active"], shown["next_change"]) == (active, next_change), now


async def test_an_invalid_window_names_the_field_and_stores_nothing(api: Api) -> None:
    once = {
        "name": "later",
        "kind": "once",
        "start": "2026-12-01T10:00:00Z",
        "end": "2026-12-01T12:00:00Z",
    }
    weekly = {
        "name": "later",
        "kind": "weekly",
        "weekdays": ["sun"],
        "start_time": "01:00",
        "end_time": "03:00",
        "timezone": "Europe/Berlin",
    }
    taken = await api.post("/api/maintenance", json={**once, "name": "taken"})
    assert taken.status_code == 201, taken.text
    cases: list[tuple[dict[str, Any], str]] = [
        ({**once, "end": "2026-12-01T09:00:00Z"}, "end"),  # before the start
        ({**once, "end": once["start"]}, "end"),  # empty
        ({**once, "weekdays": ["mon"]}, "weekdays"),  # weekly fields on a one-off window
        ({**once, "timezone": "Europe/Berlin"}, "timezone"),
        ({**once, "start_time": "01:00"}, "start_time"),
        ({**weekly, "start": once["start"]}, "start"),  # and a one-off's on a weekly one
        ({k: v for k, v in once.items() if k != "end"}, "end"),
        ({**weekly, "timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({**weekly, "timezone": None}, "timezone"),
        ({**weekly, "weekdays": []}, "weekdays"),
        ({**weekly, "weekdays": ["someday"]}, "weekdays[0]"),
        ({**weekly, "start_time": "25:00"}, "start_time"),
        ({**weekly, "end_time": "1am"}, "end_time"),
        ({**once, "metrics": [LATENCY, "no_such_metric"]}, "metrics"),  # no rule for it
        ({**once, "metrics": ["Not-A-Metric"]}, "metrics[0]"),
        ({**once, "metrics": []}, "metrics"),
        ({**once, "name": "taken"}, "name"),
        ({**once, "name": "Later"}, "name"),
        ({**once, "start": "2026-12-01T10:00"}, "start"),  # no time zone offset
        ({**once, "start": 1_800_000_000}, "start"),  # Unix time: ISO-8601 only
        ({**once, "kind": "daily"}, "kind"),
        ({**once, "reason": "x" * 501}, "reason"),
        ({**once, "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        assert_invalid(await api.post("/api/maintenance", json=body), field, body)
    assert [w["name"] for w in (await api.get("/api/maintenance")).json()] == ["taken"]
    assert [w.name for w in await api.vigil.store.list_windows()] == ["taken"]
    assert len(await logged(api, EventKind.MAINTENANCE_ADDED)) == 1


async def test_an_active_window_silences_its_rules_and_only_them(api: Api) -> None:
    response = await api.post(
        "/api/maintenance",
        json={
            "name": "now",
            "kind": "once",
            "metrics": [LATENCY],
            "start": stamp(-60),
            "end": stamp(3600),
            "reason": "restarting the gateway",
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["active"] is True
    assert await api.breach(LATENCY, 250, times=3) == []
    assert (await api.get("/api/alerts/active")).json() == []
    assert [e.kind for e in await api.breach(MEMORY, 500)] == [EventKind.INCIDENT_OPENED]

    assert (await delete(api, "/api/maintenance/now")).status_code == 204
    [opened] = await api.breach(LATENCY, 250, times=1)  # resumes at once
    assert opened.kind is EventKind.INCIDENT_OPENED
    assert opened.incident is not None and opened.incident.metric == LATENCY


async def test_a_window_for_every_rule_silences_them_all(api: Api) -> None:
    response = await api.post(
        "/api/maintenance",
        json={"name": "all", "kind": "once", "start": stamp(0), "end": stamp(3600)},
    )
    assert response.status_code == 201, response.text
    assert (response.json()["metrics"], response.json()["reason"]) == (None, "")
    assert await api.cycle({LATENCY: 250, MEMORY: 500}) == []
    assert await api.cycle({LATENCY: 250, MEMORY: 500}) == []
    assert (await api.get("/api/alerts/active")).json() == []


async def test_viewers_see_windows_and_may_not_add_them(api: Api) -> None:
    body = {"name": "w", "kind": "once", "start": stamp(0), "end": stamp(60)}
    response = await api.post("/api/maintenance", role="viewer", json=body)
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    assert (await api.get("/api/maintenance", role="viewer")).json() == []
