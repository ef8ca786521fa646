"""Migration 0009 (escalation policies) upgrades a database with data in it from the previous
head, keeps every row, and goes down and up again keeping them."""

from __future__ import annotations

from sqlalchemy import text

from vigil.store import Store, migrate

from .conftest import HOOK, T0, raw, table_names

PREVIOUS_HEAD = "0006"


async def test_upgrading_keeps_channels_and_adds_policies_and_delivery_modes(
    database_url: str,
) -> None:
    await migrate.upgrade(database_url, PREVIOUS_HEAD)
    async with raw(database_url) as connection:
        await connection.execute(
            text(
                "INSERT INTO notification_channels "
                "(name, url, min_severity, events, enabled, renotify_minutes, "
                "created_at, updated_at) "
                "VALUES ('ops', :url, 'info', '[\"opened\"]', true, 5, :at, :at)"
            ),
            {"url": HOOK, "at": T0},
        )
    assert "escalation_policies" not in await table_names(database_url)

    await migrate.upgrade(database_url)
    store = await Store.open(database_url)
    try:
        [channel] = await store.list_channels()
        assert (channel.name, channel.channel.renotify_minutes) == ("ops", 5)
        assert (channel.channel.delivery, channel.channel.digest_at) == ("realtime", "09:00")
        assert channel.channel.timezone == "UTC"
        await store.update_channel("ops", {"delivery": "daily"}, now=T0)
        assert await store.list_policies() == []
        policy = {"name": "night", "steps": [{"channels": ["ops"], "wait_minutes": 5}]}
        await store.add_policy(policy, now=T0)

        await migrate.downgrade(database_url, PREVIOUS_HEAD)
        assert "escalation_policies" not in await table_names(database_url)
        async with raw(database_url) as connection:
            names = await connection.execute(text("SELECT name FROM notification_channels"))
            assert list(names.scalars()) == ["ops"]
        await migrate.upgrade(database_url)
        [channel] = await store.list_channels()
        assert channel.channel.delivery == "realtime"  # the mode went with the downgrade
        assert await store.list_policies() == []
        await store.add_policy(policy, now=T0)
        assert [p.name for p in await store.list_policies()] == ["night"]
    finally:
        await store.close()
