"""Digests: the summary of a digest channel's period, written once as an event and its
outbox row.

The row's key is (channel, period end), so however many rounds, restarts or leaders write a
period's digest, one row exists and one message is sent. The summary is computed in the
writing transaction, from the incident events of the period and the incidents open at its
end, and kept in the ``digest.written`` event: a retry sends the same message.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vigil.core.digest import Digest, summarize
from vigil.core.events import Event, EventKind
from vigil.core.incidents import Incident
from vigil.notify.channels import Channel
from vigil.notify.digest import digest_key
from vigil.store import models
from vigil.store._base import StoreBase, check_time, event_from_row, incident_from_row
from vigil.store.records import OutboxStatus

# A digest covers the time since the channel's last digest, unless that was longer ago than
# this (a channel switched back to digests after months): then its own period only.
MAX_CATCH_UP = timedelta(days=7)
_INCIDENT_KINDS = [
    EventKind.INCIDENT_OPENED.value,
    EventKind.INCIDENT_ESCALATED.value,
    EventKind.INCIDENT_RESOLVED.value,
]


class _Taken(Exception):
    """Another writer stored this period's digest first: roll back ours."""


class Digests(StoreBase):
    async def digest_written(self, channel: str, end: datetime) -> bool:
        """Whether the digest of ``channel`` for the period ending at ``end`` is written."""
        outbox = models.outbox
        async with self._read("reading digests") as connection:
            found = await connection.scalar(
                select(outbox.c.id).where(outbox.c.idempotency_key == digest_key(channel, end))
            )
        return found is not None

    async def enqueue_digest(
        self, channel: Channel, *, start: datetime, end: datetime, now: datetime
    ) -> Digest | None:
        """Write the digest of ``channel`` for the period ``[start, end)`` (from the end of
        its last digest instead, when that is later than ``start - MAX_CATCH_UP`` and
        earlier than ``start``): a ``digest.written`` event and its outbox row. Returns
        None if it was written before."""
        check_time("start", start)
        check_time("end", end)
        check_time("now", now)
        key = digest_key(channel.name, end)
        outbox = models.outbox
        try:
            async with self._write("writing a digest") as connection:
                if await connection.scalar(
                    select(outbox.c.id).where(outbox.c.idempotency_key == key)
                ):
                    return None
                last = await _last_digest_end(connection, channel.name)
                if last is not None and start - MAX_CATCH_UP <= last < start:
                    start = last
                digest = summarize(
                    channel=channel.name,
                    start=start,
                    end=end,
                    events=await _incident_events(connection, start, end),
                    still_open=await _open_at(connection, end),
                    min_severity=channel.min_severity,
                )
                written = Event(
                    kind=EventKind.DIGEST_WRITTEN,
                    at=end,
                    data={"digest": digest.to_dict()},
                )
                [stored] = await self._append_events(connection, [written])
                assert stored.id is not None
                inserted = await connection.execute(
                    self._upsert(outbox)
                    .values(
                        event_id=stored.id,
                        incident_id=None,
                        channel=channel.name,
                        idempotency_key=key,
                        repeat=0,
                        status=OutboxStatus.PENDING,
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=[outbox.c.idempotency_key])
                    .returning(outbox.c.id)
                )
                if inserted.first() is None:
                    raise _Taken
        except _Taken:
            return None
        return digest


async def _last_digest_end(connection: AsyncConnection, channel: str) -> datetime | None:
    outbox, events = models.outbox, models.events
    found: datetime | None = await connection.scalar(
        select(func.max(events.c.at))
        .select_from(outbox.join(events, outbox.c.event_id == events.c.id))
        .where(outbox.c.channel == channel, events.c.kind == EventKind.DIGEST_WRITTEN.value)
    )
    return found


async def _incident_events(
    connection: AsyncConnection, start: datetime, end: datetime
) -> list[Event]:
    events = models.events
    rows = (
        await connection.execute(
            select(events)
            .where(events.c.at >= start, events.c.at < end, events.c.kind.in_(_INCIDENT_KINDS))
            .order_by(events.c.id)
        )
    ).all()
    return [event_from_row(row) for row in rows]


async def _open_at(connection: AsyncConnection, end: datetime) -> list[Incident]:
    incidents = models.incidents
    rows = (
        await connection.execute(
            select(incidents).where(
                and_(
                    incidents.c.triggered_at < end,
                    or_(incidents.c.resolved_at.is_(None), incidents.c.resolved_at >= end),
                )
            )
        )
    ).all()
    return [incident_from_row(row) for row in rows]
