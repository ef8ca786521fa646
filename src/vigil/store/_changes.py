"""Writes that change incidents: the evaluation cycle and the people's actions.

Each method is one transaction: the incident rows, the daily counts and the events commit
together or not at all (the transactional outbox DESIGN section 1 asks for).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, tuple_, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from vigil.core.errors import (
    DuplicateIncidentError,
    IllegalTransitionError,
    NotFoundError,
)
from vigil.core.evaluation import IDLE, CycleResult, RuleState, series_key, split_key
from vigil.core.events import Event, EventKind
from vigil.core.incidents import Incident, Severity, Status, acknowledge, resolve
from vigil.core.samples import Sample
from vigil.store import models
from vigil.store._base import (
    check_name,
    check_time,
    incident_from_row,
    incident_values,
    parse_incident_id,
)
from vigil.store._groups import IncidentGroups
from vigil.store._prepared import prepared
from vigil.store.records import Claim, Delivery

# What the evaluator owns on an open incident. Acknowledgement and notes belong to people and
# may have changed on another instance since the evaluator last saw the incident.
EVALUATOR_FIELDS = (
    "severity",
    "threshold",
    "message",
    "peak_value",
    "last_value",
    "no_data",
    "flapping",
)
RESOLUTION_FIELDS = ("status", "resolved_at", "resolution", "resolved_by")


_CHECK_BATCH = 5000  # ids per IN (...) check, well under SQLite's and asyncpg's limits


def _evaluated(fields: Sequence[str]) -> Any:
    """``fields`` of one incident not resolved meanwhile, by the id ``ident``; each new value
    bound as ``new_<field>``. Built once: building a statement cost more than running it."""
    table = models.incidents
    return (
        update(table)
        .where(table.c.id == bindparam("ident"), table.c.status != Status.RESOLVED)
        .values({name: bindparam(f"new_{name}", type_=table.c[name].type) for name in fields})
    )


# The evaluator's fields of one open incident, executed for many (``_apply_observations``).
_OBSERVE = _evaluated(EVALUATOR_FIELDS)
# What a cycle changed on one stored incident (``_apply_evaluation``): open, and resolved.
_EVALUATE = _evaluated(EVALUATOR_FIELDS).returning(*models.incidents.c)
_EVALUATE_RESOLVED = _evaluated(EVALUATOR_FIELDS + RESOLUTION_FIELDS).returning(*models.incidents.c)
_INSERT_INCIDENT = models.incidents.insert()
_RULES_NAMED = select(models.rules.c.name).where(
    models.rules.c.name.in_(bindparam("names", expanding=True))
)
for _statement in (_OBSERVE, _EVALUATE, _EVALUATE_RESOLVED, _INSERT_INCIDENT, _RULES_NAMED):
    prepared(_statement)  # run by every cycle that writes (``_prepared``)


def _day(incident: Incident) -> date:
    return incident.triggered_at.astimezone(UTC).date()


class IncidentChanges(IncidentGroups):
    async def load_states(self) -> dict[str, RuleState]:
        """Every rule's persisted streaks and open incident: what a restarted monitor resumes."""
        table = models.rule_states
        async with self._read("loading rule states") as connection:
            streaks = (await connection.execute(select(table))).all()
            open_rows = (
                await connection.execute(select(models.incidents).where(models.OPEN_PREDICATE))
            ).all()
        return resume_states(
            (
                (
                    series_key(r.rule, r.series),
                    r.breach_streak,
                    r.normal_streak,
                    r.critical_streak,
                    r.flap_history,
                    bool(r.flapping),
                )
                for r in streaks
            ),
            (incident_from_row(row) for row in open_rows),
        )

    async def commit_cycle(
        self,
        *,
        samples: Sequence[Sample],
        result: CycleResult,
        now: datetime,
        group_window: timedelta = timedelta(0),
        group_labels: Mapping[str, str] | None = None,
        claim: Claim | None = None,
    ) -> list[Event]:
        """Write one evaluation cycle in one transaction: its samples, the rule states that
        changed, the incidents it opened, escalated, updated or resolved, and its events
        (with their notifications, claimed in that same transaction for ``claim``'s
        dispatcher when given: see ``Claim``).

        Returns the events with their ids. ``DuplicateIncidentError`` if a rule already has an
        open incident (two leaders, or a bug); ``IllegalTransitionError`` if an incident this
        cycle updates was resolved elsewhere meanwhile (reload the states and carry on).
        Either way nothing of the cycle is written.

        The incidents it opens join incident groups (``vigil.core.grouping``) within
        ``group_window`` (zero: no grouping), or by their rule's label in ``group_labels``.
        """
        check_time("now", now)
        if not samples and not result.changed and not result.events:
            return []  # nothing changed: no write transaction at all
        opened: dict[uuid.UUID, Incident] = {}
        latest: dict[uuid.UUID, Incident] = {}
        counts: Counter[tuple[date, Severity]] = Counter()
        for item in result.events:
            if item.incident is None:
                continue
            latest[item.incident.id] = item.incident
            if item.kind is EventKind.INCIDENT_OPENED:
                opened[item.incident.id] = item.incident
            elif item.kind is EventKind.INCIDENT_ESCALATED:
                before = Severity(str(item.data.get("from", Severity.WARNING)))
                counts[_day(item.incident), before] -= 1
                counts[_day(item.incident), item.incident.severity] += 1
        with_events = set(latest)
        # An open incident the cycle did not change (only its series' streaks moved) is not
        # written again; one changed without an event (a new last or peak value) is written
        # with the others in one statement.
        quiet: dict[uuid.UUID, Incident] = {}
        for key, state in result.changed.items():
            incident = state.incident
            if incident is None or incident.id in with_events:
                continue
            was = result.previous.get(key)
            if was is None or was.incident != incident:
                quiet[incident.id] = incident
        for ident in opened:
            counts[_day(latest[ident]), latest[ident].severity] += 1

        # Made here, on the event loop: a large cycle's rows leave it a turn now and then,
        # which the transaction (run in the driver's thread) cannot.
        rows = await self._sample_rows(samples) if samples else []

        async def write(connection: AsyncConnection) -> tuple[list[Event], list[Delivery]]:
            if rows:
                await self._store_sample_rows(connection, rows)
            if result.changed:
                await self._save_streaks(connection, result, now)
            stored: dict[uuid.UUID, Incident] = {}
            joined, new_groups = await self._assign_groups(
                connection,
                [latest[ident] for ident in sorted(opened)],
                window=group_window,
                labels=group_labels,
            )
            for ident, group in joined.items():
                latest[ident] = dataclasses.replace(latest[ident], group=group)
            for ident in sorted(opened):
                stored[ident] = await self._insert_incident(connection, latest[ident])
            # Sorted ids: the same lock order as acknowledge_all, so the two cannot deadlock.
            for ident in sorted(set(latest) - set(opened)):
                stored[ident] = await self._apply_evaluation(connection, latest[ident])
            if quiet:
                await self._apply_observations(connection, quiet)
            await self._count(connection, counts)
            events = await self._append_events(
                connection,
                [
                    item
                    if item.incident is None
                    else _replace_incident(item, stored[item.incident.id])
                    for item in result.events
                ],
                new_groups=new_groups,
                claim=claim,
            )
            claimed = (
                await self._claim(
                    connection, now=now, lease=claim.lease, limit=claim.limit, among=events
                )
                if claim is not None and events
                else []
            )
            return events, claimed

        events, claimed = await self._write_all("writing a monitor cycle", write)
        if claim is not None:
            claim.deliveries.extend(claimed)  # committed: theirs to send
        return events

    async def add_samples(self, samples: Sequence[Sample]) -> None:
        """Store samples outside a cycle (push ingestion from other processes)."""
        if not samples:
            return
        rows = await self._sample_rows(samples)
        await self._write_all("storing samples", lambda c: self._store_sample_rows(c, rows))

    async def acknowledge_incident(
        self, incident_id: uuid.UUID | str, *, by: str, now: datetime, notes: str | None = None
    ) -> tuple[Incident, Event]:
        """active -> acknowledged. ``IllegalTransitionError`` otherwise; nothing changes."""
        ident = parse_incident_id(incident_id)
        check_time("now", now)

        async def write(connection: AsyncConnection) -> tuple[Incident, Event]:
            current = await self._locked_incident(connection, ident)
            updated, event = acknowledge(current, by=by, now=now, notes=notes)
            await self._save_incident(connection, updated)
            [stored] = await self._append_events(connection, [event])
            return updated, stored

        return await self._write_all("acknowledging an incident", write)

    async def acknowledge_all(
        self, *, by: str, now: datetime, notes: str | None = None
    ) -> list[tuple[Incident, Event]]:
        """Acknowledge every active incident (acknowledged ones are left as they are)."""
        check_name("by", by)
        check_time("now", now)
        table = models.incidents

        async def write(connection: AsyncConnection) -> list[tuple[Incident, Event]]:
            rows = (
                await connection.execute(
                    select(table)
                    .where(table.c.status == Status.ACTIVE)
                    .order_by(table.c.id)
                    .with_for_update()
                )
            ).all()
            changes = [
                acknowledge(incident_from_row(row), by=by, now=now, notes=notes) for row in rows
            ]
            for updated, _ in changes:
                await self._save_incident(connection, updated)
            stored = await self._append_events(connection, [event for _, event in changes])
            return [(updated, event) for (updated, _), event in zip(changes, stored, strict=True)]

        return await self._write_all("acknowledging all incidents", write)

    async def resolve_incident(
        self, incident_id: uuid.UUID | str, *, by: str, now: datetime, notes: str | None = None
    ) -> tuple[Incident, Event]:
        """Manual resolution of an open incident. ``IllegalTransitionError`` if resolved.

        Its series' streaks go with it, as the monitor's evaluator forgets them (``sync``):
        a restart must not resume the streak that opened the incident. Its flap history and
        state stay, as they do in the evaluator: resolving by hand does not calm a series."""
        ident = parse_incident_id(incident_id)
        check_name("by", by)
        check_time("now", now)

        async def write(connection: AsyncConnection) -> tuple[Incident, Event]:
            current = await self._locked_incident(connection, ident)
            updated, event = resolve(current, by=by, now=now, notes=notes)
            await self._save_incident(connection, updated)
            streaks = models.rule_states
            series = (streaks.c.rule == updated.rule, streaks.c.series == updated.series)
            await connection.execute(
                delete(streaks).where(
                    *series, streaks.c.flap_history == "", streaks.c.flapping.is_(False)
                )
            )
            await connection.execute(
                update(streaks)
                .where(*series)
                .values(breach_streak=0, normal_streak=0, critical_streak=0, updated_at=now)
            )
            [stored] = await self._append_events(connection, [event])
            return updated, stored

        return await self._write_all("resolving an incident", write)

    # -- the statements -----------------------------------------------------------------------

    def _streaks_upsert(self) -> Any:
        table = models.rule_states
        statement = self._upsert(table)
        kept = ("breach_streak", "normal_streak", "critical_streak", "flap_history", "flapping")
        return prepared(
            statement.on_conflict_do_update(
                index_elements=[table.c.rule, table.c.series],
                set_={name: statement.excluded[name] for name in (*kept, "updated_at")},
            )
        )

    async def _save_streaks(
        self, connection: AsyncConnection, result: CycleResult, now: datetime
    ) -> None:
        table = models.rule_states
        names = sorted({split_key(key)[0] for key in result.changed})
        # A rule deleted while this cycle ran has no streaks to keep.
        existing = set((await connection.scalars(_RULES_NAMED, {"names": names})).all())
        rows = []
        gone = []
        for key, state in sorted(result.changed.items()):
            rule, series = split_key(key)
            if rule not in existing:
                continue
            if series and state == IDLE:
                gone.append((rule, series))  # an idle series of a split rule: nothing to keep
                continue
            before = result.previous.get(key)
            if before is not None and _streaks(before) == _streaks(state):
                continue  # only the incident changed: the stored streaks are still right
            rows.append(
                {
                    "rule": rule,
                    "series": series,
                    "breach_streak": state.breach_streak,
                    "normal_streak": state.normal_streak,
                    "critical_streak": state.critical_streak,
                    "flap_history": state.flap_history,
                    "flapping": state.flapping,
                    "updated_at": now,
                }
            )
        if rows:
            await connection.execute(self._built("streaks upsert", self._streaks_upsert), rows)
        if gone:
            await connection.execute(
                delete(table).where(tuple_(table.c.rule, table.c.series).in_(gone))
            )

    async def _insert_incident(self, connection: AsyncConnection, incident: Incident) -> Incident:
        try:
            await connection.execute(_INSERT_INCIDENT, incident_values(incident))
        except sa_exc.IntegrityError as exc:
            if _is_open_incident_violation(exc):
                raise DuplicateIncidentError(incident.rule, incident.series) from exc
            raise
        return incident

    async def _apply_evaluation(self, connection: AsyncConnection, incident: Incident) -> Incident:
        """Write what the evaluator changed on a stored open incident; return the stored row."""
        table = models.incidents
        resolved = not incident.is_open
        fields = EVALUATOR_FIELDS + (RESOLUTION_FIELDS if resolved else ())
        values = incident_values(incident)
        row = (
            await connection.execute(
                _EVALUATE_RESOLVED if resolved else _EVALUATE,
                {"ident": incident.id, **{f"new_{name}": values[name] for name in fields}},
            )
        ).first()
        if row is not None:
            return incident_from_row(row)
        status = await connection.scalar(select(table.c.status).where(table.c.id == incident.id))
        if status is None:
            raise NotFoundError("incident", incident.id)
        raise IllegalTransitionError(incident.id, str(status), "update")

    async def _apply_observations(
        self, connection: AsyncConnection, incidents: dict[uuid.UUID, Incident]
    ) -> None:
        """Write the evaluator's fields of open incidents changed without an event, in one
        statement executed for many rows (in id order, the lock order of acknowledge_all).
        ``IllegalTransitionError`` if one was resolved (or deleted) elsewhere meanwhile."""
        table = models.incidents
        rows = []
        for ident in sorted(incidents):
            values = incident_values(incidents[ident])
            rows.append({"ident": ident, **{f"new_{n}": values[n] for n in EVALUATOR_FIELDS}})
        await connection.execute(_OBSERVE, rows)
        # Row counts of executemany differ by driver: ask which are still open instead. Each
        # row written is locked until this transaction ends, so the answer stays true.
        idents = sorted(incidents)
        still_open: set[uuid.UUID] = set()
        for start in range(0, len(idents), _CHECK_BATCH):
            chunk = idents[start : start + _CHECK_BATCH]
            still_open.update(
                (
                    await connection.scalars(
                        select(table.c.id).where(
                            table.c.id.in_(chunk), table.c.status != Status.RESOLVED
                        )
                    )
                ).all()
            )
        for ident in idents:
            if ident not in still_open:
                status = await connection.scalar(select(table.c.status).where(table.c.id == ident))
                if status is None:
                    raise NotFoundError("incident", ident)
                raise IllegalTransitionError(ident, str(status), "update")

    async def _locked_incident(self, connection: AsyncConnection, ident: uuid.UUID) -> Incident:
        table = models.incidents
        row = (
            await connection.execute(select(table).where(table.c.id == ident).with_for_update())
        ).first()
        if row is None:
            raise NotFoundError("incident", ident)
        return incident_from_row(row)

    async def _save_incident(self, connection: AsyncConnection, incident: Incident) -> None:
        table = models.incidents
        values = incident_values(incident)
        del values["id"]
        await connection.execute(update(table).where(table.c.id == incident.id).values(values))

    async def _count(
        self, connection: AsyncConnection, counts: Counter[tuple[date, Severity]]
    ) -> None:
        deltas = [
            {"day": day, "severity": severity, "count": delta}
            for (day, severity), delta in sorted(counts.items())
            if delta
        ]
        if not deltas:
            return
        upsert = self._adding_upsert(models.incident_daily_counts, ("day", "severity"), ("count",))
        await connection.execute(upsert, deltas)


def resume_states(
    streaks: Iterable[tuple[str, int, int, int, str, bool]], open_incidents: Iterable[Incident]
) -> dict[str, RuleState]:
    """Series states from persisted streaks ``(series_key, breach, normal, critical,
    flap_history, flapping)`` and the open incidents: what a restarted monitor resumes."""
    by_key = {series_key(i.rule, i.series): i for i in open_incidents}
    states: dict[str, RuleState] = {}
    for key, breach, normal, critical, flap_history, flapping in streaks:
        incident = by_key.get(key)
        states[key] = RuleState(
            breach_streak=breach,
            # The normal streak means something only while an incident is open.
            normal_streak=normal if incident is not None else 0,
            critical_streak=critical,
            incident=incident,
            flap_history=flap_history,
            flapping=flapping,
        )
    for key, incident in by_key.items():
        states.setdefault(key, RuleState(incident=incident))
    return states


def _streaks(state: RuleState) -> tuple[int, int, int, str, bool]:
    return (
        state.breach_streak,
        state.normal_streak,
        state.critical_streak,
        state.flap_history,
        state.flapping,
    )


def _replace_incident(item: Event, incident: Incident) -> Event:
    return dataclasses.replace(item, incident=incident)


def _is_open_incident_violation(exc: sa_exc.IntegrityError) -> bool:
    message = str(exc.orig)
    # PostgreSQL names the index; SQLite names the columns, and the only unique index on
    # incidents.rule and incidents.series is the open-incident one.
    return (
        "uq_incidents_open_rule_series" in message or "incidents.rule, incidents.series" in message
    )
