"""The transactional outbox: one row per notification to send, in one place.

Rows are written by the very transaction that stores their events
(``StoreBase._append_events`` calls ``_enqueue_notifications``), so an incident change and its
notifications commit together or not at all. The dispatcher then claims what is due (or the
cycle's transaction claims its own rows for the dispatcher of its process: ``Claim``),
settles each attempt, counts, and writes reminders, all here. Acknowledging or resolving an incident
cancels its follow-ups not yet sent (escalation steps, reminders) in that same transaction.

Which channels hear of an event is decided from their stored settings alone (``subscribed``),
never by re-parsing their URLs: a URL that apprise stopped accepting must not keep an incident
from being recorded; its delivery fails, visibly, instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Row, bindparam, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vigil.core.digest import Delivery as DigestDelivery
from vigil.core.errors import NotFoundError, ValidationError
from vigil.core.events import Event
from vigil.core.incidents import Severity, Status
from vigil.notify.channels import Channel, NotifyOn, subscribed
from vigil.notify.format import idempotency_key
from vigil.store import models
from vigil.store._base import check_int, check_lease, check_time, event_from_row, logged
from vigil.store._escalations import escalation_rows
from vigil.store._groups import IncidentGroups, group_summaries
from vigil.store._prepared import prepared
from vigil.store.records import (
    MAX_CLAIM,
    Claim,
    Delivery,
    LastNotification,
    OutboxCounts,
    OutboxItem,
    OutboxStatus,
)

MAX_ERROR = 2000


class Outbox(IncidentGroups):
    async def _enqueue_notifications(
        self,
        connection: AsyncConnection,
        events: Sequence[Event],
        *,
        new_groups: Mapping[uuid.UUID, timedelta] | None = None,
        claim: Claim | None = None,
    ) -> None:
        """Write one pending row per (incident event, enabled channel that wants it). The key
        is the message's idempotency key, so writing the same again adds nothing.

        An event of an incident no longer active (acknowledged, resolved) first cancels the
        incident's follow-ups still waiting: escalation steps and reminders only say that it
        is still unacknowledged. Its own messages (the acknowledgement, the resolution) go."""
        await cancel_follow_ups(
            connection,
            {
                e.incident.id
                for e in events
                if e.incident is not None and e.incident.status is not Status.ACTIVE
            },
        )
        notified = [e for e in events if e.incident is not None and NotifyOn.of(e.kind) is not None]
        if not notified:
            return
        channels = (await connection.execute(_ENABLED_CHANNELS)).all()
        if claim is not None:  # what its deliveries name, as this transaction sees it
            claim.channels = delivery_channels_of(channels)
        rows = [
            _row(event, channel.name, now=event.at)
            for event in notified
            for channel in channels
            if subscribed(
                event,
                enabled=True,
                events=notify_on(channel.events),
                min_severity=Severity(channel.min_severity),
            )
        ]
        rows = await escalation_rows(
            connection,
            notified,
            rows,
            enabled=[c.name for c in channels],
            digests={c.name for c in channels if c.delivery != DigestDelivery.REALTIME.value},
            make_row=_row,
        )
        rows = await self._group_rows(connection, notified, rows, new_groups=new_groups)
        if rows:
            await connection.execute(self._built("outbox insert", self._outbox_insert), rows)

    def _outbox_insert(self) -> Any:
        outbox = models.outbox
        return prepared(
            self._upsert(outbox).on_conflict_do_nothing(index_elements=[outbox.c.idempotency_key])
        )

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
        check_lease(lease)
        return await self._write_all(
            "claiming notifications",
            lambda connection: self._claim(connection, now=now, lease=lease, limit=limit),
        )

    async def _claim(
        self,
        connection: AsyncConnection,
        *,
        now: datetime,
        lease: timedelta,
        limit: int,
        among: Sequence[Event] | None = None,
    ) -> list[Delivery]:
        """``claim_notifications`` within ``connection``'s transaction; only the rows of the
        events ``among`` (stored just now, so not read again) when given."""
        # As the log holds them (what a claim after the commit would read back).
        known = {e.id: logged(e) for e in among or () if e.id is not None}
        parameters: dict[str, Any] = {"now": now, "limit": limit}
        if among is not None:
            parameters["events"] = sorted(known)
        due = _DUE if among is None else _DUE_OF_EVENTS
        ids = list((await connection.scalars(due, parameters)).all())
        if not ids:
            return []
        rows = (await connection.execute(_TAKE, {"ids": ids, "until": now + lease})).all()
        events = dict(known)
        missing = {row.event_id for row in rows} - set(known)
        if missing:
            events.update(await _events(connection, missing))
        groups = await group_summaries(connection, {r.group_id for r in rows if r.group_id})
        order = {ident: n for n, ident in enumerate(ids)}
        return [
            Delivery(_item(row), events[row.event_id], groups.get(row.group_id))
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
        is left as it is and returned: a sent row is never made pending again. A row
        cancelled during its attempt is recorded sent if the attempt succeeded, and otherwise
        stays cancelled."""
        values = settlement(now=now, error=error, retry_at=retry_at)
        outbox = models.outbox

        async def settle(connection: AsyncConnection) -> Row[Any] | None:
            row = (
                await connection.execute(
                    update(outbox)
                    .where(outbox.c.id == item_id, outbox.c.status.in_(_settled_from(error)))
                    .values(**values)
                    .returning(*outbox.c)
                )
            ).first()
            if row is not None and row.status == OutboxStatus.SENT:
                await self._count_sent(connection, [row.event_id], now=now)
            if row is None:
                row = (
                    await connection.execute(select(outbox).where(outbox.c.id == item_id))
                ).first()
            return row

        row = await self._write_all("settling a notification", settle)
        if row is None:
            raise NotFoundError("notification", item_id)
        return _item(row)

    async def renew_claims(
        self, item_ids: Collection[int], *, now: datetime, lease: timedelta
    ) -> int:
        """Hold claimed rows still being sent for another ``lease`` from ``now``, so the
        claim can be short (a dead dispatcher's rows come back soon) while a slow send keeps
        its row. Rows no longer pending are left as they are. Returns how many were held."""
        check_time("now", now)
        check_lease(lease)
        if not item_ids:
            return 0
        outbox = models.outbox

        async def renew(connection: AsyncConnection) -> int:
            result = await connection.execute(
                update(outbox)
                .where(outbox.c.id.in_(list(item_ids)), outbox.c.status == OutboxStatus.PENDING)
                .values(next_attempt_at=now + lease)
            )
            return int(result.rowcount)

        return await self._write_all("renewing notification claims", renew)

    async def settle_sent(self, item_ids: Collection[int], *, now: datetime) -> int:
        """Record several deliveries at once (a dispatcher's group commit); rows sent or
        failed meanwhile are left as they are (a row cancelled while its attempt was under way
        did go out: it is recorded sent). Returns how many were marked sent."""
        check_time("now", now)
        if not item_ids:
            return 0

        async def record(connection: AsyncConnection) -> int:
            parameters = {"ids": sorted(item_ids), "now": now}
            sent = (await connection.scalars(_SETTLE_SENT, parameters)).all()
            await self._count_sent(connection, sent, now=now)
            return len(sent)

        return await self._write_all("recording deliveries", record)

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
        return [_item(row) for row in rows]

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
        return last_of([_item(row) for row in rows])

    async def enqueue_reminder(self, last: LastNotification, *, now: datetime) -> OutboxItem | None:
        """Write the next reminder after ``last`` (number ``last.repeats + 1``, about the same
        event). Its key is fixed by that number, so writing it twice adds nothing; returns
        None then."""
        check_time("now", now)
        outbox = models.outbox

        async def write(connection: AsyncConnection) -> Row[Any] | None:
            if not await still_active(connection, [last.incident_id]):
                return None  # acknowledged or resolved since the caller looked
            [event] = (await _events(connection, {last.event_id})).values()
            row = _row(event, last.channel, now=now, repeat=last.repeats + 1)
            return (
                await connection.execute(
                    self._upsert(outbox)
                    .values(row)
                    .on_conflict_do_nothing(index_elements=[outbox.c.idempotency_key])
                    .returning(*outbox.c)
                )
            ).first()

        inserted = await self._write_all("writing a reminder", write)
        return None if inserted is None else _item(inserted)


async def fail_pending(connection: AsyncConnection, channel: str, reason: str) -> None:
    """Give up on every row still waiting for ``channel`` (it is being removed)."""
    outbox = models.outbox
    await connection.execute(
        update(outbox)
        .where(outbox.c.channel == channel, outbox.c.status == OutboxStatus.PENDING)
        .values(status=OutboxStatus.FAILED, last_error=reason)
    )


async def cancel_follow_ups(
    connection: AsyncConnection, incident_ids: Collection[uuid.UUID]
) -> None:
    """Cancel the pending follow-ups (``repeat`` > 0: escalation steps and reminders) of
    ``incident_ids``. Called in the transaction that stores their acknowledgement or
    resolution, after the incident's row was locked and changed: a follow-up written
    concurrently either committed first (and is cancelled here) or sees the incident's new
    status (``still_active``) and is not written."""
    if not incident_ids:
        return
    await connection.execute(_CANCEL_FOLLOW_UPS, {"incidents": sorted(incident_ids)})


async def still_active(
    connection: AsyncConnection, incident_ids: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of ``incident_ids`` are still active (unacknowledged), their rows locked until the
    transaction ends, so an acknowledgement waits for the follow-up being written and then
    cancels it (``cancel_follow_ups``). Locked in id order, as every writer of incidents does."""
    if not incident_ids:
        return set()
    table = models.incidents
    rows = await connection.scalars(
        select(table.c.id)
        .where(table.c.id.in_(sorted(incident_ids)), table.c.status == Status.ACTIVE)
        .order_by(table.c.id)
        .with_for_update()
    )
    return set(rows.all())


def settlement(*, now: datetime, error: str | None, retry_at: datetime | None) -> dict[str, Any]:
    """What settling an attempt changes on its row: sent, pending again at ``retry_at``, or
    failed for good."""
    check_time("now", now)
    if error is None:
        return {"status": OutboxStatus.SENT, "sent_at": now}
    if retry_at is None:
        return {"status": OutboxStatus.FAILED, "last_error": str(error)[:MAX_ERROR]}
    return {
        "next_attempt_at": check_time("retry_at", retry_at),
        "last_error": str(error)[:MAX_ERROR],
    }


def last_of(items: Iterable[OutboxItem]) -> list[LastNotification]:
    """Per incident and channel, the last of ``items`` (oldest first): what reminders follow."""
    last: dict[tuple[uuid.UUID, str], OutboxItem] = {}
    pending: set[tuple[uuid.UUID, str]] = set()
    repeats: dict[tuple[uuid.UUID, str], int] = {}
    for item in items:
        if item.incident_id is None:
            continue
        key = (item.incident_id, item.channel)
        last[key] = item
        repeats[key] = max(repeats.get(key, 0), item.repeat)
        if item.status is OutboxStatus.PENDING:
            pending.add(key)
    return [
        LastNotification(
            incident_id=incident,
            channel=channel,
            event_id=item.event_id,
            at=item.sent_at or item.created_at,
            repeats=repeats[incident, channel],
            pending=(incident, channel) in pending,
        )
        for (incident, channel), item in last.items()
    ]


def channel_from_row(row: Row[Any]) -> Channel:
    return Channel(
        name=row.name,
        url=row.url,
        min_severity=row.min_severity,
        events=notify_on(row.events),
        enabled=row.enabled,
        renotify_minutes=row.renotify_minutes,
        delivery=row.delivery,
        digest_at=row.digest_at,
        timezone=row.timezone,
    )


def delivery_channels_of(rows: Iterable[Row[Any]]) -> dict[str, Channel | ValidationError]:
    """Channels by name, for the dispatcher: a stored URL that no longer passes validation
    (apprise changed under it) is its error instead, so only that channel's deliveries fail."""
    found: dict[str, Channel | ValidationError] = {}
    for row in rows:
        try:
            found[row.name] = channel_from_row(row)
        except ValidationError as exc:
            found[row.name] = exc
    return found


def notify_on(values: Iterable[str]) -> frozenset[NotifyOn]:
    """Stored subscriptions; a value this version does not know is ignored, not fatal."""
    return frozenset(NotifyOn(v) for v in values if v in _KNOWN)


_KNOWN = frozenset(on.value for on in NotifyOn)
# An earlier row of the same incident for the same channel still pending: a row waits for it.
# Built once: an alias builds its columns anew each time, which cost more than the claim.
_EARLIER = models.outbox.alias("earlier")
_BLOCKED = exists().where(
    _EARLIER.c.status == OutboxStatus.PENDING,
    _EARLIER.c.channel == models.outbox.c.channel,
    _EARLIER.c.incident_id == models.outbox.c.incident_id,
    _EARLIER.c.id < models.outbox.c.id,
)
# The due rows, oldest first, up to ``limit``: none blocked, none another dispatcher holds.
_DUE = (
    select(models.outbox.c.id)
    .where(
        models.outbox.c.status == OutboxStatus.PENDING,
        models.outbox.c.next_attempt_at <= bindparam("now"),
        ~_BLOCKED,
    )
    .order_by(models.outbox.c.next_attempt_at, models.outbox.c.id)
    .limit(bindparam("limit", type_=Integer))
    .with_for_update(skip_locked=True, of=models.outbox)
)
# The same, of the ``events`` just stored only.
_DUE_OF_EVENTS = _DUE.where(models.outbox.c.event_id.in_(bindparam("events", expanding=True)))
# Rows ``ids`` taken for one more attempt, not due again ``until`` the lease ends.
_TAKE = (
    update(models.outbox)
    .where(models.outbox.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        attempts=models.outbox.c.attempts + 1,
        next_attempt_at=bindparam("until", type_=models.outbox.c.next_attempt_at.type),
    )
    .returning(*models.outbox.c)
)
# The enabled channels, by name; the follow-ups of ``incidents`` not sent yet, cancelled.
_ENABLED_CHANNELS = (
    select(models.channels)
    .where(models.channels.c.enabled.is_(True))
    .order_by(models.channels.c.name)
)
_CANCEL_FOLLOW_UPS = (
    update(models.outbox)
    .where(
        models.outbox.c.incident_id.in_(bindparam("incidents", expanding=True)),
        models.outbox.c.status == OutboxStatus.PENDING,
        models.outbox.c.repeat > 0,
    )
    .values(status=OutboxStatus.CANCELLED)
)
for _statement in (_DUE, _DUE_OF_EVENTS, _TAKE, _ENABLED_CHANNELS, _CANCEL_FOLLOW_UPS):
    prepared(_statement)  # the claim, in the cycle's transaction or its own (``_prepared``)
# A cancelled row may still be settled as sent: its attempt was under way when it was
# cancelled, and the message left. A failed attempt of it is not retried.
_SENDABLE = (OutboxStatus.PENDING, OutboxStatus.CANCELLED)
# Rows ``ids`` sent ``now``, unless settled meanwhile; the events they were about.
_SETTLE_SENT = prepared(
    update(models.outbox)
    .where(
        models.outbox.c.id.in_(bindparam("ids", expanding=True)),
        models.outbox.c.status.in_(_SENDABLE),
    )
    .values(
        status=OutboxStatus.SENT,
        sent_at=bindparam("now", type_=models.outbox.c.sent_at.type),
    )
    .returning(models.outbox.c.event_id)
)


def _settled_from(error: str | None) -> tuple[OutboxStatus, ...]:
    return _SENDABLE if error is None else (OutboxStatus.PENDING,)


def _row(event: Event, channel: str, *, now: datetime, repeat: int = 0) -> dict[str, Any]:
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


async def _events(connection: AsyncConnection, ids: Collection[int]) -> dict[int, Event]:
    table = models.events
    rows = (await connection.execute(select(table).where(table.c.id.in_(list(ids))))).all()
    found = {row.id: event_from_row(row) for row in rows}
    missing = set(ids) - set(found)
    if missing:
        raise NotFoundError("event", min(missing))
    return found


def _item(row: Row[Any]) -> OutboxItem:
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
        group_id=row.group_id,
    )
