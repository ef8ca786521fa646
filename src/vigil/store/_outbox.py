"""The transactional outbox: the rows that tell channels of incident events, written by the
very transaction that stores the events (``StoreBase._append_events``), so an incident change
and its notifications commit together or not at all.

Which channels hear of an event is decided from their stored settings alone (``subscribed``),
never by re-parsing their URLs: a URL that apprise stopped accepting must not keep an incident
from being recorded; its delivery fails, visibly, instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vigil.core.events import Event
from vigil.core.incidents import Severity
from vigil.notify.channels import NotifyOn, subscribed
from vigil.notify.format import idempotency_key
from vigil.store import models
from vigil.store.records import OutboxItem, OutboxStatus

Upsert = Callable[[Table], Any]


async def enqueue_for_events(
    connection: AsyncConnection, events: Sequence[Event], *, upsert: Upsert
) -> int:
    """Write one pending row per (incident event, enabled channel that wants it); returns how
    many. The key is the message's idempotency key, so writing the same again adds nothing."""
    notified = [e for e in events if e.incident is not None and NotifyOn.of(e.kind) is not None]
    if not notified:
        return 0
    table = models.channels
    channels = (
        await connection.execute(
            select(table.c.name, table.c.events, table.c.min_severity)
            .where(table.c.enabled.is_(True))
            .order_by(table.c.name)
        )
    ).all()
    rows = [
        outbox_row(event, channel.name, now=event.at)
        for event in notified
        for channel in channels
        if subscribed(
            event,
            enabled=True,
            events=notify_on(channel.events),
            min_severity=Severity(channel.min_severity),
        )
    ]
    if rows:
        outbox = models.outbox
        await connection.execute(
            upsert(outbox).on_conflict_do_nothing(index_elements=[outbox.c.idempotency_key]),
            rows,
        )
    return len(rows)


def outbox_row(event: Event, channel: str, *, now: datetime, repeat: int = 0) -> dict[str, Any]:
    assert event.id is not None and event.incident is not None
    return {
        "event_id": event.id,
        "incident_id": event.incident.id,
        "channel": channel,
        "idempotency_key": idempotency_key(event.incident.id, event.id, channel, repeat=repeat),
        "repeat": repeat,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def key_for(event_id: int, incident_id: uuid.UUID | None, channel: str) -> str:
    """The row key: the message's idempotency key for an incident event; for any other event
    (only ``enqueue_notifications`` writes those) the event id and channel."""
    if incident_id is None:
        return f"{event_id}:{channel}"
    return idempotency_key(incident_id, event_id, channel)


def notify_on(values: Iterable[str]) -> frozenset[NotifyOn]:
    """Stored subscriptions; a value this version does not know is ignored, not fatal."""
    return frozenset(NotifyOn(v) for v in values if v in _KNOWN)


_KNOWN = frozenset(on.value for on in NotifyOn)


def outbox_item(row: Row[Any]) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        event_id=row.event_id,
        channel=row.channel,
        idempotency_key=row.idempotency_key,
        status=OutboxStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        sent_at=row.sent_at,
        created_at=row.created_at,
        incident_id=row.incident_id,
        repeat=row.repeat,
    )
