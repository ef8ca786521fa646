"""Rules and the event log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from vigil.core.errors import NotFoundError, ValidationError
from vigil.core.events import Event, EventKind
from vigil.core.rules import Rule
from vigil.store import models
from vigil.store._base import (
    StoreBase,
    check_int,
    check_time,
    event_from_row,
    rule_from_row,
    rule_values,
)

MAX_EVENTS = 10_000


class RulesAndEvents(StoreBase):
    async def list_rules(self) -> list[Rule]:
        async with self._read("reading rules") as connection:
            rows = (
                await connection.execute(select(models.rules).order_by(models.rules.c.metric))
            ).all()
        return [rule_from_row(row) for row in rows]

    async def get_rule(self, metric: str) -> Rule:
        async with self._read("reading a rule") as connection:
            row = (
                await connection.execute(
                    select(models.rules).where(models.rules.c.metric == metric)
                )
            ).first()
        if row is None:
            raise NotFoundError("rule", metric)
        return rule_from_row(row)

    async def add_rule(self, rule: Rule, *, by: str | None, now: datetime) -> tuple[Rule, Event]:
        """A rule for a metric that has none yet (a pushed custom metric, say)."""
        check_time("now", now)
        added = rule.updated({}, by=by, at=now)
        async with self._write("adding a rule") as connection:
            exists = await connection.scalar(
                select(models.rules.c.metric).where(models.rules.c.metric == rule.metric)
            )
            if exists is not None:
                raise ValidationError("metric", f"a rule for {rule.metric!r} already exists")
            await connection.execute(models.rules.insert().values(rule_values(added)))
            [event] = await self._append_events(
                connection, [_rule_event(added, added.to_dict(), by=by, now=now)]
            )
        return added, event

    async def update_rule(
        self, metric: str, changes: Mapping[str, Any], *, by: str | None, now: datetime
    ) -> tuple[Rule, Event]:
        """Apply ``changes`` (validated by the core: a key with ``None`` clears that field,
        a key left out keeps it) and record a ``rule.changed`` event, in one transaction."""
        check_time("now", now)
        table = models.rules
        async with self._write("updating a rule") as connection:
            row = (
                await connection.execute(
                    select(table).where(table.c.metric == metric).with_for_update()
                )
            ).first()
            if row is None:
                raise NotFoundError("rule", metric)
            updated = rule_from_row(row).updated(changes, by=by, at=now)
            values = rule_values(updated)
            del values["metric"]
            await connection.execute(update(table).where(table.c.metric == metric).values(values))
            after = updated.to_dict()
            [event] = await self._append_events(
                connection,
                [_rule_event(updated, {name: after[name] for name in changes}, by=by, now=now)],
            )
        return updated, event

    async def append_events(self, items: Sequence[Event]) -> list[Event]:
        """Append events that change no row here (leader changed, snooze started...)."""
        for item in items:
            check_time("at", item.at)
        async with self._write("appending events") as connection:
            return await self._append_events(connection, items)

    async def events_after(self, last_id: int, *, limit: int = 500) -> list[Event]:
        """Events with an id above ``last_id``, in id order: what a reconnecting client missed."""
        check_int("last_id", last_id, 0, 2**63 - 1)
        check_int("limit", limit, 1, MAX_EVENTS)
        table = models.events
        statement = select(table).where(table.c.id > last_id).order_by(table.c.id).limit(limit)
        async with self._read("reading events") as connection:
            rows = (await connection.execute(statement)).all()
        return [event_from_row(row) for row in rows]

    async def last_event_id(self) -> int:
        """The newest event's id; 0 for an empty log."""
        async with self._read("reading the last event id") as connection:
            value = await connection.scalar(select(func.max(models.events.c.id)))
        return int(value or 0)


def _rule_event(rule: Rule, changes: Mapping[str, Any], *, by: str | None, now: datetime) -> Event:
    return Event(
        kind=EventKind.RULE_CHANGED,
        at=now,
        metric=rule.metric,
        by=by,
        data={"changes": dict(changes), "rule": rule.to_dict()},
    )
