"""Notification channels (their outbox rows live in ``_outbox``).

Channels are validated by ``vigil.notify.Channel`` before anything is written: bad input
raises ``ValidationError`` naming the field and stores nothing. Each change is a
``channel.*`` event in the same transaction, naming who made it and showing the channel with
its URL masked (the log is read by every viewer's live stream).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, select, update
from sqlalchemy import exc as sa_exc

from vigil.core.errors import NotFoundError, ValidationError
from vigil.core.events import Event, EventKind
from vigil.notify.channels import Channel
from vigil.store import models
from vigil.store._base import StoreBase, check_name, check_time
from vigil.store._outbox import channel_from_row, delivery_channels_of, fail_pending
from vigil.store.records import StoredChannel


class Channels(StoreBase):
    # -- channels -------------------------------------------------------------------------------

    async def add_channel(
        self, channel: Channel | Mapping[str, Any], *, now: datetime, by: str | None = None
    ) -> tuple[StoredChannel, Event]:
        """A new channel and its ``channel.added`` event; ``ValidationError`` on ``name`` if it
        is taken."""
        checked = channel if isinstance(channel, Channel) else Channel.from_dict(channel)
        check_time("now", now)
        check_by(by)
        table = models.channels
        async with self._write("adding a channel") as connection:
            taken = await connection.scalar(select(table.c.id).where(table.c.name == checked.name))
            if taken is not None:
                raise _name_taken(checked.name)
            try:
                row = (
                    await connection.execute(
                        table.insert()
                        .values(**_channel_values(checked), created_at=now, updated_at=now)
                        .returning(*table.c)
                    )
                ).one()
            except sa_exc.IntegrityError:  # added by someone else since the check
                raise _name_taken(checked.name) from None
            stored = _stored_channel(row)
            [event] = await self._append_events(
                connection, [channel_event(EventKind.CHANNEL_ADDED, stored, by=by, now=now)]
            )
        return stored, event

    async def update_channel(
        self, name: str, changes: Mapping[str, Any], *, now: datetime, by: str | None = None
    ) -> tuple[StoredChannel, Event]:
        """Change some fields of a channel (the rest keep their values); the changed channel
        and its ``channel.changed`` event, which names the fields that changed.

        ``url`` left out, or sent back in its masked form (as an edit form shows it), keeps the
        stored URL. The name cannot change: outbox rows refer to it.
        """
        check_time("now", now)
        check_by(by)
        if "name" in changes and changes["name"] != name:
            raise ValidationError("name", "cannot be changed; remove the channel and add it anew")
        table = models.channels
        async with self._write("updating a channel") as connection:
            row = (
                await connection.execute(
                    select(table).where(table.c.name == name).with_for_update()
                )
            ).first()
            if row is None:
                raise NotFoundError("channel", name)
            current = channel_from_row(row)
            data = {**current.to_dict(reveal_url=True), **changes}
            if changes.get("url") == current.redacted_url:
                data["url"] = current.url
            updated = Channel.from_dict(data)
            row = (
                await connection.execute(
                    update(table)
                    .where(table.c.id == row.id)
                    .values(**_channel_values(updated), updated_at=now)
                    .returning(*table.c)
                )
            ).one()
            stored = _stored_channel(row)
            before, after = current.to_dict(reveal_url=True), updated.to_dict(reveal_url=True)
            changed = sorted(key for key, value in after.items() if value != before[key])
            event = channel_event(
                EventKind.CHANNEL_CHANGED, stored, by=by, now=now, changed=changed
            )
            [event] = await self._append_events(connection, [event])
        return stored, event

    async def get_channel(self, name: str) -> StoredChannel:
        table = models.channels
        async with self._read("reading a channel") as connection:
            row = (await connection.execute(select(table).where(table.c.name == name))).first()
        if row is None:
            raise NotFoundError("channel", name)
        return _stored_channel(row)

    async def list_channels(self) -> list[StoredChannel]:
        table = models.channels
        async with self._read("reading channels") as connection:
            rows = (await connection.execute(select(table).order_by(table.c.name))).all()
        return [_stored_channel(row) for row in rows]

    async def delivery_channels(self) -> dict[str, Channel | ValidationError]:
        """Every channel by name, for the dispatcher: a stored URL that no longer passes
        validation (apprise changed under it) is its error instead of failing the read, so
        only that channel's deliveries fail."""
        table = models.channels
        async with self._read("reading channels") as connection:
            rows = (await connection.execute(select(table))).all()
        return delivery_channels_of(rows)

    async def delete_channel(self, name: str, *, now: datetime, by: str | None = None) -> Event:
        """Remove a channel; its ``channel.removed`` event. Its undelivered notifications are
        marked failed, saying why."""
        check_time("now", now)
        check_by(by)
        table = models.channels
        async with self._write("removing a channel") as connection:
            result = await connection.execute(delete(table).where(table.c.name == name))
            if result.rowcount == 0:
                raise NotFoundError("channel", name)
            await fail_pending(connection, name, "the channel was removed")
            # Only its name: a stored URL that apprise no longer accepts must not stop removal.
            removed = Event(
                kind=EventKind.CHANNEL_REMOVED, at=now, by=by, data={"channel": {"name": name}}
            )
            [event] = await self._append_events(connection, [removed])
        return event


def check_by(by: str | None) -> None:
    if by is not None:
        check_name("by", by, max_length=200)


def channel_event(
    kind: EventKind,
    stored: StoredChannel,
    *,
    by: str | None,
    now: datetime,
    changed: list[str] | None = None,
) -> Event:
    data: dict[str, Any] = {"channel": stored.to_dict()}  # the URL masked
    if changed is not None:
        data["changed"] = changed
    return Event(kind=kind, at=now, by=by, data=data)


def _name_taken(name: str) -> ValidationError:
    return ValidationError("name", f"a channel named {name!r} already exists")


def _channel_values(channel: Channel) -> dict[str, Any]:
    data = channel.to_dict(reveal_url=True)
    return {
        "name": channel.name,
        "url": channel.url,
        "min_severity": channel.min_severity,
        "events": data["events"],
        "enabled": channel.enabled,
        "renotify_minutes": channel.renotify_minutes,
        "delivery": channel.delivery.value,
        "digest_at": channel.digest_at,
        "timezone": channel.timezone,
    }


def _stored_channel(row: Row[Any]) -> StoredChannel:
    return StoredChannel(
        channel_from_row(row), created_at=row.created_at, updated_at=row.updated_at
    )
