"""Incident messages posted in Discord by the monitored bot: which message shows which incident.

Discord delivery reads the event log, which commits in the very transaction that changes an
incident (the same guarantee the notification outbox is built on), from a cursor kept here, and
keeps one row per incident:

- before the first post, a row is *claimed* (channel, nonce, no message id) and committed;
- the post carries that nonce with ``enforce_nonce``, and its message id is then stored;
- a row with a message id is only ever edited, so a restart never posts twice;
- a row claimed but without a message id (the process died between the post and storing its
  id) is first looked for in the channel before it is posted again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Row, String, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from vigil.store import models
from vigil.store._base import StoreBase, check_int, check_time, parse_incident_id

MAX_BEHIND = 500


class DiscordMessageRow(models.Base):
    __tablename__ = "discord_messages"

    incident_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    channel_id: Mapped[int] = mapped_column(BigInteger)
    # NULL while a post is under way (claimed, not yet known to have reached Discord).
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    nonce: Mapped[str] = mapped_column(String(25))
    # The newest event of the incident the message shows; behind the log means an edit is due.
    rendered_event_id: Mapped[int | None] = mapped_column(BigInteger)
    attempted_at: Mapped[datetime]
    posted_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class DiscordCursorRow(models.Base):
    """How far in the event log a Discord poster has gone."""

    __tablename__ = "discord_cursors"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


discord_messages = models._table(DiscordMessageRow)
discord_cursors = models._table(DiscordCursorRow)


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscordMessage:
    incident_id: uuid.UUID
    channel_id: int
    message_id: int | None
    nonce: str
    rendered_event_id: int | None
    attempted_at: datetime
    posted_at: datetime | None

    @property
    def posted(self) -> bool:
        return self.message_id is not None


def incident_nonce(incident_id: uuid.UUID, generation: int = 0) -> str:
    """Discord's nonce is at most 25 characters: the incident id's high 64 bits in decimal
    (20 digits at most), plus the post's generation when a deleted message is replaced."""
    base = str(incident_id.int >> 64)
    return base if generation == 0 else f"{base}-{generation}"


class DiscordMessages(StoreBase):
    async def discord_cursor(self, name: str) -> int | None:
        """The last event id a poster named ``name`` has handled; None before its first run."""
        table = discord_cursors
        async with self._read("reading the Discord cursor") as connection:
            value = await connection.scalar(select(table.c.event_id).where(table.c.name == name))
        return None if value is None else int(value)

    async def set_discord_cursor(self, name: str, event_id: int, *, now: datetime) -> int:
        """Move the cursor forward to ``event_id`` (never back); returns where it now is."""
        check_int("event_id", event_id, 0, 2**63 - 1)
        check_time("now", now)
        table = discord_cursors
        async with self._write("moving the Discord cursor") as connection:
            await connection.execute(
                self._upsert(table)
                .values(name=name, event_id=event_id, updated_at=now)
                .on_conflict_do_nothing(index_elements=[table.c.name])
            )
            await connection.execute(
                update(table)
                .where(table.c.name == name, table.c.event_id < event_id)
                .values(event_id=event_id, updated_at=now)
            )
            value = await connection.scalar(select(table.c.event_id).where(table.c.name == name))
        return int(value or 0)

    async def discord_message(self, incident_id: uuid.UUID | str) -> DiscordMessage | None:
        ident = parse_incident_id(incident_id)
        table = discord_messages
        async with self._read("reading a Discord message") as connection:
            row = (
                await connection.execute(select(table).where(table.c.incident_id == ident))
            ).first()
        return None if row is None else _message(row)

    async def claim_discord_post(
        self, incident_id: uuid.UUID, *, channel_id: int, nonce: str, now: datetime
    ) -> DiscordMessage:
        """Record that a post is about to be made, before it is made. A row that exists is
        returned as it is (with its message id, if a post already succeeded), its attempt
        time refreshed when it still has no message."""
        check_time("now", now)
        table = discord_messages
        async with self._write("claiming a Discord post") as connection:
            await connection.execute(
                self._upsert(table)
                .values(
                    incident_id=incident_id,
                    channel_id=channel_id,
                    message_id=None,
                    nonce=nonce,
                    rendered_event_id=None,
                    attempted_at=now,
                    posted_at=None,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=[table.c.incident_id])
            )
            await connection.execute(
                update(table)
                .where(table.c.incident_id == incident_id, table.c.message_id.is_(None))
                .values(attempted_at=now, updated_at=now)
            )
            row = (
                await connection.execute(select(table).where(table.c.incident_id == incident_id))
            ).one()
        return _message(row)

    async def record_discord_post(
        self, incident_id: uuid.UUID, *, message_id: int, event_id: int | None, now: datetime
    ) -> DiscordMessage:
        """The post reached Discord as ``message_id``, showing the incident as of ``event_id``.
        A message id already stored is kept: the first one recorded is the incident's."""
        check_time("now", now)
        table = discord_messages
        async with self._write("recording a Discord post") as connection:
            await connection.execute(
                update(table)
                .where(table.c.incident_id == incident_id, table.c.message_id.is_(None))
                .values(message_id=message_id, posted_at=now, updated_at=now)
            )
            if event_id is not None:
                await _raise_rendered(connection, incident_id, event_id, now)
            row = (
                await connection.execute(select(table).where(table.c.incident_id == incident_id))
            ).one()
        return _message(row)

    async def record_discord_edit(
        self, incident_id: uuid.UUID, *, event_id: int, now: datetime
    ) -> None:
        """The message now shows the incident as of ``event_id``."""
        check_time("now", now)
        async with self._write("recording a Discord edit") as connection:
            await _raise_rendered(connection, incident_id, event_id, now)

    async def forget_discord_post(
        self, incident_id: uuid.UUID, *, nonce: str, now: datetime
    ) -> None:
        """The message was deleted in Discord: the next sync posts a new one, under ``nonce``."""
        check_time("now", now)
        table = discord_messages
        async with self._write("forgetting a Discord message") as connection:
            await connection.execute(
                update(table)
                .where(table.c.incident_id == incident_id)
                .values(
                    message_id=None,
                    nonce=nonce,
                    rendered_event_id=None,
                    posted_at=None,
                    updated_at=now,
                )
            )

    async def discord_messages_behind(self, *, limit: int = MAX_BEHIND) -> list[uuid.UUID]:
        """Incidents whose message is missing (a post that may not have happened) or shows an
        older state than their newest event: what a poster catches up on after a restart or
        a reconnection."""
        check_int("limit", limit, 1, MAX_BEHIND)
        table = discord_messages
        events = models.events
        newest = (
            select(func.max(events.c.id))
            .where(events.c.incident_id == table.c.incident_id)
            .scalar_subquery()
        )
        statement = (
            select(table.c.incident_id)
            .where(
                or_(
                    table.c.message_id.is_(None),
                    table.c.rendered_event_id.is_(None),
                    table.c.rendered_event_id < newest,
                )
            )
            .order_by(table.c.attempted_at)
            .limit(limit)
        )
        async with self._read("reading Discord messages behind") as connection:
            return list((await connection.scalars(statement)).all())


async def _raise_rendered(
    connection: AsyncConnection, incident_id: uuid.UUID, event_id: int, now: datetime
) -> None:
    table = discord_messages
    await connection.execute(
        update(table)
        .where(
            table.c.incident_id == incident_id,
            or_(table.c.rendered_event_id.is_(None), table.c.rendered_event_id < event_id),
        )
        .values(rendered_event_id=event_id, updated_at=now)
    )


def _message(row: Row[Any]) -> DiscordMessage:
    return DiscordMessage(
        incident_id=row.incident_id,
        channel_id=int(row.channel_id),
        message_id=None if row.message_id is None else int(row.message_id),
        nonce=row.nonce,
        rendered_event_id=None if row.rendered_event_id is None else int(row.rendered_event_id),
        attempted_at=row.attempted_at,
        posted_at=row.posted_at,
    )
