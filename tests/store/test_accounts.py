"""Users, API tokens and the notification outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest

from vigil.core.errors import NotFoundError, ValidationError
from vigil.store import OutboxStatus, Role, Store

from .conftest import T0, open_incident


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

    used = await store.token_by_hash("sha256:abc", now=T0 + timedelta(minutes=1))
    assert used.last_used_at == T0 + timedelta(minutes=1)
    assert await store.list_tokens() == [used]

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


async def test_the_outbox_delivers_each_event_to_each_channel_once(store: Store) -> None:
    await open_incident(store)
    event_id = await store.last_event_id()
    items = await store.enqueue_notifications(event_id, ["ops-email", "discord"], now=T0)
    again = await store.enqueue_notifications(event_id, ["ops-email"], now=T0)
    assert [item.channel for item in items] == ["ops-email", "discord"]
    assert again == items[:1]  # a crash and a retry enqueue nothing new
    assert all(item.status is OutboxStatus.PENDING for item in items)

    failed = await store.mark_notification_failed(
        items[0].id, error="timeout", retry_at=T0 + timedelta(minutes=5)
    )
    assert (failed.attempts, failed.last_error, failed.status) == (
        1,
        "timeout",
        OutboxStatus.PENDING,
    )
    assert await store.due_notifications(now=T0) == [items[1]]
    sent = await store.mark_notification_sent(items[1].id, now=T0)
    assert (sent.status, sent.sent_at, sent.attempts) == (OutboxStatus.SENT, T0, 1)
    assert [item.id for item in await store.due_notifications(now=T0 + timedelta(minutes=5))] == [
        items[0].id
    ]
    given_up = await store.mark_notification_failed(items[0].id, error="gone", retry_at=None)
    assert given_up.status is OutboxStatus.FAILED
    assert await store.due_notifications(now=T0 + timedelta(days=1)) == []
    with pytest.raises(NotFoundError):
        await store.mark_notification_sent(999, now=T0)
