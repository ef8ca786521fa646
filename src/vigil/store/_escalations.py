"""Escalation policies: their table, and their share of writing the notification outbox.

Policies are validated by ``vigil.core.escalation.EscalationPolicy`` before anything is
written, and a rule or a severity follows at most one policy (checked in the transaction that
writes, against the others). A policy's steps must name existing channels.

An incident under a policy is told to the policy's channels by the policy alone: its opening
goes to the first step's channels (``route_escalations``, in the transaction that stores the
event), the later steps are written by the leader's dispatcher (``enqueue_escalations``) when
due, each under the notice's own key so that no step is written twice, and only while the
incident is still active. Acknowledging or resolving it cancels the steps written but not yet
sent (``_outbox.cancel_follow_ups``, in the same transaction). Its later events (escalated,
acknowledged, resolved) reach the policy channels already told of it, as their
subscriptions say. Channels outside the policy hear of it as they always have.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from vigil.core.errors import NotFoundError, ValidationError
from vigil.core.escalation import EscalationPolicy, Notice, check_unique, policy_for
from vigil.core.events import Event, EventKind
from vigil.core.validation import check_text
from vigil.notify.channels import NotifyOn
from vigil.store import models
from vigil.store._base import StoreBase, check_time, event_from_row
from vigil.store._prepared import prepared

RowMaker = Callable[..., dict[str, Any]]


class Escalations(StoreBase):
    async def add_policy(
        self, policy: EscalationPolicy | Mapping[str, Any], *, now: datetime, by: str | None = None
    ) -> EscalationPolicy:
        """A new policy; ``ValidationError`` naming the field if it is invalid, its name is
        taken, a step names an unknown channel, or a rule or severity follows another."""
        checked = (
            policy if isinstance(policy, EscalationPolicy) else EscalationPolicy.from_dict(policy)
        )
        check_time("now", now)
        _check_by(by)
        table = models.escalation_policies
        async with self._write("adding an escalation policy") as connection:
            others = await _policies(connection, lock=True)
            if any(other.name == checked.name for other in others):
                raise _name_taken(checked.name)
            await _check_fits(connection, checked, others)
            try:
                await connection.execute(
                    table.insert().values(
                        **_values(checked), created_at=now, updated_at=now, updated_by=by
                    )
                )
            except sa_exc.IntegrityError:  # added by someone else since the check
                raise _name_taken(checked.name) from None
            await self._append_events(
                connection, [_policy_event(EventKind.ESCALATION_ADDED, checked, now=now, by=by)]
            )
        return checked

    async def update_policy(
        self,
        name: str,
        changes: Mapping[str, Any],
        *,
        now: datetime,
        by: str | None = None,
    ) -> EscalationPolicy:
        """Change some fields of a policy (the rest keep theirs). The name cannot change."""
        check_time("now", now)
        _check_by(by)
        if "name" in changes and changes["name"] != name:
            raise ValidationError("name", "cannot be changed; remove the policy and add it anew")
        table = models.escalation_policies
        async with self._write("updating an escalation policy") as connection:
            policies = await _policies(connection, lock=True)
            current = next((p for p in policies if p.name == name), None)
            if current is None:
                raise NotFoundError("escalation policy", name)
            updated = EscalationPolicy.from_dict({**current.to_dict(), **changes})
            others = [p for p in policies if p.name != name]
            await _check_fits(connection, updated, others)
            await connection.execute(
                update(table)
                .where(table.c.name == name)
                .values(**_values(updated), updated_at=now, updated_by=by)
            )
            before, after = current.to_dict(), updated.to_dict()
            changed = sorted(key for key in after if after[key] != before.get(key))
            event = _policy_event(
                EventKind.ESCALATION_CHANGED, updated, now=now, by=by, changes=changed
            )
            await self._append_events(connection, [event])
        return updated

    async def get_policy(self, name: str) -> EscalationPolicy:
        table = models.escalation_policies
        async with self._read("reading an escalation policy") as connection:
            row = (await connection.execute(select(table).where(table.c.name == name))).first()
        if row is None:
            raise NotFoundError("escalation policy", name)
        return _policy(row)

    async def list_policies(self) -> list[EscalationPolicy]:
        async with self._read("reading escalation policies") as connection:
            return await _policies(connection)

    async def delete_policy(self, name: str, *, now: datetime, by: str | None = None) -> None:
        """Remove a policy: its incidents are notified as channels say from now on."""
        check_time("now", now)
        _check_by(by)
        table = models.escalation_policies
        async with self._write("removing an escalation policy") as connection:
            row = (await connection.execute(select(table).where(table.c.name == name))).first()
            if row is None:
                raise NotFoundError("escalation policy", name)
            await connection.execute(delete(table).where(table.c.name == name))
            await self._append_events(
                connection,
                [_policy_event(EventKind.ESCALATION_REMOVED, _policy(row), now=now, by=by)],
            )

    async def enqueue_escalations(self, notices: Sequence[Notice], *, now: datetime) -> int:
        """Write an outbox row for each due step notice not written before (its key decides):
        the notice tells of the incident's opening, as a follow-up numbered ``ordinal``.
        A notice of an incident no longer active is not written, whatever the caller's
        (possibly stale) view said. Returns how many rows were new."""
        check_time("now", now)
        if not notices:
            return 0
        # Here: _outbox imports this module.
        from vigil.store._outbox import _row, still_active

        outbox, events = models.outbox, models.events

        async def write(connection: AsyncConnection) -> int:
            written = 0
            active = await still_active(connection, {notice.incident_id for notice in notices})
            openings: dict[uuid.UUID, Event | None] = {}
            for notice in notices:
                if notice.incident_id not in active:
                    continue  # acknowledged or resolved: the escalation has stopped
                if notice.incident_id not in openings:
                    row = (
                        await connection.execute(
                            select(events)
                            .where(
                                events.c.incident_id == notice.incident_id,
                                events.c.kind == EventKind.INCIDENT_OPENED.value,
                            )
                            .order_by(events.c.id)
                            .limit(1)
                        )
                    ).first()
                    openings[notice.incident_id] = None if row is None else event_from_row(row)
                opening = openings[notice.incident_id]
                if opening is None:
                    continue  # the log was pruned: nothing to tell of
                values = _row(opening, notice.channel, now=now, repeat=notice.ordinal)
                values["idempotency_key"] = notice.key
                inserted = await connection.execute(
                    self._upsert(outbox)
                    .values(values)
                    .on_conflict_do_nothing(index_elements=[outbox.c.idempotency_key])
                    .returning(outbox.c.id)
                )
                written += inserted.first() is not None
            return written

        return await self._write_all("writing escalation notices", write)


def _policy_event(
    kind: EventKind,
    policy: EscalationPolicy,
    *,
    now: datetime,
    by: str | None,
    changes: Sequence[str] | None = None,
) -> Event:
    """A policy change for the event log (DESIGN: every change is logged): who, when, and the
    policy as it now is (as it was, when removed); a change lists the fields it changed."""
    data: dict[str, Any] = {"policy": policy.to_dict()}
    if changes is not None:
        data["changes"] = list(changes)
    return Event(kind=kind, at=now, by=by, data=data)


async def escalation_rows(
    connection: AsyncConnection,
    events: Sequence[Event],
    rows: list[dict[str, Any]],
    *,
    enabled: Sequence[str],
    digests: Collection[str],
    make_row: RowMaker,
) -> list[dict[str, Any]]:
    """The outbox rows of ``events`` (as channels' subscriptions chose them), without those
    of digest channels (``digests``: they hear of events in their digest only), and changed
    for the incidents under a policy: policy channels hear of the opening when the first step
    names them (whatever they subscribe to), and of later events once their step was
    reached. ``enabled``: the enabled channels, digest ones included."""
    if digests:
        rows = [row for row in rows if row["channel"] not in digests]
        enabled = [name for name in enabled if name not in digests]
    policies = await _policies(connection)
    if not policies:
        return rows
    governed: dict[int, EscalationPolicy] = {}
    for event in events:
        assert event.incident is not None and event.id is not None
        policy = policy_for(event.incident, policies)
        if policy is not None:
            governed[event.id] = policy
    if not governed:
        return rows
    kept = []
    for row in rows:
        policy = governed.get(row["event_id"])
        if policy is None or row["channel"] not in policy.channels:
            kept.append(row)
    for event in events:
        assert event.incident is not None and event.id is not None
        policy = governed.get(event.id)
        if policy is None:
            continue
        incident = event.incident
        if NotifyOn.of(event.kind) is NotifyOn.OPENED:
            told = set(policy.steps[0].channels)
        else:  # the reached channels that asked for this kind of event (rows kept above)
            reached = policy.reached(triggered_at=incident.triggered_at, at=event.at)
            told = {
                row["channel"]
                for row in rows
                if row["event_id"] == event.id and row["channel"] in reached
            }
        kept += [
            make_row(event, channel, now=event.at) for channel in sorted(told) if channel in enabled
        ]
    return kept


async def _policies(connection: AsyncConnection, *, lock: bool = False) -> list[EscalationPolicy]:
    statement = _POLICIES_LOCKED if lock else _POLICIES
    return [_policy(row) for row in (await connection.execute(statement)).all()]


# Every policy, by name: read by every cycle that notifies (``_prepared``).
_POLICIES = prepared(select(models.escalation_policies).order_by(models.escalation_policies.c.name))
_POLICIES_LOCKED = _POLICIES.with_for_update()


async def _check_fits(
    connection: AsyncConnection, policy: EscalationPolicy, others: Sequence[EscalationPolicy]
) -> None:
    table = models.channels
    known = set((await connection.scalars(select(table.c.name))).all())
    for n, step in enumerate(policy.steps):
        for m, channel in enumerate(step.channels):
            if channel not in known:
                raise ValidationError(
                    f"steps[{n}].channels[{m}]", f"there is no channel named {channel!r}"
                )
    check_unique([*others, policy])


def _check_by(by: str | None) -> None:
    if by is not None:
        check_text("by", by, max_length=200)


def _name_taken(name: str) -> ValidationError:
    return ValidationError("name", f"an escalation policy named {name!r} already exists")


def _values(policy: EscalationPolicy) -> dict[str, Any]:
    data = policy.to_dict()
    return {
        "name": policy.name,
        "description": policy.description,
        "steps": data["steps"],
        "repeat_minutes": policy.repeat_minutes,
        "rules": data["rules"],
        "severities": data["severities"],
    }


def _policy(row: Row[Any]) -> EscalationPolicy:
    return EscalationPolicy.from_dict(
        {
            "name": row.name,
            "description": row.description,
            "steps": row.steps,
            "repeat_minutes": row.repeat_minutes,
            "rules": row.rules,
            "severities": row.severities,
        }
    )
