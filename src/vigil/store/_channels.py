"""Notification channels, and the outbox as the dispatcher works it: claim what is due, settle
each attempt, count, and write reminders.

Channels are validated by ``vigil.notify.Channel`` before anything is written: bad input
raises ``ValidationError`` naming the field and stores nothing. Each change is a
``channel.*`` event in the same transaction, naming who made it and showing the channel with
its URL masked (the log is read by every viewer's live stream).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, exists, func, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from vigil.core.errors import NotFoundError, ValidationError
from vigil.core.events import Event, EventKind
from vigil.notify.channels import Channel
from vigil.store import models
from vigil.store._base import StoreBase, check_int, check_name, check_time, event_from_row
from vigil.store._outbox import notify_on, outbox_item, outbox_row
from vigil.store.records import (
    Delivery,
    LastNotification,
    OutboxCounts,
    OutboxItem,
    OutboxStatus,
    StoredChannel,
)

MAX_ERROR = 2000
MAX_CLAIM = 1000


class Channels(StoreBase):
    # -- channels -------------------------------------------------------------------------------

    async def add_channel(
        self, channel: Channel | Mapping[str, Any], *, now: datetime, by: str | None = None
    ) -> tuple[StoredChannel, Event]:
        """A new channel and its ``channel.added`` event; ``ValidationError`` on ``name`` if it
        is taken."""
        checked = channel if isinstance(channel, Channel) else Channel.from_dict(channel)
        check_time("now", now)
        _check_by(by)
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
                connection, [_channel_event(EventKind.CHANNEL_ADDED, stored, by=by, now=now)]
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
        _check_by(by)
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
            current = _channel(row)
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
            event = _channel_event(
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
        found: dict[str, Channel | ValidationError] = {}
        for row in rows:
            try:
                found[row.name] = _channel(row)
            except ValidationError as exc:
                found[row.name] = exc
        return found

    async def delete_channel(self, name: str, *, now: datetime, by: str | None = None) -> Event:
        """Remove a channel; its ``channel.removed`` event. Its undelivered notifications are
        marked failed, saying why."""
        check_time("now", now)
        _check_by(by)
        table, outbox = models.channels, models.outbox
        async with self._write("removing a channel") as connection:
            result = await connection.execute(delete(table).where(table.c.name == name))
            if result.rowcount == 0:
                raise NotFoundError("channel", name)
            await connection.execute(
                update(outbox)
                .where(outbox.c.channel == name, outbox.c.status == OutboxStatus.PENDING)
                .values(status=OutboxStatus.FAILED, last_error="the channel was removed")
            )
            # Only its name: a stored URL that apprise no longer accepts must not stop removal.
            removed = Event(
                kind=EventKind.CHANNEL_REMOVED, at=now, by=by, data={"channel": {"name": name}}
            )
            [event] = await self._append_events(connection, [removed])
        return event

    # -- the outbox, as the dispatcher works it ---------------------------------------------------

    async def claim_notifications(
        self, *, now: datetime, lease: timedelta, limit: int = 100
    ) -> list[Delivery]:
        """Take up to ``limit`` due rows for one attempt each: their attempt is counted now and
        they are not due again until ``now + lease``, when a dispatcher that died meanwhile
        (or one still sending) has surely given up. Settle each with ``settle_notification``.

        Per incident and channel only the oldest pending row is handed out, so one incident's
        messages reach a channel in order.
        """
        check_time("now", now)
        check_int("limit", limit, 1, MAX_CLAIM)
        if not isinstance(lease, timedelta) or lease <= timedelta(0):
            raise ValidationError("lease", f"must be a positive duration, got {lease!r}")
        outbox = models.outbox
        earlier = outbox.alias("earlier")
        blocked = exists().where(
            earlier.c.status == OutboxStatus.PENDING,
            earlier.c.channel == outbox.c.channel,
            earlier.c.incident_id == outbox.c.incident_id,
            earlier.c.id < outbox.c.id,
        )
        due = (
            select(outbox.c.id)
            .where(
                outbox.c.status == OutboxStatus.PENDING,
                outbox.c.next_attempt_at <= now,
                ~blocked,
            )
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=outbox)
        )
        async with self._write("claiming notifications") as connection:
            ids = list((await connection.scalars(due)).all())
            if not ids:
                return []
            rows = (
                await connection.execute(
                    update(outbox)
                    .where(outbox.c.id.in_(ids))
                    .values(attempts=outbox.c.attempts + 1, next_attempt_at=now + lease)
                    .returning(*outbox.c)
                )
            ).all()
            events = await _events(connection, {row.event_id for row in rows})
        order = {ident: n for n, ident in enumerate(ids)}
        return [
            Delivery(outbox_item(row), events[row.event_id])
            for row in sorted(rows, key=lambda row: order[row.id])
        ]

    async def settle_notification(
        self,
        item_id: int,
        *,
        now: datetime,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> OutboxItem:
        """The outcome of a claimed attempt: sent (no ``error``), pending again at
        ``retry_at``, or failed for good. A row no longer pending (sent or failed meanwhile)
        is left as it is and returned: a sent row is never made pending again."""
        check_time("now", now)
        values: dict[str, Any]
        if error is None:
            values = {"status": OutboxStatus.SENT, "sent_at": now}
        elif retry_at is None:
            values = {"status": OutboxStatus.FAILED, "last_error": str(error)[:MAX_ERROR]}
        else:
            values = {
                "next_attempt_at": check_time("retry_at", retry_at),
                "last_error": str(error)[:MAX_ERROR],
            }
        outbox = models.outbox
        async with self._write("settling a notification") as connection:
            row = (
                await connection.execute(
                    update(outbox)
                    .where(outbox.c.id == item_id, outbox.c.status == OutboxStatus.PENDING)
                    .values(**values)
                    .returning(*outbox.c)
                )
            ).first()
            if row is None:
                row = (
                    await connection.execute(select(outbox).where(outbox.c.id == item_id))
                ).first()
        if row is None:
            raise NotFoundError("notification", item_id)
        return outbox_item(row)

    async def settle_sent(self, item_ids: Collection[int], *, now: datetime) -> int:
        """Record several deliveries at once (a dispatcher's group commit); rows no longer
        pending are left as they are. Returns how many were marked sent."""
        check_time("now", now)
        if not item_ids:
            return 0
        outbox = models.outbox
        async with self._write("recording deliveries") as connection:
            result = await connection.execute(
                update(outbox)
                .where(outbox.c.id.in_(list(item_ids)), outbox.c.status == OutboxStatus.PENDING)
                .values(status=OutboxStatus.SENT, sent_at=now)
            )
        return int(result.rowcount)

    async def outbox_counts(self) -> OutboxCounts:
        outbox = models.outbox
        async with self._read("counting notifications") as connection:
            rows = (
                await connection.execute(
                    select(outbox.c.status, func.count()).group_by(outbox.c.status)
                )
            ).all()
            counts: dict[str, int] = {status: int(count) for status, count in rows}
            next_at = await connection.scalar(
                select(func.min(outbox.c.next_attempt_at)).where(
                    outbox.c.status == OutboxStatus.PENDING
                )
            )
        return OutboxCounts(
            pending=int(counts.get(OutboxStatus.PENDING, 0)),
            sent=int(counts.get(OutboxStatus.SENT, 0)),
            failed=int(counts.get(OutboxStatus.FAILED, 0)),
            next_attempt_at=next_at,
        )

    async def list_notifications(
        self,
        *,
        status: OutboxStatus | str | None = None,
        incident_id: uuid.UUID | None = None,
        limit: int = 100,
    ) -> list[OutboxItem]:
        """Outbox rows, newest first: ``status="failed"`` is what an operator looks at."""
        check_int("limit", limit, 1, MAX_CLAIM)
        outbox = models.outbox
        statement = select(outbox).order_by(outbox.c.id.desc()).limit(limit)
        if status is not None:
            try:
                statement = statement.where(outbox.c.status == OutboxStatus(status))
            except ValueError:
                raise ValidationError("status", f"unknown status {status!r}") from None
        if incident_id is not None:
            statement = statement.where(outbox.c.incident_id == incident_id)
        async with self._read("reading notifications") as connection:
            rows = (await connection.execute(statement)).all()
        return [outbox_item(row) for row in rows]

    async def last_notifications(
        self, incident_ids: Collection[uuid.UUID]
    ) -> list[LastNotification]:
        """Per incident and channel, what was last written for it (for reminders)."""
        if not incident_ids:
            return []
        outbox = models.outbox
        async with self._read("reading notifications of incidents") as connection:
            rows = (
                await connection.execute(
                    select(outbox)
                    .where(outbox.c.incident_id.in_(list(incident_ids)))
                    .order_by(outbox.c.id)
                )
            ).all()
        last: dict[tuple[uuid.UUID, str], Row[Any]] = {}
        pending: set[tuple[uuid.UUID, str]] = set()
        repeats: dict[tuple[uuid.UUID, str], int] = {}
        for row in rows:
            key = (row.incident_id, row.channel)
            last[key] = row
            repeats[key] = max(repeats.get(key, 0), row.repeat)
            if row.status == OutboxStatus.PENDING:
                pending.add(key)
        return [
            LastNotification(
                incident_id=incident,
                channel=channel,
                event_id=row.event_id,
                at=row.sent_at or row.created_at,
                repeats=repeats[incident, channel],
                pending=(incident, channel) in pending,
            )
            for (incident, channel), row in last.items()
        ]

    async def enqueue_reminder(self, last: LastNotification, *, now: datetime) -> OutboxItem | None:
        """Write the next reminder after ``last`` (number ``last.repeats + 1``, about the same
        event). Its key is fixed by that number, so writing it twice adds nothing; returns
        None then."""
        check_time("now", now)
        outbox = models.outbox
        async with self._write("writing a reminder") as connection:
            [event] = (await _events(connection, {last.event_id})).values()
            row = outbox_row(event, last.channel, now=now, repeat=last.repeats + 1)
            inserted = (
                await connection.execute(
                    self._upsert(outbox)
                    .values(row)
                    .on_conflict_do_nothing(index_elements=[outbox.c.idempotency_key])
                    .returning(*outbox.c)
                )
            ).first()
        return None if inserted is None else outbox_item(inserted)


def _check_by(by: str | None) -> None:
    if by is not None:
        check_name("by", by, max_length=200)


def _channel_event(
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


async def _events(connection: AsyncConnection, ids: Collection[int]) -> dict[int, Event]:
    table = models.events
    rows = (await connection.execute(select(table).where(table.c.id.in_(list(ids))))).all()
    found = {row.id: event_from_row(row) for row in rows}
    missing = set(ids) - set(found)
    if missing:
        raise NotFoundError("event", min(missing))
    return found


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
    }


def _channel(row: Row[Any]) -> Channel:
    return Channel(
        name=row.name,
        url=row.url,
        min_severity=row.min_severity,
        events=notify_on(row.events),
        enabled=row.enabled,
        renotify_minutes=row.renotify_minutes,
    )


def _stored_channel(row: Row[Any]) -> StoredChannel:
    return StoredChannel(_channel(row), created_at=row.created_at, updated_at=row.updated_at)
