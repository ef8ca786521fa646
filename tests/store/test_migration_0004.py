"""Migration 0004 (tokens bound to an instance, signed-out sessions) upgrades a database with
data in it from the previous head, and goes down and up again keeping that data."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from vigil.store import Store, migrate

from .conftest import T0, raw, table_names

PREVIOUS_HEAD = "0002"


async def test_upgrading_keeps_users_and_tokens_and_adds_sign_outs(database_url: str) -> None:
    await migrate.upgrade(database_url, PREVIOUS_HEAD)
    async with raw(database_url) as connection:
        await connection.execute(
            text(
                "INSERT INTO users (name, role, password_hash, created_at) "
                "VALUES ('ana', 'admin', 'hash', :at)"
            ),
            {"at": T0},
        )
        await connection.execute(
            text(
                "INSERT INTO api_tokens (name, role, token_hash, created_at) "
                "VALUES ('pusher', 'ingest', 'abc123', :at)"
            ),
            {"at": T0},
        )
    assert "signed_out_sessions" not in await table_names(database_url)

    await migrate.upgrade(database_url)
    store = await Store.open(database_url)
    try:
        [token] = await store.list_tokens()
        assert (token.name, token.role, token.instance) == ("pusher", "ingest", None)
        assert (await store.get_user("ana")).role == "admin"
        await store.end_session("s1", user_name="ana", expires_at=T0 + timedelta(hours=12))
        assert await store.session_ended("s1")
        bound = await store.add_token(
            "shard0", role="ingest", token_hash="def456", now=T0, instance="shard-0"
        )
        assert bound.instance == "shard-0"

        await migrate.downgrade(database_url, PREVIOUS_HEAD)
        assert "signed_out_sessions" not in await table_names(database_url)
        async with raw(database_url) as connection:
            names = (await connection.execute(text("SELECT name FROM api_tokens"))).scalars()
            assert sorted(names) == ["pusher", "shard0"]
        await migrate.upgrade(database_url)
        assert [t.instance for t in await store.list_tokens()] == [None, None]
        assert not await store.session_ended("s1")
    finally:
        await store.close()
