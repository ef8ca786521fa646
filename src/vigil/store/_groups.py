"""Incident groups in the database: who joins which group, the groups as people see them,
acknowledging a group, and which outbox rows a group's messages need.

Assignment runs inside the cycle's transaction (``IncidentChanges.commit_cycle`` calls
``_assign_groups`` before it inserts the incidents), so an incident and its group commit
together. A group's status is its members', read when asked for.

Notifications (``_group_rows``, called by ``Outbox._enqueue_notifications`` in the very
transaction that stores the events), per group and channel, like Alertmanager's grouping:

- the first member's opening is sent at once; members that open before its first attempt
  (the same cycle, or while it waits for its time) are in that one message, written when it
  is sent; what happens once an attempt began has a message of its own;
- a member that joins after it was sent brings one follow-up message with the whole group,
  no sooner than the group's window after the group's last message (``group_interval``);
  members joining meanwhile wait in that same follow-up;
- a member's resolution is not sent while other members are open; the last one's is, as
  "all resolved";
- acknowledging the group sends one message, not one per member;
- escalations and one member's own acknowledgement stay the member's own messages.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vigil.core.errors import NotFoundError, ValidationError
from vigil.core.events import Event, EventKind
from vigil.core.grouping import (
    GroupSummary,
    OpenGroup,
    acknowledge_group,
    assign,
    summarize,
)
from vigil.core.incidents import Incident, Status
from vigil.store import models
from vigil.store._base import StoreBase, check_int, check_time, incident_from_row
from vigil.store._prepared import prepared
from vigil.store.records import OutboxStatus

MAX_GROUPS = 200


class IncidentGroups(StoreBase):
    async def _assign_groups(
        self,
        connection: AsyncConnection,
        opened: Sequence[Incident],
        *,
        window: timedelta,
        labels: Mapping[str, str] | None = None,
    ) -> tuple[dict[uuid.UUID, uuid.UUID], dict[uuid.UUID, timedelta]]:
        """Put each incident of ``opened`` in a group (writing new groups and the latest
        member time of joined ones); returns incident id -> group id, and the groups created
        (with their window). Nothing when ``window`` is zero (grouping off)."""
        if not opened or window <= timedelta(0):
            return {}, {}
        earliest = min(incident.triggered_at for incident in opened)
        wanted = sorted({labels[i.rule] for i in opened if labels and i.rule in labels})
        parameters: dict[str, Any] = {"since": earliest - window}
        if wanted:
            parameters["labels"] = wanted
        joinable = _JOINABLE_OR_LABELLED if wanted else _JOINABLE
        rows = (await connection.execute(joinable, parameters)).all()
        outcome = assign(
            opened,
            [
                OpenGroup(
                    id=row.id,
                    opened_at=row.opened_at,
                    last_opened_at=row.last_opened_at,
                    label=row.label,
                )
                for row in rows
            ],
            window=window,
            labels=labels,
        )
        if outcome.created:
            await connection.execute(
                _NEW_GROUPS,
                [
                    {
                        "id": group.id,
                        "opened_at": group.opened_at,
                        "last_opened_at": group.last_opened_at,
                        "label": group.label,
                        "window_s": window.total_seconds(),
                    }
                    for group in outcome.created
                ],
            )
        for group in outcome.updated:
            await connection.execute(
                _JOINED, {"ident": group.id, "new_last_opened_at": group.last_opened_at}
            )
        return outcome.members, {group.id: window for group in outcome.created}

    async def list_groups(
        self, *, status: Status | str | None = None, limit: int = 50, min_size: int = 1
    ) -> list[GroupSummary]:
        """Groups with their members, newest first. ``status`` ``open`` (any member open),
        or one of a group's statuses: ``active``, ``acknowledged``, ``resolved``."""
        check_int("limit", limit, 1, MAX_GROUPS)
        check_int("min_size", min_size, 1, 1000)
        wanted = _check_status(status)
        groups, incidents = models.incident_groups, models.incidents
        statement = select(groups).order_by(groups.c.opened_at.desc(), groups.c.id.desc())
        members = select(func.count()).where(incidents.c.group_id == groups.c.id)
        if min_size > 1:
            statement = statement.where(members.scalar_subquery() >= min_size)
        is_open = exists().where(incidents.c.group_id == groups.c.id, models.OPEN_PREDICATE)
        if wanted == "resolved":
            statement = statement.where(~is_open)
        elif wanted is not None:
            statement = statement.where(is_open)
        # Active/acknowledged are told apart from the members; read a little more to fill.
        statement = statement.limit(limit if wanted in (None, "open", "resolved") else 4 * limit)
        async with self._read("reading incident groups") as connection:
            rows = (await connection.execute(statement)).all()
            summaries = await _summaries(connection, rows)
        if wanted in ("active", "acknowledged"):
            summaries = [s for s in summaries if s.status.value == wanted]
        return summaries[:limit]

    async def get_group(self, group_id: uuid.UUID | str) -> GroupSummary:
        ident = _parse_group_id(group_id)
        groups = models.incident_groups
        async with self._read("reading an incident group") as connection:
            rows = (await connection.execute(select(groups).where(groups.c.id == ident))).all()
            found = await _summaries(connection, rows)
        if not found:
            raise NotFoundError("incident group", ident)
        return found[0]

    async def acknowledge_group(
        self, group_id: uuid.UUID | str, *, by: str, now: datetime, notes: str | None = None
    ) -> list[tuple[Incident, Event]]:
        """Acknowledge the group's active members in one transaction (one message tells of
        it). ``IllegalTransitionError`` when none is active; nothing changes then."""
        ident = _parse_group_id(group_id)
        check_time("now", now)
        groups, incidents = models.incident_groups, models.incidents

        async def write(connection: AsyncConnection) -> list[tuple[Incident, Event]]:
            row = (await connection.execute(select(groups).where(groups.c.id == ident))).first()
            if row is None:
                raise NotFoundError("incident group", ident)
            members = (
                await connection.execute(
                    select(incidents)
                    .where(incidents.c.group_id == ident)
                    .order_by(incidents.c.id)
                    .with_for_update()
                )
            ).all()
            summary = summarize(
                ident,
                [incident_from_row(m) for m in members],
                label=row.label,
                opened_at=row.opened_at,
            )
            changes = acknowledge_group(summary, by=by, now=now, notes=notes)
            for updated, _ in changes:
                await connection.execute(
                    update(incidents)
                    .where(incidents.c.id == updated.id)
                    .values(
                        status=updated.status,
                        acknowledged_by=updated.acknowledged_by,
                        acknowledged_at=updated.acknowledged_at,
                        notes=updated.notes,
                    )
                )
            stored = await self._append_events(connection, [event for _, event in changes])
            return [(updated, event) for (updated, _), event in zip(changes, stored, strict=True)]

        return await self._write_all("acknowledging an incident group", write)

    async def _group_rows(
        self,
        connection: AsyncConnection,
        events: Sequence[Event],
        rows: list[dict[str, Any]],
        *,
        new_groups: Mapping[uuid.UUID, timedelta] | None = None,
    ) -> list[dict[str, Any]]:
        """The outbox rows to write for ``rows`` (one per event and channel) once groups are
        taken into account; see the module's docstring. ``new_groups``: groups this
        transaction created (with their window), which have no outbox rows yet and only the
        members it opened: nothing to read about them."""
        by_id = {event.id: event for event in events}
        group_ids = {
            incident.group
            for event in events
            if (incident := event.incident) is not None and incident.group is not None
        }
        if not group_ids or not rows:
            return rows
        created = {g: window for g, window in (new_groups or {}).items() if g in group_ids}
        open_now = {
            group: sum(
                1
                for event in events
                if (incident := event.incident) is not None
                and incident.group == group
                and incident.is_open
            )
            for group in created
        }
        ids = sorted(group_ids - set(created))
        if not ids:
            return grouped_rows(
                rows, by_id, pending=(), last_at={}, open_left=open_now, windows=created
            )
        among = {"groups": ids}
        pending = {tuple(row) for row in await connection.execute(_WAITING, among)}
        last_at = {(row[0], row[1]): row[2] for row in await connection.execute(_LAST_AT, among)}
        open_left = {row[0]: int(row[1]) for row in await connection.execute(_OPEN_LEFT, among)}
        windows = {
            row[0]: timedelta(seconds=float(row[1]))
            for row in await connection.execute(_WINDOWS, among)
        }
        return grouped_rows(
            rows,
            by_id,
            pending=pending,
            last_at=last_at,
            open_left={**open_left, **open_now},
            windows={**windows, **created},
        )


def grouped_rows(
    rows: Sequence[dict[str, Any]],
    events: Mapping[int | None, Event],
    *,
    pending: Collection[tuple[uuid.UUID, str]],
    last_at: Mapping[tuple[uuid.UUID, str], datetime],
    open_left: Mapping[uuid.UUID, int],
    windows: Mapping[uuid.UUID, timedelta],
) -> list[dict[str, Any]]:
    """The rows to write, each a group's message or not (shared with ``MemoryStore``).

    ``pending`` holds the (group, channel) pairs whose message is written when it is sent: not
    yet attempted. A message whose attempt has begun was written already, so what happens
    meanwhile needs a message of its own (at worst told twice, never lost)."""
    waiting = set(pending)
    out: list[dict[str, Any]] = []
    for row in rows:
        event = events[row["event_id"]]
        incident = event.incident
        group = incident.group if incident is not None else None
        if group is None or group not in windows:
            out.append({**row, "group_id": None})
            continue
        key = (group, str(row["channel"]))
        kind = event.kind
        if kind is EventKind.INCIDENT_OPENED:
            if key in waiting:
                continue  # the message waiting to be sent will list this member too
            due = event.at
            previous = last_at.get(key)
            if previous is not None:
                due = max(due, previous + windows[group])
        elif kind is EventKind.INCIDENT_RESOLVED:
            if open_left.get(group, 0) > 0:
                continue  # told when the last member resolves
            if key in waiting:
                continue  # the message waiting is written when sent: it will say resolved
            due = event.at
        elif kind is EventKind.INCIDENT_ACKNOWLEDGED and event.data.get("group") == str(group):
            if key in waiting:
                continue  # one message for the group's acknowledgement
            due = event.at
        else:
            out.append({**row, "group_id": None})
            continue
        waiting.add(key)
        out.append({**row, "group_id": group, "next_attempt_at": due})
    return out


async def group_summaries(
    connection: AsyncConnection, group_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, GroupSummary]:
    """The groups named, with their members (for the messages being sent)."""
    if not group_ids:
        return {}
    rows = (await connection.execute(_GROUPS_NAMED, {"ids": sorted(group_ids)})).all()
    return {summary.id: summary for summary in await _summaries(connection, rows)}


async def _summaries(connection: AsyncConnection, rows: Sequence[Any]) -> list[GroupSummary]:
    if not rows:
        return []
    members: dict[uuid.UUID, list[Incident]] = defaultdict(list)
    ids = [row.id for row in rows]
    for start in range(0, len(ids), 500):
        for member in await connection.execute(_MEMBERS, {"groups": ids[start : start + 500]}):
            members[member.group_id].append(incident_from_row(member))
    return [
        summarize(row.id, members[row.id], label=row.label, opened_at=row.opened_at)
        for row in rows
        if members.get(row.id)  # members deleted by retention: nothing left to show
    ]


_STATUSES = ("open", "active", "acknowledged", "resolved")

# The statements every cycle that opens an incident runs, built once (building one cost more
# than running it): the groups it may join (one open member at least, and its last member
# opened ``since`` or later, or its label among ``labels``), locked; a joined group's latest
# member time; groups by ``ids``, and the members of ``groups``.
_GROUPS = models.incident_groups
_HAS_OPEN_MEMBER = exists().where(
    models.incidents.c.group_id == _GROUPS.c.id, models.OPEN_PREDICATE
)
_NEAR = _GROUPS.c.last_opened_at >= bindparam("since")
_JOINABLE = select(_GROUPS).where(_NEAR, _HAS_OPEN_MEMBER).order_by(_GROUPS.c.id).with_for_update()
_JOINABLE_OR_LABELLED = (
    select(_GROUPS)
    .where(or_(_NEAR, _GROUPS.c.label.in_(bindparam("labels", expanding=True))), _HAS_OPEN_MEMBER)
    .order_by(_GROUPS.c.id)
    .with_for_update()
)
_JOINED = (
    update(_GROUPS)
    .where(_GROUPS.c.id == bindparam("ident"))
    .values(last_opened_at=bindparam("new_last_opened_at", type_=_GROUPS.c.last_opened_at.type))
)
# Of the groups ``groups``, for their outbox rows (``_group_rows``): the (group, channel) whose
# message waits, not yet attempted; when each last had one; their members still open; windows.
_OUTBOX = models.outbox
_OF_GROUPS: Any = bindparam("groups", expanding=True)
_WAITING = select(_OUTBOX.c.group_id, _OUTBOX.c.channel).where(
    _OUTBOX.c.group_id.in_(_OF_GROUPS),
    _OUTBOX.c.status == OutboxStatus.PENDING,
    _OUTBOX.c.attempts == 0,
)
_LAST_AT = (
    select(_OUTBOX.c.group_id, _OUTBOX.c.channel, func.max(_OUTBOX.c.created_at))
    .where(_OUTBOX.c.group_id.in_(_OF_GROUPS))
    .group_by(_OUTBOX.c.group_id, _OUTBOX.c.channel)
)
_OPEN_LEFT = (
    select(models.incidents.c.group_id, func.count())
    .where(models.incidents.c.group_id.in_(_OF_GROUPS), models.OPEN_PREDICATE)
    .group_by(models.incidents.c.group_id)
)
_WINDOWS = select(_GROUPS.c.id, _GROUPS.c.window_s).where(_GROUPS.c.id.in_(_OF_GROUPS))
_GROUPS_NAMED = select(_GROUPS).where(_GROUPS.c.id.in_(bindparam("ids", expanding=True)))
_MEMBERS = select(models.incidents).where(
    models.incidents.c.group_id.in_(bindparam("groups", expanding=True))
)
_NEW_GROUPS = _GROUPS.insert()
for _statement in (
    _NEW_GROUPS,
    _JOINABLE,
    _JOINABLE_OR_LABELLED,
    _JOINED,
    _WAITING,
    _LAST_AT,
    _OPEN_LEFT,
    _WINDOWS,
    _GROUPS_NAMED,
    _MEMBERS,
):
    prepared(_statement)  # run by the cycles that open or resolve incidents (``_prepared``)


def _check_status(status: Status | str | None) -> str | None:
    if status is None:
        return None
    value = str(status)
    if value not in _STATUSES:
        raise ValidationError("status", f"must be one of {', '.join(_STATUSES)}, got {value!r}")
    return value


def _parse_group_id(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFoundError("incident group", value) from None
