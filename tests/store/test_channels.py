"""Channels in the database: validated, stored in full, shown masked; every change an event."""

from __future__ import annotations

from datetime import timedelta

import pytest

from vigil.core.errors import NotFoundError, ValidationError
from vigil.core.events import EventKind
from vigil.core.incidents import Severity
from vigil.store import Store, migrate, models

from .conftest import HOOK, T0, add_channel, open_incident, raw, table_names

# -- channels ----------------------------------------------------------------------------------


async def test_a_channel_is_stored_in_full_and_shown_masked(store: Store) -> None:
    added, _ = await store.add_channel(
        {"name": "ops", "url": HOOK, "min_severity": "warning", "renotify_minutes": 30},
        now=T0,
    )
    assert added.channel.url == HOOK  # delivery needs the secret
    shown = added.to_dict()
    assert shown["url"] == "json://127.0.0.1:8080/***?***"
    assert "s3cret" not in str(shown) and "s3cret" not in repr(added)
    assert (shown["service"], shown["min_severity"], shown["renotify_minutes"]) == (
        "JSON",
        "warning",
        30,
    )
    assert await store.get_channel("ops") == added
    assert [c.name for c in await store.list_channels()] == ["ops"]


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        ({"url": "nope://somewhere"}, "url", "unsupported scheme nope://"),
        ({"url": "https://example.com/hook"}, "url", "json://"),
        ({"url": "discord://only-an-id"}, "url", "Discord"),
        ({"url": "json://127.0.0.1/hook", "events": []}, "events", "at least one"),
        ({"url": "json://127.0.0.1/hook", "min_severity": "loud"}, "min_severity", "loud"),
        ({"url": "json://127.0.0.1/hook", "name": "Ops Team"}, "name", "a-z"),
        ({"url": "json://127.0.0.1/hook", "colour": "red"}, "colour", "not a channel field"),
    ],
)
async def test_bad_channel_input_is_refused_and_nothing_is_stored(
    store: Store, data: dict[str, object], field: str, says: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        await store.add_channel({"name": "ops", **data}, now=T0)
    assert caught.value.field == field
    assert says in caught.value.message
    assert await store.list_channels() == []


async def test_every_change_is_an_event_naming_who_with_the_url_masked(store: Store) -> None:
    later = T0 + timedelta(minutes=5)
    _, added = await store.add_channel({"name": "ops", "url": HOOK}, now=T0, by="ana")
    _, changed = await store.update_channel(
        "ops", {"min_severity": "critical", "enabled": False}, now=later, by="bob"
    )
    _, unchanged = await store.update_channel("ops", {"enabled": False}, now=later, by="bob")
    removed = await store.delete_channel("ops", now=later, by="cli")

    logged = await store.events_after(0)
    assert [(e.kind, e.by, e.at) for e in logged] == [
        (EventKind.CHANNEL_ADDED, "ana", T0),
        (EventKind.CHANNEL_CHANGED, "bob", later),
        (EventKind.CHANNEL_CHANGED, "bob", later),
        (EventKind.CHANNEL_REMOVED, "cli", later),
    ]
    assert [e.id for e in logged] == [added.id, changed.id, unchanged.id, removed.id]
    assert "s3cret" not in str([e.to_dict() for e in logged])  # every viewer reads the log
    assert added.data["channel"]["url"] == "json://127.0.0.1:8080/***?***"
    assert changed.data["changed"] == ["enabled", "min_severity"]
    assert changed.data["channel"]["min_severity"] == "critical"
    assert unchanged.data["changed"] == []
    assert removed.data == {"channel": {"name": "ops"}}


async def test_a_channel_whose_url_apprise_no_longer_accepts_can_still_be_removed(
    store: Store, database_url: str
) -> None:
    await add_channel(store)
    async with raw(database_url) as connection:  # as if apprise dropped the service
        await connection.execute(models.channels.update().values(url="nosuchservice://gone/token"))
    event = await store.delete_channel("ops", now=T0, by="ana")
    assert event.kind is EventKind.CHANNEL_REMOVED
    assert await store.list_channels() == []


async def test_a_taken_name_is_refused(store: Store) -> None:
    await add_channel(store)
    with pytest.raises(ValidationError, match="already exists") as caught:
        await store.add_channel({"name": "ops", "url": "json://127.0.0.1/other"}, now=T0)
    assert caught.value.field == "name"
    assert [c.channel.url for c in await store.list_channels()] == [HOOK]


async def test_an_update_changes_only_what_it_names(store: Store) -> None:
    before, _ = await store.add_channel({"name": "ops", "url": HOOK}, now=T0)
    later = T0 + timedelta(hours=1)
    # what an edit form sends back: every field as shown, the URL masked
    form = {**before.to_dict(), "min_severity": "critical", "enabled": False}
    for key in ("service", "created_at", "updated_at"):
        del form[key]
    updated, _ = await store.update_channel("ops", form, now=later)
    assert updated.channel.url == HOOK  # the masked URL did not replace the real one
    assert (updated.channel.min_severity, updated.channel.enabled) == (Severity.CRITICAL, False)
    assert (updated.created_at, updated.updated_at) == (T0, later)

    moved, _ = await store.update_channel("ops", {"url": "json://127.0.0.1:9000/new"}, now=later)
    assert moved.channel.url == "json://127.0.0.1:9000/new"
    assert moved.channel.min_severity is Severity.CRITICAL

    with pytest.raises(ValidationError) as caught:
        await store.update_channel("ops", {"url": "nope://x"}, now=later)
    assert caught.value.field == "url"
    with pytest.raises(ValidationError, match="cannot be changed"):
        await store.update_channel("ops", {"name": "other"}, now=later)
    with pytest.raises(NotFoundError):
        await store.update_channel("missing", {"enabled": True}, now=later)
    assert await store.get_channel("ops") == moved


async def test_migration_0002_goes_down_and_up_keeping_the_outbox(
    store: Store, database_url: str
) -> None:
    await add_channel(store)
    incident = await open_incident(store)
    await migrate.downgrade(database_url, "0001")
    tables = await table_names(database_url)
    assert "notification_channels" not in tables and "snoozes" not in tables
    assert "notification_outbox" in tables
    await migrate.upgrade(database_url)
    # the row written before the round trip learned its incident again from its event
    [row] = await store.list_notifications()
    assert (row.incident_id, row.repeat, row.channel) == (incident.id, 0, "ops")
    assert await store.list_channels() == []
