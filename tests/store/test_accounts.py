"""Users and API tokens. (The outbox has its own tests: ``test_outbox``.)"""

from __future__ import annotations

from datetime import timedelta

import pytest

from vigil.core.errors import NotFoundError, ValidationError
from vigil.store import Role, Store

from .conftest import T0


async def test_users_are_created_read_changed_and_deleted(store: Store) -> None:
    alice = await store.add_user("alice", role="admin", password_hash="$argon2$a", now=T0)
    assert (alice.name, alice.role, alice.created_at) == ("alice", Role.ADMIN, T0)
    await store.add_user("bob", role=Role.VIEWER, password_hash="$argon2$b", now=T0)
    assert [user.name for user in await store.list_users()] == ["alice", "bob"]

    demoted = await store.update_user("alice", role="viewer", password_hash="$argon2$c")
    assert (demoted.role, demoted.password_hash) == (Role.VIEWER, "$argon2$c")
    assert await store.get_user("alice") == demoted

    await store.delete_user("bob")
    with pytest.raises(NotFoundError):
        await store.get_user("bob")
    with pytest.raises(NotFoundError):
        await store.delete_user("bob")


@pytest.mark.parametrize(
    ("name", "role", "field"),
    [
        ("alice", "admin", "name"),
        ("carol", "ingest", "role"),
        ("carol", "root", "role"),
        ("", "admin", "name"),
    ],
)
async def test_bad_users_are_refused(store: Store, name: str, role: str, field: str) -> None:
    await store.add_user("alice", role="admin", password_hash="h", now=T0)
    with pytest.raises(ValidationError) as caught:
        await store.add_user(name, role=role, password_hash="h", now=T0)
    assert caught.value.field == field
    assert [user.name for user in await store.list_users()] == ["alice"]


async def test_tokens_are_found_by_hash_until_revoked(store: Store) -> None:
    token = await store.add_token("ci", role="ingest", token_hash="sha256:abc", now=T0)
    assert token.role is Role.INGEST and token.last_used_at is None

    assert await store.token_by_hash("sha256:abc") == token  # a lookup that records no use
    used = await store.token_by_hash("sha256:abc", now=T0 + timedelta(minutes=1))
    assert used.last_used_at == T0 + timedelta(minutes=1)
    assert await store.list_tokens() == [used]
    # On a SQLite file the lookup reads on the store's own connection: the same record.
    assert await store.token_by_hash("sha256:abc") == used
    bound = await store.add_token(
        "shard", role="ingest", token_hash="sha256:def", now=T0, instance="shard-0"
    )
    assert await store.token_by_hash("sha256:def") == bound

    revoked = await store.revoke_token(token.id, now=T0 + timedelta(minutes=2))
    assert revoked.is_revoked
    again = await store.revoke_token(token.id, now=T0 + timedelta(minutes=3))
    assert again.revoked_at == revoked.revoked_at
    with pytest.raises(NotFoundError):
        await store.token_by_hash("sha256:abc")
    with pytest.raises(NotFoundError):
        await store.revoke_token(999, now=T0)
    with pytest.raises(ValidationError):
        await store.add_token("dup", role="admin", token_hash="sha256:abc", now=T0)
