"""Incident messages posted in Discord by the monitored bot: which message shows which incident,
or which incident group.

Discord delivery reads the event log, which commits in the very transaction that changes an
incident (the same guarantee the notification outbox is built on), from a cursor kept here, and
keeps one row per message: per incident in ``discord_messages``, or, for incidents in a group
(incident grouping on), per group in ``discord_group_messages`` (since migration 0012). Every
method takes ``group=True`` to mean the group's row. For each:

- before the first post, a row is *claimed* (channel, nonce, no message id) and committed;
- the post carries that nonce with ``enforce_nonce``, and its message id is then stored;
- a row with a message id is only ever edited, so a restart never posts twice;
- a row claimed but without a message id (the process died between the post and storing its
  id) is first looked for in the channel before it is posted again.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Row,
    String,
    Table,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from vigil.store import models
from vigil.store._base import StoreBase, check_int, check_time, parse_incident_id
from vigil.store._groups import _parse_group_id

MAX_BEHIND = 500
MAX_GROUPS_ASKED = 500


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


class DiscordGroupMessageRow(models.Base):
    """The one message showing an incident group (since 0012): the same columns as an
    incident's, keyed by the group. Deleted with the group (retention prunes empty groups)."""

    __tablename__ = "discord_group_messages"

    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("incident_groups.id", ondelete="CASCADE"), primary_key=True
    )
    channel_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    nonce: Mapped[str] = mapped_column(String(25))
    # The newest event of any member the message shows.
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
discord_group_messages = models._table(DiscordGroupMessageRow)
discord_cursors = models._table(DiscordCursorRow)


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscordMessage:
    subject: uuid.UUID  # the incident's id, or the group's when ``grouped``
    grouped: bool = False
    channel_id: int
    message_id: int | None
    nonce: str
    rendered_event_id: int | None
    attempted_at: datetime
    posted_at: datetime | None

    @property
    def posted(self) -> bool:
        return self.message_id is not None

    @property
    def incident_id(self) -> uuid.UUID | None:
        return None if self.grouped else self.subject

    @property
    def group_id(self) -> uuid.UUID | None:
        return self.subject if self.grouped else None


def incident_nonce(incident_id: uuid.UUID, generation: int = 0) -> str:
    """Discord's nonce is at most 25 characters: the incident id's high 64 bits in decimal
    (20 digits at most), plus the post's generation when a deleted message is replaced."""
    base = str(incident_id.int >> 64)
    return base if generation == 0 else f"{base}-{generation}"


def group_nonce(group_id: uuid.UUID, generation: int = 0) -> str:
    """A group's nonce: as an incident's, marked ``g`` (23 characters at most)."""
    return "g" + incident_nonce(group_id, generation)


def _table(group: bool) -> tuple[Table, Column[uuid.UUID]]:
    table = discord_group_messages if group else discord_messages
    return table, table.c.group_id if group else table.c.incident_id


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

        async def move(connection: AsyncConnection) -> int:
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

        return await self._write_all("moving the Discord cursor", move)

    async def discord_message(
        self, subject: uuid.UUID | str, *, group: bool = False
    ) -> DiscordMessage | None:
        """The message of an incident (or, with ``group``, of an incident group), if any."""
        ident = _parse_id(subject, group)
        table, key = _table(group)
        async with self._read("reading a Discord message") as connection:
            row = (await connection.execute(select(table).where(key == ident))).first()
        return None if row is None else _message(row, group)

    async def claim_discord_post(
        self,
        subject: uuid.UUID,
        *,
        channel_id: int,
        nonce: str,
        now: datetime,
        group: bool = False,
    ) -> DiscordMessage:
        """Record that a post is about to be made, before it is made. A row that exists is
        returned as it is (with its message id, if a post already succeeded), its attempt
        time refreshed when it still has no message."""
        check_time("now", now)
        table, key = _table(group)

        async def claim(connection: AsyncConnection) -> Row[Any]:
            await connection.execute(
                self._upsert(table)
                .values(
                    {
                        key.name: subject,
                        "channel_id": channel_id,
                        "message_id": None,
                        "nonce": nonce,
                        "rendered_event_id": None,
                        "attempted_at": now,
                        "posted_at": None,
                        "updated_at": now,
                    }
                )
                .on_conflict_do_nothing(index_elements=[key])
            )
            await connection.execute(
                update(table)
                .where(key == subject, table.c.message_id.is_(None))
                .values(attempted_at=now, updated_at=now)
            )
            return (await connection.execute(select(table).where(key == subject))).one()

        return _message(await self._write_all("claiming a Discord post", claim), group)

    async def record_discord_post(
        self,
        subject: uuid.UUID,
        *,
        message_id: int,
        event_id: int | None,
        now: datetime,
        group: bool = False,
    ) -> DiscordMessage:
        """The post reached Discord as ``message_id``, showing the incident (or group) as of
        ``event_id``. A message id already stored is kept: the first one recorded is the one."""
        check_time("now", now)
        table, key = _table(group)

        async def record(connection: AsyncConnection) -> Row[Any]:
            await connection.execute(
                update(table)
                .where(key == subject, table.c.message_id.is_(None))
                .values(message_id=message_id, posted_at=now, updated_at=now)
            )
            if event_id is not None:
                await _raise_rendered(connection, group, subject, event_id, now)
            return (await connection.execute(select(table).where(key == subject))).one()

        return _message(await self._write_all("recording a Discord post", record), group)

    async def record_discord_edit(
        self, subject: uuid.UUID, *, event_id: int, now: datetime, group: bool = False
    ) -> None:
        """The message now shows the incident (or group) as of ``event_id``."""
        check_time("now", now)
        await self._write_all(
            "recording a Discord edit",
            lambda connection: _raise_rendered(connection, group, subject, event_id, now),
        )

    async def forget_discord_post(
        self, subject: uuid.UUID, *, nonce: str, now: datetime, group: bool = False
    ) -> None:
        """The message was deleted in Discord: the next sync posts a new one, under ``nonce``."""
        check_time("now", now)
        table, key = _table(group)
        async with self._write("forgetting a Discord message") as connection:
            await connection.execute(
                update(table)
                .where(key == subject)
                .values(
                    message_id=None,
                    nonce=nonce,
                    rendered_event_id=None,
                    posted_at=None,
                    updated_at=now,
                )
            )

    async def discord_messages_behind(
        self, *, limit: int = MAX_BEHIND, group: bool = False
    ) -> list[uuid.UUID]:
        """Incidents (with ``group``: incident groups) whose message is missing (a post that
        may not have happened) or shows an older state than their newest event: what a poster
        catches up on after a restart or a reconnection."""
        check_int("limit", limit, 1, MAX_BEHIND)
        table, key = _table(group)
        events, incidents = models.events, models.incidents
        if group:
            newest = (
                select(func.max(events.c.id))
                .select_from(events.join(incidents, events.c.incident_id == incidents.c.id))
                .where(incidents.c.group_id == key)
                .scalar_subquery()
            )
        else:
            newest = (
                select(func.max(events.c.id)).where(events.c.incident_id == key).scalar_subquery()
            )
        statement = (
            select(key)
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

    async def discord_groups_posted_one_by_one(
        self, group_ids: Collection[uuid.UUID]
    ) -> set[uuid.UUID]:
        """Of ``group_ids``, the groups with no message of their own whose members already
        have messages of their own: groups posted incident by incident before group messages
        existed, which go on that way so that no incident is shown twice."""
        wanted = sorted(set(group_ids))
        if not wanted:
            return set()
        check_int("group_ids", len(wanted), 1, MAX_GROUPS_ASKED)
        incidents, own, grouped = models.incidents, discord_messages, discord_group_messages
        statement = (
            select(incidents.c.group_id)
            .select_from(own.join(incidents, own.c.incident_id == incidents.c.id))
            .where(
                incidents.c.group_id.in_(wanted),
                ~exists().where(grouped.c.group_id == incidents.c.group_id),
            )
            .distinct()
        )
        async with self._read("reading how Discord groups are posted") as connection:
            return set((await connection.scalars(statement)).all())


async def _raise_rendered(
    connection: AsyncConnection, group: bool, subject: uuid.UUID, event_id: int, now: datetime
) -> None:
    table, key = _table(group)
    await connection.execute(
        update(table)
        .where(
            key == subject,
            or_(table.c.rendered_event_id.is_(None), table.c.rendered_event_id < event_id),
        )
        .values(rendered_event_id=event_id, updated_at=now)
    )


def _parse_id(value: uuid.UUID | str, group: bool) -> uuid.UUID:
    return _parse_group_id(value) if group else parse_incident_id(value)


def _message(row: Row[Any], group: bool) -> DiscordMessage:
    return DiscordMessage(
        subject=row.group_id if group else row.incident_id,
        grouped=group,
        channel_id=int(row.channel_id),
        message_id=None if row.message_id is None else int(row.message_id),
        nonce=row.nonce,
        rendered_event_id=None if row.rendered_event_id is None else int(row.rendered_event_id),
        attempted_at=row.attempted_at,
        posted_at=row.posted_at,
    )
