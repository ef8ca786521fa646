"""Rules and the event log.

Every change of a rule writes its ``rule.*`` event in the same transaction. What a change
means (the events, the plan of ``apply_rules``, the resolution of a deleted rule's incidents)
is worked out by the pure functions at the end, which ``MemoryStore`` shares.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vigil.core.errors import NameTakenError, NotFoundError, ValidationError
from vigil.core.events import Event, EventKind
from vigil.core.incidents import Incident, resolve
from vigil.core.rules import Rule
from vigil.store import models
from vigil.store._base import (
    StoreBase,
    check_int,
    check_name,
    check_time,
    event_from,
    event_from_row,
    incident_from_row,
    incident_values,
    rule_from_row,
    rule_values,
)
from vigil.store.records import RulePlan

MAX_EVENTS = 10_000
DEFAULT_MAX_RULES = 1000
DELETED_NOTE = "rule deleted"
_INSERT_BATCH = 500


class RulesAndEvents(StoreBase):
    async def list_rules(self) -> list[Rule]:
        async with self._read("reading rules") as connection:
            rows = (
                await connection.execute(select(models.rules).order_by(models.rules.c.name))
            ).all()
        return [rule_from_row(row) for row in rows]

    async def get_rule(self, name: str) -> Rule:
        async with self._read("reading a rule") as connection:
            row = (
                await connection.execute(select(models.rules).where(models.rules.c.name == name))
            ).first()
        if row is None:
            raise NotFoundError("rule", name)
        return rule_from_row(row)

    async def add_rule(
        self, rule: Rule, *, by: str | None, now: datetime, max_rules: int = DEFAULT_MAX_RULES
    ) -> tuple[Rule, Event]:
        """A new rule. ``NameTakenError`` if its name is in use; ``ValidationError`` (field
        ``name``) beyond ``max_rules``."""
        check_time("now", now)
        added = rule.updated({}, by=by, at=now)
        async with self._write("adding a rule") as connection:
            table = models.rules
            exists = await connection.scalar(select(table.c.name).where(table.c.name == rule.name))
            if exists is not None:
                raise NameTakenError("rule", rule.name)
            count = int(await connection.scalar(select(func.count()).select_from(table)) or 0)
            check_room(count + 1, max_rules)
            await connection.execute(table.insert().values(rule_values(added)))
            [event] = await self._append_events(connection, [created_event(added, by=by, now=now)])
        return added, event

    async def replace_rule(
        self, name: str, rule: Rule, *, by: str | None, now: datetime
    ) -> tuple[Rule, Event]:
        """Replace every field of the rule ``name`` (PUT): ``rule`` must carry that name."""
        check_time("now", now)
        if rule.name != name:
            raise ValidationError("name", f"must be {name!r}, the rule being replaced")
        replaced = rule.updated({}, by=by, at=now)
        async with self._write("replacing a rule") as connection:
            before = await self._locked_rule(connection, name)
            await self._save_rule(connection, replaced)
            [event] = await self._append_events(
                connection, [changed_event(before, replaced, by=by, now=now)]
            )
        return replaced, event

    async def update_rule(
        self, name: str, changes: Mapping[str, Any], *, by: str | None, now: datetime
    ) -> tuple[Rule, Event]:
        """Apply ``changes`` (validated by the core: a key with ``None`` clears that field,
        a key left out keeps it) and record a ``rule.changed`` event, in one transaction."""
        check_time("now", now)
        async with self._write("updating a rule") as connection:
            before = await self._locked_rule(connection, name)
            updated = before.updated(changes, by=by, at=now)
            await self._save_rule(connection, updated)
            [event] = await self._append_events(
                connection, [changed_event(before, updated, by=by, now=now)]
            )
        return updated, event

    async def delete_rule(self, name: str, *, by: str, now: datetime) -> list[Event]:
        """Delete a rule; its open incidents are resolved (manual, by ``by``, note "rule
        deleted") in the same transaction. Its incidents and events stay in the history.
        Returns the events: each resolution, then ``rule.deleted``."""
        check_name("by", by)
        check_time("now", now)
        async with self._write("deleting a rule") as connection:
            rule = await self._locked_rule(connection, name)
            events = await self._delete_rules(connection, [rule], by=by, now=now)
            return await self._append_events(connection, events)

    async def apply_rules(
        self,
        rules: Sequence[Rule],
        *,
        by: str | None,
        now: datetime,
        prune: bool = False,
        dry_run: bool = False,
        max_rules: int = DEFAULT_MAX_RULES,
    ) -> RulePlan:
        """Make the stored rules match ``rules``: add the new, change the different, leave the
        same (``prune``: delete the others), in one transaction; ``dry_run`` only plans."""
        check_time("now", now)
        if prune:
            check_name("by", by)
        async with self._write("applying rules") as connection:
            rows = (await connection.execute(select(models.rules).with_for_update())).all()
            current = {rule.name: rule for rule in map(rule_from_row, rows)}
            plan = plan_rules(current, rules, by=by, now=now, prune=prune, max_rules=max_rules)
            if dry_run:
                return plan
            table = models.rules
            added = [rule_values(rule) for rule in plan.added]
            for start in range(0, len(added), _INSERT_BATCH):
                await connection.execute(table.insert(), added[start : start + _INSERT_BATCH])
            for rule, _ in plan.changed:
                await self._save_rule(connection, rule)
            events: list[Event] = []
            if plan.removed:
                gone = [current[name] for name in plan.removed]
                assert by is not None
                events = await self._delete_rules(connection, gone, by=by, now=now)
            events += [created_event(rule, by=by, now=now) for rule in plan.added]
            events += [
                changed_event(current[rule.name], rule, by=by, now=now) for rule, _ in plan.changed
            ]
            stored = await self._append_events(connection, events)
        return RulePlan(plan.added, plan.changed, plan.removed, plan.unchanged, stored)

    async def append_events(self, items: Sequence[Event]) -> list[Event]:
        """Append events that change no row here (leader changed, snooze started...)."""
        for item in items:
            check_time("at", item.at)
        async with self._write("appending events") as connection:
            return await self._append_events(connection, items)

    async def events_after(self, last_id: int, *, limit: int = 500) -> list[Event]:
        """Events with an id above ``last_id``, in id order: what a reconnecting client missed,
        and what every process catching up with the log reads (the monitor before each cycle
        that writes, when another process, or its own previous cycle, appended). On a SQLite
        file it reads on the store's reader: one hand-off to the driver's thread, where the
        pool's read takes three (its begin, the query, its rollback)."""
        check_int("last_id", last_id, 0, 2**63 - 1)
        check_int("limit", limit, 1, MAX_EVENTS)
        if self._database is not None:
            found = await self._reader_fetch("reading events", _EVENTS_SQLITE, (last_id, limit))
            return [event_from(ident, json.loads(payload)) for ident, payload in found]
        table = models.events
        statement = select(table).where(table.c.id > last_id).order_by(table.c.id).limit(limit)
        async with self._read("reading events") as connection:
            rows = (await connection.execute(statement)).all()
        return [event_from_row(row) for row in rows]

    async def rule_events(self, name: str, *, limit: int = 200) -> list[Event]:
        """A rule's history, newest first: its changes and its incidents' events."""
        check_int("limit", limit, 1, MAX_EVENTS)
        table = models.events
        statement = (
            select(table).where(table.c.rule == name).order_by(table.c.id.desc()).limit(limit)
        )
        async with self._read("reading a rule's events") as connection:
            rows = (await connection.execute(statement)).all()
        return [event_from_row(row) for row in rows]

    async def last_event_id(self) -> int:
        """The newest event's id; 0 for an empty log."""
        async with self._read("reading the last event id") as connection:
            value = await connection.scalar(select(func.max(models.events.c.id)))
        return int(value or 0)

    # -- the statements -----------------------------------------------------------------------

    async def _locked_rule(self, connection: AsyncConnection, name: str) -> Rule:
        table = models.rules
        row = (
            await connection.execute(select(table).where(table.c.name == name).with_for_update())
        ).first()
        if row is None:
            raise NotFoundError("rule", name)
        return rule_from_row(row)

    async def _save_rule(self, connection: AsyncConnection, rule: Rule) -> None:
        table = models.rules
        values = rule_values(rule)
        del values["name"]
        await connection.execute(update(table).where(table.c.name == rule.name).values(values))

    async def _delete_rules(
        self, connection: AsyncConnection, rules: Sequence[Rule], *, by: str, now: datetime
    ) -> list[Event]:
        """Resolve the rules' open incidents and delete the rules (their streaks and snoozes
        go with them); the events to append."""
        names = sorted(rule.name for rule in rules)
        table = models.incidents
        rows = (
            await connection.execute(
                select(table)
                .where(table.c.rule.in_(names), models.OPEN_PREDICATE)
                .order_by(table.c.id)
                .with_for_update()
            )
        ).all()
        resolved = resolve_deleted(map(incident_from_row, rows), by=by, now=now)
        for incident, _ in resolved:
            values = incident_values(incident)
            del values["id"]
            await connection.execute(update(table).where(table.c.id == incident.id).values(values))
        await connection.execute(delete(models.rules).where(models.rules.c.name.in_(names)))
        events = [event for _, event in resolved]
        events += [deleted_event(rule, by=by, now=now) for rule in rules]
        return events


# -- what a change means: shared with MemoryStore ------------------------------------------------


def check_room(count: int, max_rules: int) -> None:
    if count > max_rules:
        raise ValidationError(
            "name", f"at most {max_rules} rules (VIGIL_MAX_RULES); delete one first"
        )


def created_event(rule: Rule, *, by: str | None, now: datetime) -> Event:
    return Event(
        kind=EventKind.RULE_CREATED,
        at=now,
        metric=rule.metric or None,
        rule=rule.name,
        by=by,
        data={"rule": rule.to_dict()},
    )


def changed_event(before: Rule, after: Rule, *, by: str | None, now: datetime) -> Event:
    """``rule.changed`` with ``changes``: ``{field: [old, new]}`` of every field changed."""
    return Event(
        kind=EventKind.RULE_CHANGED,
        at=now,
        metric=after.metric or None,
        rule=after.name,
        by=by,
        data={"changes": after.changes_from(before), "rule": after.to_dict()},
    )


def deleted_event(rule: Rule, *, by: str | None, now: datetime) -> Event:
    return Event(
        kind=EventKind.RULE_DELETED,
        at=now,
        metric=rule.metric or None,
        rule=rule.name,
        by=by,
        data={"rule": rule.to_dict()},
    )


def resolve_deleted(
    incidents: Iterable[Incident], *, by: str, now: datetime
) -> list[tuple[Incident, Event]]:
    """A deleted rule's open incidents, resolved by the deleter."""
    return [resolve(incident, by=by, now=now, notes=DELETED_NOTE) for incident in incidents]


def plan_rules(
    current: Mapping[str, Rule],
    wanted: Sequence[Rule],
    *,
    by: str | None,
    now: datetime,
    prune: bool,
    max_rules: int,
) -> RulePlan:
    """What ``apply_rules`` does: rules stamped ``by``/``now`` where they change."""
    seen: set[str] = set()
    added: list[Rule] = []
    changed: list[tuple[Rule, dict[str, list[Any]]]] = []
    unchanged: list[str] = []
    for rule in wanted:
        if rule.name in seen:
            raise ValidationError("name", f"rule {rule.name!r} appears twice")
        seen.add(rule.name)
        before = current.get(rule.name)
        if before is None:
            added.append(rule.updated({}, by=by, at=now))
            continue
        changes = rule.changes_from(before)
        if changes:
            changed.append((rule.updated({}, by=by, at=now), changes))
        else:
            unchanged.append(rule.name)
    removed = sorted(set(current) - seen) if prune else []
    check_room(len(current) + len(added) - len(removed), max_rules)
    return RulePlan(added, changed, removed, unchanged, [])


# ``events_after`` in SQLite's words, for the store's reader connection: what
# ``event_from_row`` takes (the payload, stored as JSON text, holds the rest).
_EVENTS_SQLITE = "SELECT id, payload FROM events WHERE id > ? ORDER BY id LIMIT ?"
