"""Migration 0012 (Discord messages per incident group) on a database written by the previous
head: incidents, their group and their Discord messages keep every value; a group's message can
be stored after the upgrade; going down drops only the groups' messages, and up again works."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from vigil.store import Store, migrate
from vigil.store._discord import group_nonce
from vigil.store.types import UTCDateTime

from .conftest import T0, raw, table_names

NEW = "0012"
INCIDENT = uuid.UUID(int=51)
GROUP = uuid.UUID(int=52)
TIME = UTCDateTime()


def _table(table: str, /, **columns: Any) -> sa.TableClause:
    return sa.table(table, *(sa.column(key, type_) for key, type_ in columns.items()))


GROUPS = _table(
    "incident_groups",
    id=sa.Uuid(),
    opened_at=TIME,
    last_opened_at=TIME,
    label=sa.String(),
    window_s=sa.Float(),
)
INCIDENTS = _table(
    "incidents",
    id=sa.Uuid(),
    metric=sa.String(),
    severity=sa.String(),
    status=sa.String(),
    triggered_at=TIME,
    threshold=sa.Float(),
    value=sa.Float(),
    peak_value=sa.Float(),
    last_value=sa.Float(),
    message=sa.Text(),
    rule=sa.String(),
    group_id=sa.Uuid(),
)
MESSAGES = _table(
    "discord_messages",
    incident_id=sa.Uuid(),
    channel_id=sa.BigInteger(),
    message_id=sa.BigInteger(),
    nonce=sa.String(),
    rendered_event_id=sa.BigInteger(),
    attempted_at=TIME,
    posted_at=TIME,
    updated_at=TIME,
)
CURSORS = _table("discord_cursors", name=sa.String(), event_id=sa.BigInteger(), updated_at=TIME)


def _previous() -> str:
    """The revision before 0012, whichever that is once the migrations are chained."""
    before = ScriptDirectory.from_config(migrate.config()).get_revision(NEW).down_revision
    assert isinstance(before, str)
    return before


async def test_upgrading_keeps_the_messages_and_stores_group_messages(database_url: str) -> None:
    previous = _previous()
    await migrate.upgrade(database_url, previous)
    async with raw(database_url) as connection:
        await connection.execute(
            GROUPS.insert().values(
                id=GROUP, opened_at=T0, last_opened_at=T0, label=None, window_s=60.0
            )
        )
        await connection.execute(
            INCIDENTS.insert().values(
                id=INCIDENT,
                metric="memory_usage",
                severity="critical",
                status="active",
                triggered_at=T0,
                threshold=480.0,
                value=500.0,
                peak_value=500.0,
                last_value=500.0,
                message="Memory Usage exceeded critical threshold",
                rule="memory_usage",
                group_id=GROUP,
            )
        )
        await connection.execute(
            MESSAGES.insert().values(
                incident_id=INCIDENT,
                channel_id=6000,
                message_id=2**62 + 7,  # Discord ids need 64 bits
                nonce="12345",
                rendered_event_id=9,
                attempted_at=T0,
                posted_at=T0,
                updated_at=T0,
            )
        )
        await connection.execute(CURSORS.insert().values(name="discord", event_id=9, updated_at=T0))

    await migrate.upgrade(database_url, NEW)
    store = await Store.open(database_url, upgrade=True)  # and on to the head, if any
    try:

        async def kept() -> None:
            row = await store.discord_message(INCIDENT)
            assert row is not None
            assert (row.channel_id, row.message_id, row.nonce, row.rendered_event_id) == (
                6000,
                2**62 + 7,
                "12345",
                9,
            )
            assert (row.attempted_at, row.posted_at) == (T0, T0)
            assert await store.discord_cursor("discord") == 9

        await kept()
        # Posted one by one before: the group goes on that way.
        assert await store.discord_groups_posted_one_by_one([GROUP]) == {GROUP}
        claimed = await store.claim_discord_post(
            GROUP, channel_id=6000, nonce=group_nonce(GROUP), now=T0, group=True
        )
        assert claimed.group_id == GROUP and claimed.message_id is None
        await store.record_discord_post(GROUP, message_id=2**62 + 8, event_id=9, now=T0, group=True)
        stored = await store.discord_message(GROUP, group=True)
        assert stored is not None and stored.message_id == 2**62 + 8

        await migrate.downgrade(database_url, previous)
        assert "discord_group_messages" not in await table_names(database_url)
        async with raw(database_url) as connection:
            count = await connection.scalar(sa.select(sa.func.count()).select_from(MESSAGES))
            assert count == 1
        await migrate.upgrade(database_url)
        assert await migrate.current(database_url) == migrate.head_revision()
        await kept()
        assert await store.discord_message(GROUP, group=True) is None  # dropped on the way down
    finally:
        await store.close()
