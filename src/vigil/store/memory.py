"""``MemoryStore``: the store's behaviour that the runtime relies on, in memory.

It implements the runtime's ports (``vigil.runtime.ports``: what the monitor, the silence
cache, the dispatcher and the event bus call) and the actions that change what they see
(incident transitions, rule changes, snoozes, maintenance windows, channels), with the same
semantics as ``Store``: one open incident per rule (``DuplicateIncidentError``, nothing
written), a cycle that would update an incident resolved elsewhere is refused whole, events
come back as the log stores them (their data through JSON), and the outbox is written with
its events, claimed per incident and channel in order, leased and settled. The contract tests
(``tests/store/test_contract.py``) run the same checks on it and on SQLite and PostgreSQL.

It keeps no history for the dashboard (no pages, frequencies or metric histories) and no
users: the runtime's unit tests need none of that.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from vigil.core.catalogue import DEFAULT_RULES
from vigil.core.errors import (
    DuplicateIncidentError,
    IllegalTransitionError,
    NameTakenError,
    NotFoundError,
    ValidationError,
)
from vigil.core.evaluation import IDLE, CycleResult, RuleState, series_key, split_key
from vigil.core.events import Event, EventKind
from vigil.core.grouping import GroupSummary, OpenGroup, assign, summarize
from vigil.core.incidents import Incident, Status, acknowledge, resolve
from vigil.core.rollups import Bucket, Rollup, buckets_of
from vigil.core.rules import Rule
from vigil.core.samples import Sample
from vigil.core.silences import MaintenanceWindow, Snooze
from vigil.notify.channels import Channel, NotifyOn, subscribed
from vigil.notify.format import idempotency_key
from vigil.store._base import (
    check_int,
    check_lease,
    check_name,
    check_time,
    event_payload,
    logged,
    parse_incident_id,
)
from vigil.store._changes import EVALUATOR_FIELDS, RESOLUTION_FIELDS, resume_states
from vigil.store._channels import channel_event, check_by
from vigil.store._groups import grouped_rows
from vigil.store._incidents import MAX_TIMELINE
from vigil.store._outbox import last_of, settlement
from vigil.store._rollups import compaction_cutoff
from vigil.store._rules import (
    DEFAULT_MAX_RULES,
    MAX_EVENTS,
    changed_event,
    check_room,
    created_event,
    deleted_event,
    plan_rules,
    resolve_deleted,
)
from vigil.store._silences import window_event, window_taken
from vigil.store.records import (
    MAX_CLAIM,
    Claim,
    Delivery,
    LastNotification,
    OutboxCounts,
    OutboxItem,
    OutboxStatus,
    RulePlan,
    StoredChannel,
)


@dataclasses.dataclass(slots=True)
class _SnoozeRow:
    snooze: Snooze
    ended_at: datetime | None = None


class MemoryStore:
    """A store in memory, seeded with the default rules as a new database is."""

    def __init__(self, rules: Iterable[Rule] = DEFAULT_RULES) -> None:
        self._rules: dict[str, Rule] = {rule.name: rule for rule in rules}
        # breach, normal, critical, flap history, flapping, by series key
        # (``vigil.core.evaluation.series_key``)
        self._streaks: dict[str, tuple[int, int, int, str, bool]] = {}
        self._incidents: dict[uuid.UUID, Incident] = {}
        self._samples: list[Sample] = []
        # Compacted history: (metric, minute start, instance) -> its bucket (``_rollups``).
        self._rollups: dict[tuple[str, datetime, str], Bucket] = {}
        self._events: list[Event] = []
        self._snoozes: list[_SnoozeRow] = []
        self._windows: dict[str, MaintenanceWindow] = {}
        self._channels: dict[str, StoredChannel] = {}
        self._outbox: dict[int, OutboxItem] = {}
        self._outbox_ids = itertools.count(1)
        # Incident groups and the window each was formed with.
        self._groups: dict[uuid.UUID, tuple[OpenGroup, timedelta]] = {}

    @property
    def samples(self) -> tuple[Sample, ...]:
        """Every sample stored, in order (what a test of the fake itself may look at)."""
        return tuple(self._samples)

    # -- the monitor's reads and writes --------------------------------------------------------

    async def list_rules(self) -> list[Rule]:
        return [self._rules[name] for name in sorted(self._rules)]

    async def get_rule(self, name: str) -> Rule:
        rule = self._rules.get(name)
        if rule is None:
            raise NotFoundError("rule", name)
        return rule

    async def load_states(self) -> dict[str, RuleState]:
        return resume_states(
            ((key, *streaks) for key, streaks in self._streaks.items()),
            (incident for incident in self._incidents.values() if incident.is_open),
        )

    async def active_incidents(self) -> list[Incident]:
        found = [i for i in self._incidents.values() if i.is_open]
        found.sort(key=lambda i: (i.severity.rank, i.triggered_at, i.id), reverse=True)
        return found

    async def latest_values(
        self, *, since: datetime, exclude_instance: str | None = None
    ) -> dict[str, list[float]]:
        check_time("since", since)
        newest: dict[tuple[str, str], datetime] = {}
        for sample in self._samples:
            key = (sample.instance, sample.metric)
            if sample.time >= since and (key not in newest or sample.time > newest[key]):
                newest[key] = sample.time
        latest: dict[tuple[str, str], float] = {}
        for sample in self._samples:  # in stored order: the last of equal times wins
            key = (sample.instance, sample.metric)
            if newest.get(key) == sample.time and sample.instance != exclude_instance:
                latest[key] = sample.value
        values: dict[str, list[float]] = {}
        for (_, metric), value in latest.items():
            values.setdefault(metric, []).append(value)
        return values

    async def latest_readings(
        self, *, since: datetime, exclude_instance: str | None = None
    ) -> dict[str, dict[str, tuple[float, datetime]]]:
        check_time("since", since)
        newest: dict[tuple[str, str], Sample] = {}
        for sample in self._samples:  # in stored order: the last of equal times wins
            if sample.time < since or sample.instance == exclude_instance:
                continue
            key = (sample.metric, sample.instance)
            if key not in newest or sample.time >= newest[key].time:
                newest[key] = sample
        readings: dict[str, dict[str, tuple[float, datetime]]] = {}
        for (metric, instance), sample in newest.items():
            readings.setdefault(metric, {})[instance] = (sample.value, sample.time)
        return readings

    async def add_samples(self, samples: Sequence[Sample]) -> None:
        self._samples.extend(samples)

    async def compact_samples(
        self,
        *,
        now: datetime,
        raw_hours: int,
        batch_size: int = 5000,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """``Store.compact_samples``: the samples older than ``raw_hours`` (from a minute's
        start) rolled into their minute buckets and dropped; how many."""
        cutoff = compaction_cutoff(now, raw_hours)
        check_int("batch_size", batch_size, 1, 100_000)
        old = [sample for sample in self._samples if sample.time < cutoff]
        self._samples = [sample for sample in self._samples if sample.time >= cutoff]
        for first in range(0, len(old), batch_size):
            batch = old[first : first + batch_size]
            for key, bucket in buckets_of(
                (s.metric, s.instance, s.time, s.value) for s in batch
            ).items():
                found = self._rollups.get(key)
                if found is None:
                    self._rollups[key] = bucket
                else:
                    found.merge(bucket)
            if progress is not None:
                progress(len(batch))
        return len(old)

    async def sample_chunks(
        self,
        *,
        start: datetime,
        end: datetime,
        metrics: Collection[str] | None = None,
        chunk: int = 20_000,
        rollup: Mapping[str, Rollup] | None = None,
    ) -> AsyncIterator[list[tuple[datetime, str, str, float]]]:
        """``Store.sample_chunks``: raw samples and minute rollups of ``[start, end)`` in time
        order (a rollup first among equal times), in lists of at most ``chunk``."""
        check_time("start", start)
        check_time("end", end)
        check_int("chunk", chunk, 1, 100_000)
        picks = rollup or {}
        rolled = [
            (at, 0, metric, instance, bucket.value(picks.get(metric, Rollup.MEAN)))
            for (metric, at, instance), bucket in sorted(self._rollups.items())
            if start <= at < end and (metrics is None or metric in metrics)
        ]
        raw = [
            (s.time, 1, s.metric, s.instance, s.value)
            for s in self._samples
            if start <= s.time < end and (metrics is None or s.metric in metrics)
        ]
        rows = [
            (at, metric, instance, value)
            for at, _, metric, instance, value in sorted(
                rolled + raw, key=lambda row: (row[0], row[1])
            )
        ]
        for first in range(0, len(rows), chunk):
            yield rows[first : first + chunk]

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
        """As ``Store.commit_cycle``: all of the cycle or, on any error, none of it."""
        check_time("now", now)
        opened: dict[uuid.UUID, Incident] = {}
        latest: dict[uuid.UUID, Incident] = {}
        for item in result.events:
            if item.incident is None:
                continue
            latest[item.incident.id] = item.incident
            if item.kind is EventKind.INCIDENT_OPENED:
                opened[item.incident.id] = item.incident
        for state in result.changed.values():
            if state.incident is not None:
                latest[state.incident.id] = state.incident
        for item in result.events:
            _check_json(item)

        incidents = dict(self._incidents)
        outcome = assign(
            [latest[ident] for ident in opened],
            [
                group
                for group, _ in self._groups.values()
                if any(i.is_open and i.group == group.id for i in incidents.values())
            ],
            window=group_window,
            labels=group_labels,
        )
        for ident, group_id in outcome.members.items():
            latest[ident] = dataclasses.replace(latest[ident], group=group_id)
        stored: dict[uuid.UUID, Incident] = {}
        for ident in sorted(opened):
            incident = latest[ident]
            if any(
                i.is_open and (i.rule, i.series) == (incident.rule, incident.series)
                for i in incidents.values()
            ):
                raise DuplicateIncidentError(incident.rule, incident.series)
            incidents[ident] = stored[ident] = incident
        for ident in sorted(set(latest) - set(opened)):
            incidents[ident] = stored[ident] = _apply_evaluation(incidents, latest[ident])

        self._incidents = incidents
        for group in outcome.created + outcome.updated:
            self._groups[group.id] = (group, group_window)
        self._samples.extend(samples)
        for key, state in result.changed.items():
            if split_key(key)[0] not in self._rules:
                continue  # deleted meanwhile
            if split_key(key)[1] and state == IDLE:
                self._streaks.pop(key, None)
                continue
            self._streaks[key] = (
                state.breach_streak,
                state.normal_streak,
                state.critical_streak,
                state.flap_history,
                state.flapping,
            )
        events = self._append(
            item
            if item.incident is None
            else dataclasses.replace(item, incident=stored[item.incident.id])
            for item in result.events
        )
        if claim is not None and events:
            claim.channels = {
                name: stored.channel
                for name, stored in self._channels.items()
                if stored.channel.enabled
            }
            claim.deliveries.extend(
                self._claim(now=now, lease=claim.lease, limit=claim.limit, among=events)
            )
        return events

    # -- the event log ------------------------------------------------------------------------

    async def append_events(self, items: Sequence[Event]) -> list[Event]:
        for item in items:
            check_time("at", item.at)
            _check_json(item)
        return self._append(items)

    async def events_after(self, last_id: int, *, limit: int = 500) -> list[Event]:
        check_int("last_id", last_id, 0, 2**63 - 1)
        check_int("limit", limit, 1, MAX_EVENTS)
        return self._events[last_id : last_id + limit]  # ids are 1, 2, 3...

    async def last_event_id(self) -> int:
        return len(self._events)

    def log_version(self) -> int:
        """Moves with every event appended (``Store.log_version``)."""
        return len(self._events)

    async def incident_events(
        self, incident_id: uuid.UUID | str, *, limit: int = MAX_TIMELINE
    ) -> list[Event]:
        ident = parse_incident_id(incident_id)
        check_int("limit", limit, 1, MAX_TIMELINE)
        found = [e for e in self._events if e.incident is not None and e.incident.id == ident]
        return found[:limit]

    def _append(self, items: Iterable[Event]) -> list[Event]:
        appended = []
        for item in items:
            event = dataclasses.replace(item, id=len(self._events) + 1)
            self._events.append(logged(event))  # what the log gives back is what its JSON holds
            appended.append(event)
        self._enqueue(appended)
        return appended

    # -- people's actions on incidents --------------------------------------------------------

    async def acknowledge_incident(
        self, incident_id: uuid.UUID | str, *, by: str, now: datetime, notes: str | None = None
    ) -> tuple[Incident, Event]:
        ident = parse_incident_id(incident_id)
        check_time("now", now)
        updated, event = acknowledge(self._incident(ident), by=by, now=now, notes=notes)
        self._incidents[ident] = updated
        [stored] = self._append([event])
        return updated, stored

    async def acknowledge_all(
        self, *, by: str, now: datetime, notes: str | None = None
    ) -> list[tuple[Incident, Event]]:
        check_name("by", by)
        check_time("now", now)
        active = sorted(
            (i for i in self._incidents.values() if i.status is Status.ACTIVE), key=lambda i: i.id
        )
        changes = [acknowledge(incident, by=by, now=now, notes=notes) for incident in active]
        for updated, _ in changes:
            self._incidents[updated.id] = updated
        stored = self._append(event for _, event in changes)
        return [(updated, event) for (updated, _), event in zip(changes, stored, strict=True)]

    async def resolve_incident(
        self, incident_id: uuid.UUID | str, *, by: str, now: datetime, notes: str | None = None
    ) -> tuple[Incident, Event]:
        ident = parse_incident_id(incident_id)
        check_name("by", by)
        check_time("now", now)
        updated, event = resolve(self._incident(ident), by=by, now=now, notes=notes)
        self._incidents[ident] = updated
        # The streaks go, the flap state stays (as ``IncidentChanges.resolve_incident``).
        key = series_key(updated.rule, updated.series)
        kept = self._streaks.pop(key, None)
        if kept is not None and (kept[3] or kept[4]):
            self._streaks[key] = (0, 0, 0, kept[3], kept[4])
        [stored] = self._append([event])
        return updated, stored

    async def get_incident(self, incident_id: uuid.UUID | str) -> Incident:
        return self._incident(parse_incident_id(incident_id))

    def _incident(self, ident: uuid.UUID) -> Incident:
        try:
            return self._incidents[ident]
        except KeyError:
            raise NotFoundError("incident", ident) from None

    # -- rules --------------------------------------------------------------------------------

    async def add_rule(
        self, rule: Rule, *, by: str | None, now: datetime, max_rules: int = DEFAULT_MAX_RULES
    ) -> tuple[Rule, Event]:
        check_time("now", now)
        if rule.name in self._rules:
            raise NameTakenError("rule", rule.name)
        check_room(len(self._rules) + 1, max_rules)
        added = rule.updated({}, by=by, at=now)
        event = created_event(added, by=by, now=now)
        self._rules[added.name] = added
        [stored] = self._append([event])
        return added, stored

    async def replace_rule(
        self, name: str, rule: Rule, *, by: str | None, now: datetime
    ) -> tuple[Rule, Event]:
        check_time("now", now)
        if rule.name != name:
            raise ValidationError("name", f"must be {name!r}, the rule being replaced")
        before = await self.get_rule(name)
        replaced = rule.updated({}, by=by, at=now)
        self._rules[name] = replaced
        [stored] = self._append([changed_event(before, replaced, by=by, now=now)])
        return replaced, stored

    async def update_rule(
        self, name: str, changes: Mapping[str, Any], *, by: str | None, now: datetime
    ) -> tuple[Rule, Event]:
        check_time("now", now)
        before = await self.get_rule(name)
        updated = before.updated(changes, by=by, at=now)
        event = changed_event(before, updated, by=by, now=now)
        _check_json(event)
        self._rules[name] = updated
        [stored] = self._append([event])
        return updated, stored

    async def delete_rule(self, name: str, *, by: str, now: datetime) -> list[Event]:
        check_name("by", by)
        check_time("now", now)
        rule = await self.get_rule(name)
        return self._append(self._delete_rules([rule], by=by, now=now))

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
        check_time("now", now)
        if prune:
            check_name("by", by)
        plan = plan_rules(self._rules, rules, by=by, now=now, prune=prune, max_rules=max_rules)
        if dry_run:
            return plan
        current = dict(self._rules)
        events: list[Event] = []
        if plan.removed:
            assert by is not None
            events = self._delete_rules([current[n] for n in plan.removed], by=by, now=now)
        for rule in plan.added:
            self._rules[rule.name] = rule
            events.append(created_event(rule, by=by, now=now))
        for rule, _ in plan.changed:
            self._rules[rule.name] = rule
            events.append(changed_event(current[rule.name], rule, by=by, now=now))
        stored = self._append(events)
        return RulePlan(plan.added, plan.changed, plan.removed, plan.unchanged, stored)

    async def rule_events(self, name: str, *, limit: int = 200) -> list[Event]:
        check_int("limit", limit, 1, MAX_EVENTS)
        return [e for e in reversed(self._events) if e.rule == name][:limit]

    def _delete_rules(self, rules: Sequence[Rule], *, by: str, now: datetime) -> list[Event]:
        names = {rule.name for rule in rules}
        open_ones = sorted(
            (i for i in self._incidents.values() if i.is_open and i.rule in names),
            key=lambda i: i.id,
        )
        resolved = resolve_deleted(open_ones, by=by, now=now)
        for incident, _ in resolved:
            self._incidents[incident.id] = incident
        for name in names:
            del self._rules[name]
        self._streaks = {k: v for k, v in self._streaks.items() if split_key(k)[0] not in names}
        self._snoozes = [row for row in self._snoozes if row.snooze.metric not in names]
        events = [event for _, event in resolved]
        return events + [deleted_event(rule, by=by, now=now) for rule in rules]

    # -- silences -----------------------------------------------------------------------------

    async def set_snooze(self, snooze: Snooze) -> list[Event]:
        if not isinstance(snooze, Snooze):
            raise ValidationError("snooze", f"must be a Snooze, got {type(snooze).__name__}")
        if snooze.metric not in self._rules:
            raise NotFoundError("rule", snooze.metric)
        events = []
        live = self._live_snooze(snooze.metric)
        if live is not None:
            events.append(_end(live, at=snooze.created_at, by=snooze.by))
        self._snoozes.append(_SnoozeRow(snooze))
        events.append(snooze.started_event())
        return self._append(events)

    async def end_snooze(self, metric: str, *, by: str, now: datetime) -> Event:
        check_name("by", by, max_length=200)
        check_time("now", now)
        live = self._live_snooze(metric)
        if live is None or live.snooze.until <= now:
            raise NotFoundError("snooze", metric)
        [event] = self._append([_end(live, at=now, by=by)])
        return event

    async def active_snoozes(self, *, now: datetime | None = None) -> list[Snooze]:
        if now is not None:
            check_time("now", now)
        live = [
            row.snooze
            for row in self._snoozes
            if row.ended_at is None and (now is None or row.snooze.until > now)
        ]
        return sorted(live, key=lambda snooze: snooze.metric)

    async def expire_snoozes(self, *, now: datetime) -> list[Event]:
        check_time("now", now)
        ended = []
        for row in self._snoozes:
            if row.ended_at is None and row.snooze.until <= now:
                row.ended_at = row.snooze.until
                ended.append(row.snooze.ended_event(at=row.snooze.until))
        return self._append(sorted(ended, key=lambda e: (e.at, e.metric or "")))

    def _live_snooze(self, metric: str) -> _SnoozeRow | None:
        return next(
            (row for row in self._snoozes if row.snooze.metric == metric and row.ended_at is None),
            None,
        )

    async def add_window(
        self, window: MaintenanceWindow | Mapping[str, Any], *, now: datetime
    ) -> tuple[MaintenanceWindow, Event]:
        checked = (
            window if isinstance(window, MaintenanceWindow) else MaintenanceWindow.from_dict(window)
        )
        check_time("now", now)
        for metric in sorted(checked.metrics or ()):
            if metric not in self._rules:
                raise ValidationError("metrics", f"there is no rule for {metric!r}")
        if checked.name in self._windows:
            raise window_taken(checked.name)
        self._windows[checked.name] = checked
        [event] = self._append(
            [window_event(EventKind.MAINTENANCE_ADDED, checked, checked.by, now)]
        )
        return checked, event

    async def list_windows(self) -> list[MaintenanceWindow]:
        return [self._windows[name] for name in sorted(self._windows)]

    async def delete_window(self, name: str, *, by: str | None, now: datetime) -> Event:
        check_time("now", now)
        window = self._windows.pop(name, None)
        if window is None:
            raise NotFoundError("maintenance window", name)
        [event] = self._append([window_event(EventKind.MAINTENANCE_REMOVED, window, by, now)])
        return event

    # -- channels -----------------------------------------------------------------------------

    async def add_channel(
        self, channel: Channel | Mapping[str, Any], *, now: datetime, by: str | None = None
    ) -> tuple[StoredChannel, Event]:
        checked = channel if isinstance(channel, Channel) else Channel.from_dict(channel)
        check_time("now", now)
        check_by(by)
        if checked.name in self._channels:
            raise ValidationError("name", f"a channel named {checked.name!r} already exists")
        stored = StoredChannel(checked, created_at=now, updated_at=now)
        self._channels[checked.name] = stored
        [event] = self._append([channel_event(EventKind.CHANNEL_ADDED, stored, by=by, now=now)])
        return stored, event

    async def update_channel(
        self, name: str, changes: Mapping[str, Any], *, now: datetime, by: str | None = None
    ) -> tuple[StoredChannel, Event]:
        check_time("now", now)
        check_by(by)
        if "name" in changes and changes["name"] != name:
            raise ValidationError("name", "cannot be changed; remove the channel and add it anew")
        found = self._channels.get(name)
        if found is None:
            raise NotFoundError("channel", name)
        current = found.channel
        data = {**current.to_dict(reveal_url=True), **changes}
        if changes.get("url") == current.redacted_url:
            data["url"] = current.url
        updated = Channel.from_dict(data)
        stored = StoredChannel(updated, created_at=found.created_at, updated_at=now)
        before, after = current.to_dict(reveal_url=True), updated.to_dict(reveal_url=True)
        changed = sorted(key for key, value in after.items() if value != before[key])
        self._channels[name] = stored
        [event] = self._append(
            [channel_event(EventKind.CHANNEL_CHANGED, stored, by=by, now=now, changed=changed)]
        )
        return stored, event

    async def delete_channel(self, name: str, *, now: datetime, by: str | None = None) -> Event:
        check_time("now", now)
        check_by(by)
        if self._channels.pop(name, None) is None:
            raise NotFoundError("channel", name)
        for item in list(self._outbox.values()):
            if item.channel == name and item.status is OutboxStatus.PENDING:
                self._set(item, status=OutboxStatus.FAILED, last_error="the channel was removed")
        removed = Event(
            kind=EventKind.CHANNEL_REMOVED, at=now, by=by, data={"channel": {"name": name}}
        )
        [event] = self._append([removed])
        return event

    async def get_channel(self, name: str) -> StoredChannel:
        try:
            return self._channels[name]
        except KeyError:
            raise NotFoundError("channel", name) from None

    async def list_channels(self) -> list[StoredChannel]:
        return [self._channels[name] for name in sorted(self._channels)]

    async def delivery_channels(self) -> dict[str, Channel | ValidationError]:
        return {name: stored.channel for name, stored in self._channels.items()}

    # -- the outbox ---------------------------------------------------------------------------

    def _enqueue(self, events: Sequence[Event]) -> None:
        # As ``Outbox._enqueue_notifications``: an incident no longer active has its waiting
        # follow-ups (escalation steps, reminders) cancelled.
        stopped = {
            e.incident.id
            for e in events
            if e.incident is not None and e.incident.status is not Status.ACTIVE
        }
        for item in list(self._outbox.values()):
            if (
                item.incident_id in stopped
                and item.status is OutboxStatus.PENDING
                and item.repeat > 0
            ):
                self._set(item, status=OutboxStatus.CANCELLED)
        channels = [self._channels[name].channel for name in sorted(self._channels)]
        rows: list[dict[str, Any]] = []
        for event in events:
            if event.incident is None or NotifyOn.of(event.kind) is None:
                continue
            for channel in channels:
                if subscribed(
                    event,
                    enabled=channel.enabled,
                    events=channel.events,
                    min_severity=channel.min_severity,
                ):
                    rows.append({"event_id": event.id, "channel": channel.name, "at": event.at})
        items = list(self._outbox.values())
        last_at: dict[tuple[uuid.UUID, str], datetime] = {}
        for item in items:
            if item.group_id is not None:
                key = (item.group_id, item.channel)
                last_at[key] = max(item.created_at, last_at.get(key, item.created_at))
        routed = grouped_rows(
            rows,
            {event.id: event for event in events},
            pending={
                (item.group_id, item.channel)
                for item in items
                if item.group_id is not None
                and item.status is OutboxStatus.PENDING
                and item.attempts == 0
            },
            last_at=last_at,
            open_left={
                ident: sum(1 for i in self._incidents.values() if i.group == ident and i.is_open)
                for ident in self._groups
            },
            windows={ident: window for ident, (_, window) in self._groups.items()},
        )
        by_id = {event.id: event for event in events}
        for row in routed:
            self._add_row(
                by_id[row["event_id"]],
                row["channel"],
                now=row["at"],
                due=row.get("next_attempt_at"),
                group_id=row.get("group_id"),
            )

    def _add_row(
        self,
        event: Event,
        channel: str,
        *,
        now: datetime,
        repeat: int = 0,
        due: datetime | None = None,
        group_id: uuid.UUID | None = None,
    ) -> OutboxItem | None:
        assert event.id is not None and event.incident is not None
        key = idempotency_key(event.incident.id, event.id, channel, repeat=repeat)
        if any(item.idempotency_key == key for item in self._outbox.values()):
            return None
        item = OutboxItem(
            id=next(self._outbox_ids),
            event_id=event.id,
            channel=channel,
            idempotency_key=key,
            status=OutboxStatus.PENDING,
            attempts=0,
            next_attempt_at=due or now,
            last_error=None,
            sent_at=None,
            created_at=now,
            incident_id=event.incident.id,
            repeat=repeat,
            group_id=group_id,
        )
        self._outbox[item.id] = item
        return item

    def _set(self, item: OutboxItem, **changes: Any) -> OutboxItem:
        updated = dataclasses.replace(item, **changes)
        self._outbox[item.id] = updated
        return updated

    async def claim_notifications(
        self, *, now: datetime, lease: timedelta, limit: int = 100
    ) -> list[Delivery]:
        check_time("now", now)
        check_int("limit", limit, 1, MAX_CLAIM)
        return self._claim(now=now, lease=check_lease(lease), limit=limit)

    def _claim(
        self, *, now: datetime, lease: timedelta, limit: int, among: Sequence[Event] | None = None
    ) -> list[Delivery]:
        """As ``Outbox._claim``: only the rows of the events ``among`` when given."""
        pending = [i for i in self._outbox.values() if i.status is OutboxStatus.PENDING]
        # Per incident and channel only the oldest pending row is handed out.
        first: dict[tuple[uuid.UUID | None, str], int] = {}
        for item in sorted(pending, key=lambda i: i.id):
            first.setdefault((item.incident_id, item.channel), item.id)
        wanted = None if among is None else {event.id for event in among}
        due = sorted(
            (
                item
                for item in pending
                if item.next_attempt_at <= now
                and (item.incident_id is None or first[item.incident_id, item.channel] == item.id)
                and (wanted is None or item.event_id in wanted)
            ),
            key=lambda i: (i.next_attempt_at, i.id),
        )[:limit]
        events = {
            event.id: event for event in self._events if event.id in {i.event_id for i in due}
        }
        return [
            Delivery(
                self._set(item, attempts=item.attempts + 1, next_attempt_at=now + lease),
                events[item.event_id],
                self._group_summary(item.group_id),
            )
            for item in due
        ]

    def _group_summary(self, group_id: uuid.UUID | None) -> GroupSummary | None:
        if group_id is None or group_id not in self._groups:
            return None
        group, _ = self._groups[group_id]
        members = [i for i in self._incidents.values() if i.group == group_id]
        return summarize(group_id, members, label=group.label, opened_at=group.opened_at)

    async def settle_notification(
        self,
        item_id: int,
        *,
        now: datetime,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> OutboxItem:
        changes = settlement(now=now, error=error, retry_at=retry_at)
        item = self._outbox.get(item_id)
        if item is None:
            raise NotFoundError("notification", item_id)
        sendable = item.status is OutboxStatus.CANCELLED and error is None
        if item.status is not OutboxStatus.PENDING and not sendable:
            return item
        return self._set(item, **changes)

    async def renew_claims(
        self, item_ids: Collection[int], *, now: datetime, lease: timedelta
    ) -> int:
        check_time("now", now)
        check_lease(lease)
        held = 0
        for item_id in set(item_ids):
            item = self._outbox.get(item_id)
            if item is not None and item.status is OutboxStatus.PENDING:
                self._set(item, next_attempt_at=now + lease)
                held += 1
        return held

    async def settle_sent(self, item_ids: Collection[int], *, now: datetime) -> int:
        check_time("now", now)
        marked = 0
        for item_id in set(item_ids):
            item = self._outbox.get(item_id)
            if item is not None and item.status in (OutboxStatus.PENDING, OutboxStatus.CANCELLED):
                self._set(item, status=OutboxStatus.SENT, sent_at=now)
                marked += 1
        return marked

    async def outbox_counts(self) -> OutboxCounts:
        items = list(self._outbox.values())
        pending = [i for i in items if i.status is OutboxStatus.PENDING]
        return OutboxCounts(
            pending=len(pending),
            sent=sum(1 for i in items if i.status is OutboxStatus.SENT),
            failed=sum(1 for i in items if i.status is OutboxStatus.FAILED),
            next_attempt_at=min((i.next_attempt_at for i in pending), default=None),
        )

    async def list_notifications(
        self,
        *,
        status: OutboxStatus | str | None = None,
        incident_id: uuid.UUID | None = None,
        limit: int = 100,
    ) -> list[OutboxItem]:
        check_int("limit", limit, 1, MAX_CLAIM)
        wanted: OutboxStatus | None = None
        if status is not None:
            try:
                wanted = OutboxStatus(status)
            except ValueError:
                raise ValidationError("status", f"unknown status {status!r}") from None
        found = [
            item
            for item in sorted(self._outbox.values(), key=lambda i: i.id, reverse=True)
            if (wanted is None or item.status is wanted)
            and (incident_id is None or item.incident_id == incident_id)
        ]
        return found[:limit]

    async def last_notifications(
        self, incident_ids: Collection[uuid.UUID]
    ) -> list[LastNotification]:
        wanted = set(incident_ids)
        return last_of(
            item
            for item in sorted(self._outbox.values(), key=lambda i: i.id)
            if item.incident_id in wanted
        )

    async def enqueue_reminder(self, last: LastNotification, *, now: datetime) -> OutboxItem | None:
        check_time("now", now)
        current = self._incidents.get(last.incident_id)
        if current is None or current.status is not Status.ACTIVE:
            return None  # acknowledged or resolved since the caller looked
        event = next((e for e in self._events if e.id == last.event_id), None)
        if event is None:
            raise NotFoundError("event", last.event_id)
        return self._add_row(event, last.channel, now=now, repeat=last.repeats + 1)


def _apply_evaluation(incidents: Mapping[uuid.UUID, Incident], incident: Incident) -> Incident:
    current = incidents.get(incident.id)
    if current is None:
        raise NotFoundError("incident", incident.id)
    if current.status is Status.RESOLVED:
        raise IllegalTransitionError(incident.id, str(current.status), "update")
    fields = EVALUATOR_FIELDS + (RESOLUTION_FIELDS if not incident.is_open else ())
    return dataclasses.replace(current, **{name: getattr(incident, name) for name in fields})


def _check_json(item: Event) -> None:
    event_payload(item)


def _end(row: _SnoozeRow, *, at: datetime, by: str) -> Event:
    """End a live snooze: by ``by`` at ``at``, or, if its time was already up, by itself."""
    expired = not row.snooze.is_active(at)
    row.ended_at = row.snooze.until if expired else at
    return row.snooze.ended_event(at=row.ended_at, by=None if expired else by)
