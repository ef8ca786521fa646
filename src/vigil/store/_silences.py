"""Silences, that is snoozes and maintenance windows: stored, listed, ended; each change an event
in the same transaction. The core types (``Snooze``, ``MaintenanceWindow``) validate everything
before a row is written."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from vigil.core.errors import NotFoundError, ValidationError
from vigil.core.events import Event, EventKind
from vigil.core.silences import MaintenanceWindow, Snooze
from vigil.store import models
from vigil.store._base import StoreBase, check_name, check_time


class Silences(StoreBase):
    # -- snoozes --------------------------------------------------------------------------------

    async def set_snooze(self, snooze: Snooze) -> list[Event]:
        """Snooze a rule; a live snooze of the same rule is replaced (and its end recorded).

        Returns the stored events: ``snooze.ended`` for a replaced one, then ``snooze.started``.
        ``NotFoundError`` if the rule does not exist.
        """
        if not isinstance(snooze, Snooze):
            raise ValidationError("snooze", f"must be a Snooze, got {type(snooze).__name__}")
        table = models.snoozes
        async with self._write("snoozing a rule") as connection:
            await _check_rules(connection, [snooze.metric], field=None)
            live = (
                await connection.execute(
                    select(table)
                    .where(table.c.metric == snooze.metric, models.LIVE_SNOOZE_PREDICATE)
                    .with_for_update()
                )
            ).first()
            events = []
            if live is not None:
                events.append(await _end(connection, live, at=snooze.created_at, by=snooze.by))
            await connection.execute(
                table.insert().values(
                    metric=snooze.metric,
                    until=snooze.until,
                    reason=snooze.reason,
                    by=snooze.by,
                    created_at=snooze.created_at,
                )
            )
            events.append(snooze.started_event())
            return await self._append_events(connection, events)

    async def end_snooze(self, metric: str, *, by: str, now: datetime) -> Event:
        """Lift a rule's active snooze early. ``NotFoundError`` if it has none."""
        check_name("by", by, max_length=200)
        check_time("now", now)
        table = models.snoozes
        async with self._write("ending a snooze") as connection:
            live = (
                await connection.execute(
                    select(table)
                    .where(
                        table.c.metric == metric,
                        models.LIVE_SNOOZE_PREDICATE,
                        table.c.until > now,
                    )
                    .with_for_update()
                )
            ).first()
            if live is None:
                raise NotFoundError("snooze", metric)
            ended = await _end(connection, live, at=now, by=by)
            [event] = await self._append_events(connection, [ended])
        return event

    async def active_snoozes(self, *, now: datetime | None = None) -> list[Snooze]:
        """Live snoozes by metric; with ``now``, only those still running at ``now`` (a
        snooze past its end stays live until the leader records that it expired)."""
        table = models.snoozes
        statement = select(table).where(models.LIVE_SNOOZE_PREDICATE).order_by(table.c.metric)
        if now is not None:
            statement = statement.where(table.c.until > check_time("now", now))
        async with self._read("reading snoozes") as connection:
            rows = (await connection.execute(statement)).all()
        return [_snooze(row) for row in rows]

    async def expire_snoozes(self, *, now: datetime) -> list[Event]:
        """Record the end of every live snooze whose time is up: one ``snooze.ended`` each,
        once, whoever else calls this at the same time (the update claims the rows)."""
        check_time("now", now)
        table = models.snoozes
        async with self._write("expiring snoozes") as connection:
            rows = (
                await connection.execute(
                    update(table)
                    .where(models.LIVE_SNOOZE_PREDICATE, table.c.until <= now)
                    .values(ended_at=table.c.until)
                    .returning(*table.c)
                )
            ).all()
            ended = [_snooze(row).ended_event(at=row.until) for row in rows]
            return await self._append_events(
                connection, sorted(ended, key=lambda e: (e.at, e.metric or ""))
            )

    # -- maintenance windows ------------------------------------------------------------------

    async def add_window(
        self, window: MaintenanceWindow | Mapping[str, Any], *, now: datetime
    ) -> tuple[MaintenanceWindow, Event]:
        """A new maintenance window; ``ValidationError`` on ``name`` if it is taken and on
        ``metrics`` if one has no rule."""
        checked = (
            window if isinstance(window, MaintenanceWindow) else MaintenanceWindow.from_dict(window)
        )
        check_time("now", now)
        table = models.maintenance_windows
        async with self._write("adding a maintenance window") as connection:
            if checked.metrics is not None:
                await _check_rules(connection, sorted(checked.metrics), field="metrics")
            taken = await connection.scalar(select(table.c.id).where(table.c.name == checked.name))
            if taken is not None:
                raise window_taken(checked.name)
            try:
                await connection.execute(
                    table.insert().values(
                        name=checked.name, kind=checked.kind, spec=checked.to_dict(), created_at=now
                    )
                )
            except sa_exc.IntegrityError:
                raise window_taken(checked.name) from None
            [event] = await self._append_events(
                connection, [window_event(EventKind.MAINTENANCE_ADDED, checked, checked.by, now)]
            )
        return checked, event

    async def get_window(self, name: str) -> MaintenanceWindow:
        table = models.maintenance_windows
        async with self._read("reading a maintenance window") as connection:
            row = (await connection.execute(select(table).where(table.c.name == name))).first()
        if row is None:
            raise NotFoundError("maintenance window", name)
        return MaintenanceWindow.from_dict(row.spec)

    async def list_windows(self) -> list[MaintenanceWindow]:
        """Every window, past, present and future, by name."""
        table = models.maintenance_windows
        async with self._read("reading maintenance windows") as connection:
            rows = (await connection.execute(select(table).order_by(table.c.name))).all()
        return [MaintenanceWindow.from_dict(row.spec) for row in rows]

    async def delete_window(self, name: str, *, by: str | None, now: datetime) -> Event:
        check_time("now", now)
        table = models.maintenance_windows
        async with self._write("removing a maintenance window") as connection:
            row = (
                await connection.execute(
                    delete(table).where(table.c.name == name).returning(table.c.spec)
                )
            ).first()
            if row is None:
                raise NotFoundError("maintenance window", name)
            window = MaintenanceWindow.from_dict(row.spec)
            [event] = await self._append_events(
                connection, [window_event(EventKind.MAINTENANCE_REMOVED, window, by, now)]
            )
        return event


async def _check_rules(
    connection: AsyncConnection, metrics: Iterable[str], *, field: str | None
) -> None:
    """Every metric has a rule: else ``NotFoundError`` (``field`` None) or a field error."""
    wanted = list(metrics)
    table = models.rules
    found = set(
        (await connection.scalars(select(table.c.name).where(table.c.name.in_(wanted)))).all()
    )
    for metric in wanted:
        if metric not in found:
            if field is None:
                raise NotFoundError("rule", metric)
            raise ValidationError(field, f"there is no rule for {metric!r}")


async def _end(connection: AsyncConnection, row: Row[Any], *, at: datetime, by: str) -> Event:
    """End a live snooze row: by ``by`` at ``at``, or, if its time was already up, by itself."""
    snooze = _snooze(row)
    expired = not snooze.is_active(at)
    ended_at = snooze.until if expired else at
    table = models.snoozes
    await connection.execute(
        update(table)
        .where(table.c.id == row.id)
        .values(ended_at=ended_at, ended_by=None if expired else by)
    )
    return snooze.ended_event(at=ended_at, by=None if expired else by)


def _snooze(row: Row[Any]) -> Snooze:
    return Snooze(
        metric=row.metric,
        until=row.until,
        reason=row.reason,
        by=row.by,
        created_at=row.created_at,
    )


def window_event(
    kind: EventKind, window: MaintenanceWindow, by: str | None, now: datetime
) -> Event:
    return Event(kind=kind, at=now, by=by, data={"window": window.to_dict()})


def window_taken(name: str) -> ValidationError:
    return ValidationError("name", f"a maintenance window named {name!r} already exists")
