"""The incident -> Discord message mapping, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from alembic.script import ScriptDirectory

from vigil.store import Store, migrate
from vigil.store._discord import incident_nonce

from .conftest import T0, open_incident, table_names

CHANNEL = 4242


async def test_a_claimed_post_keeps_its_row_and_the_first_message_id(store: Store) -> None:
    incident = await open_incident(store)
    nonce = incident_nonce(incident.id)
    claimed = await store.claim_discord_post(incident.id, channel_id=CHANNEL, nonce=nonce, now=T0)
    assert (claimed.message_id, claimed.nonce, claimed.channel_id) == (None, nonce, CHANNEL)

    # Claimed again (a restart before the post was recorded): the same row, a new attempt time.
    later = T0 + timedelta(minutes=1)
    again = await store.claim_discord_post(
        incident.id, channel_id=CHANNEL + 1, nonce="other", now=later
    )
    assert (again.channel_id, again.nonce, again.attempted_at) == (CHANNEL, nonce, later)

    posted = await store.record_discord_post(incident.id, message_id=77, event_id=1, now=later)
    assert (posted.message_id, posted.rendered_event_id) == (77, 1)
    # A second post recorded (it cannot happen, but if it did) never replaces the first.
    kept = await store.record_discord_post(incident.id, message_id=78, event_id=1, now=later)
    assert kept.message_id == 77
    # Claiming a posted incident changes nothing: the caller edits message 77.
    assert (await store.claim_discord_post(incident.id, channel_id=1, nonce="x", now=later)) == kept


async def test_messages_behind_the_log_are_the_ones_to_catch_up(store: Store) -> None:
    first = await open_incident(store, metric="gateway_latency")
    second = await open_incident(store, metric="memory_usage")
    for incident in (first, second):
        await store.claim_discord_post(
            incident.id, channel_id=CHANNEL, nonce=incident_nonce(incident.id), now=T0
        )
    assert set(await store.discord_messages_behind()) == {first.id, second.id}

    newest = await store.last_event_id()
    await store.record_discord_post(first.id, message_id=1, event_id=newest, now=T0)
    await store.record_discord_post(second.id, message_id=2, event_id=newest, now=T0)
    assert await store.discord_messages_behind() == []

    await store.acknowledge_incident(first.id, by="alice [discord:3000]", now=T0)
    assert await store.discord_messages_behind() == [first.id]
    await store.record_discord_edit(first.id, event_id=await store.last_event_id(), now=T0)
    assert await store.discord_messages_behind() == []
    # An older render recorded late never moves the mark back.
    await store.record_discord_edit(first.id, event_id=1, now=T0)
    assert await store.discord_messages_behind() == []

    await store.forget_discord_post(second.id, nonce=incident_nonce(second.id, 1), now=T0)
    message = await store.discord_message(second.id)
    assert message is not None and (message.message_id, message.nonce) == (
        None,
        incident_nonce(second.id, 1),
    )
    assert await store.discord_messages_behind() == [second.id]


async def test_the_cursor_only_moves_forward(store: Store) -> None:
    assert await store.discord_cursor("ops") is None
    assert await store.set_discord_cursor("ops", 5, now=T0) == 5
    assert await store.set_discord_cursor("ops", 3, now=T0) == 5
    assert await store.set_discord_cursor("ops", 9, now=T0) == 9
    assert await store.discord_cursor("ops") == 9
    assert await store.discord_cursor("other") is None


def test_nonces_fit_discord_and_differ_per_generation() -> None:
    import uuid

    ident = uuid.UUID(int=2**128 - 1)
    assert len(incident_nonce(ident)) <= 25
    assert len(incident_nonce(ident, 99)) <= 25
    assert incident_nonce(ident) != incident_nonce(ident, 1)


async def test_migration_0006_upgrades_a_database_with_incidents(
    store: Store, database_url: str
) -> None:
    incident = await open_incident(store)
    await store.claim_discord_post(incident.id, channel_id=CHANNEL, nonce="n", now=T0)
    # Down to the revision before 0006, whichever that is once the migrations are chained.
    scripts = ScriptDirectory.from_config(migrate.config())
    before = scripts.get_revision("0006").down_revision
    assert isinstance(before, str)
    await migrate.downgrade(database_url, before)
    tables = await table_names(database_url)
    assert "discord_messages" not in tables and "discord_cursors" not in tables
    assert "incidents" in tables

    await migrate.upgrade(database_url)
    assert await migrate.current(database_url) == migrate.head_revision()
    # The incidents kept through the upgrade can be posted like new ones.
    assert (await store.get_incident(incident.id)).id == incident.id
    assert await store.discord_message(incident.id) is None
    claimed = await store.claim_discord_post(incident.id, channel_id=CHANNEL, nonce="n", now=T0)
    assert claimed.incident_id == incident.id
