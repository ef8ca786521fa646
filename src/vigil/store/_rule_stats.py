"""Each rule's noise: per-day counters kept as incidents change, read for 7, 30 or 90 days.

``rule_daily_stats`` holds, per rule and UTC day, what happened that day: incidents opened,
resolved (automatically or by a person) with their total time to resolve, acknowledged with
their total time to acknowledge, the part of resolved incidents' time that fell on that day,
flapping events, and notifications sent. The counters move in the transaction that stores the
incident's event (``StoreBase._append_events`` calls ``_count_rule_stats``, whichever path
wrote the event: a monitor cycle, an acknowledgement, a resolution, a rule deleted) or settles
a notification as sent, so they can never disagree with the incidents they count.

A window is the ``days`` UTC days ending today, as the frequency chart's. Reading one rule's
figures is a sum over at most ``days`` rows, plus the time so far of its few open incidents
(the counters take an incident's time when it resolves), never a scan of the incident
history. Cleanup keeps the counters a year (``_retention``), after their incidents are gone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vigil.core.errors import ValidationError
from vigil.core.events import Event, EventKind
from vigil.core.incidents import Incident, Resolution
from vigil.core.validation import check_rule_name
from vigil.store import models
from vigil.store._base import StoreBase, check_int, check_time
from vigil.store._prepared import prepared
from vigil.store.records import RuleStats

STATS_DAYS = (7, 30, 90)
MAX_NOISIEST = 100
# Counted as it is appended; the flapping detector writes it (``EventKind`` may not name it in
# every version, so the kind's value is compared).
FLAPPING_KIND = "incident.flapping"
COUNTERS = (
    "opened",
    "resolved_auto",
    "resolved_manual",
    "resolve_seconds",
    "incident_seconds",
    "acknowledged",
    "acknowledge_seconds",
    "flaps",
    "notifications_sent",
)

Key = tuple[str, date]
Deltas = dict[Key, dict[str, float]]

_TABLE = models.rule_daily_stats
_SUMS = [func.coalesce(func.sum(_TABLE.c[name]), 0).label(name) for name in COUNTERS]
_WINDOW = (
    _TABLE.c.day >= bindparam("first", type_=Date()),
    _TABLE.c.day <= bindparam("last", type_=Date()),
)
_ONE_RULE = select(*_SUMS).where(_TABLE.c.rule == bindparam("rule"), *_WINDOW)
_OPEN_OF_RULE = select(models.incidents.c.triggered_at).where(
    models.OPEN_PREDICATE, models.incidents.c.rule == bindparam("rule")
)
_EVERY_RULE = (
    select(_TABLE.c.rule, *_SUMS)
    .where(*_WINDOW, _TABLE.c.rule.in_(select(models.rules.c.name)))
    .group_by(_TABLE.c.rule)
)
_OPEN_OF_RULES = select(models.incidents.c.rule, models.incidents.c.triggered_at).where(
    models.OPEN_PREDICATE, models.incidents.c.rule.in_(select(models.rules.c.name))
)


class RuleStatsQueries(StoreBase):
    async def rule_stats(
        self,
        rule: str,
        *,
        days: int,
        now: datetime,
        open_incidents: Iterable[Incident] | None = None,
    ) -> RuleStats:
        """One rule's figures over the ``days`` (7, 30 or 90) UTC days ending today. A rule
        without history has zeros; whether the rule exists is the caller's question.

        ``open_incidents``: the open incidents as the caller already knows them (the live
        view; any rule's, this one's are picked), which spares a query; read here if None.
        """
        check_rule_name("rule", rule)
        first, today, start = _window(days, now)
        window = {"rule": rule, "first": first, "last": today}
        async with self._read("reading a rule's statistics") as connection:
            sums = (await connection.execute(_ONE_RULE, window)).one()
            if open_incidents is None:
                opened_at = list((await connection.scalars(_OPEN_OF_RULE, {"rule": rule})).all())
            else:
                opened_at = [i.triggered_at for i in open_incidents if i.rule == rule and i.is_open]
        return _figures(rule, days, first, dict(sums._mapping), opened_at, start=start, now=now)

    async def noisiest_rules(
        self,
        *,
        days: int,
        now: datetime,
        limit: int = 10,
        open_incidents: Iterable[Incident] | None = None,
    ) -> list[RuleStats]:
        """The existing rules with anything to show in the window, noisiest first: most
        incidents, then most notifications sent, most time in incident, most flaps, by name.
        ``open_incidents`` as for ``rule_stats`` (those of existing rules)."""
        check_int("limit", limit, 1, MAX_NOISIEST)
        first, today, start = _window(days, now)
        async with self._read("reading the noisiest rules") as connection:
            rows = (await connection.execute(_EVERY_RULE, {"first": first, "last": today})).all()
            if open_incidents is None:
                open_rows = [tuple(row) for row in (await connection.execute(_OPEN_OF_RULES))]
            else:
                open_rows = [(i.rule, i.triggered_at) for i in open_incidents if i.is_open]
        opened_at: dict[str, list[datetime]] = defaultdict(list)
        for name, triggered_at in open_rows:
            opened_at[name].append(triggered_at)
        sums: dict[str, Mapping[str, Any]] = {row.rule: dict(row._mapping) for row in rows}
        found = [
            _figures(name, days, first, sums.get(name, {}), opened_at.get(name, ()), start, now)
            for name in sums.keys() | opened_at.keys()
        ]
        found = [stats for stats in found if not stats.quiet]
        found.sort(key=lambda s: (tuple(-x for x in _noise(s)), s.rule))
        return found[:limit]

    async def _count_rule_stats(self, connection: AsyncConnection, events: Sequence[Event]) -> None:
        await self._add_stats(connection, deltas_of(events))

    async def _count_sent(
        self, connection: AsyncConnection, event_ids: Sequence[int], *, now: datetime
    ) -> None:
        """Notifications just settled as sent, by the ids of the events they are about."""
        if not event_ids:
            return
        by_id = dict(
            (await connection.execute(_RULES_OF_EVENTS, {"ids": sorted(set(event_ids))})).all()
        )
        day = now.astimezone(UTC).date()
        deltas: Deltas = {}
        for ident in event_ids:
            rule = by_id.get(ident)
            if rule is not None:
                _add(deltas, rule, day, "notifications_sent", 1)
        await self._add_stats(connection, deltas)

    async def _add_stats(self, connection: AsyncConnection, deltas: Deltas) -> None:
        if not deltas:
            return
        rows = [
            {"rule": rule, "day": day, **{name: values.get(name, 0) for name in COUNTERS}}
            for (rule, day), values in sorted(deltas.items())
        ]
        await connection.execute(self._adding_upsert(_TABLE, ("rule", "day"), COUNTERS), rows)


# The rule of each event ``ids`` (``_count_sent``, as each notification is settled).
_RULES_OF_EVENTS = prepared(
    select(models.events.c.id, models.events.c.rule).where(
        models.events.c.id.in_(bindparam("ids", expanding=True))
    )
)


# -- the arithmetic, pure ----------------------------------------------------------------------


def deltas_of(events: Iterable[Event]) -> Deltas:
    """What storing ``events`` adds to each rule's days."""
    deltas: Deltas = {}
    for event in events:
        rule = event.rule
        if rule is None:
            continue
        if event.kind == FLAPPING_KIND:  # with or without the incident it holds open
            _add(deltas, rule, _day_of(event.at), "flaps", 1)
            continue
        incident = event.incident
        if incident is None:
            continue
        if event.kind is EventKind.INCIDENT_OPENED:
            _add(deltas, rule, _day_of(incident.triggered_at), "opened", 1)
        elif event.kind is EventKind.INCIDENT_ACKNOWLEDGED and incident.acknowledged_at:
            day = _day_of(incident.acknowledged_at)
            _add(deltas, rule, day, "acknowledged", 1)
            waited = _seconds(incident.triggered_at, incident.acknowledged_at)
            _add(deltas, rule, day, "acknowledge_seconds", waited)
        elif event.kind is EventKind.INCIDENT_RESOLVED and incident.resolved_at is not None:
            day = _day_of(incident.resolved_at)
            auto = incident.resolution is Resolution.AUTO
            _add(deltas, rule, day, "resolved_auto" if auto else "resolved_manual", 1)
            lasted = _seconds(incident.triggered_at, incident.resolved_at)
            _add(deltas, rule, day, "resolve_seconds", lasted)
            for share_day, seconds in day_shares(incident.triggered_at, incident.resolved_at):
                _add(deltas, rule, share_day, "incident_seconds", seconds)
    return deltas


def day_shares(start: datetime, end: datetime) -> list[tuple[date, float]]:
    """How many seconds of ``[start, end)`` fall on each UTC day (days with none left out)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    shares: list[tuple[date, float]] = []
    moment = start
    while moment < end:
        midnight = datetime.combine(moment.date() + timedelta(days=1), datetime.min.time(), UTC)
        until = min(midnight, end)
        shares.append((moment.date(), (until - moment).total_seconds()))
        moment = until
    return shares


def check_days(days: int) -> int:
    if isinstance(days, bool) or days not in STATS_DAYS:
        raise ValidationError("days", f"must be one of 7, 30 or 90, got {days!r}")
    return days


def _window(days: int, now: datetime) -> tuple[date, date, datetime]:
    """The window's first and last day, and the moment it starts."""
    check_days(days)
    today = check_time("now", now).astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    return first, today, datetime.combine(first, datetime.min.time(), UTC)


def _figures(
    rule: str,
    days: int,
    first: date,
    sums: Mapping[str, Any],
    opened_at: Iterable[datetime],
    start: datetime,
    now: datetime,
) -> RuleStats:
    def count(name: str) -> int:
        return int(sums.get(name) or 0)

    def total(name: str) -> float:
        return float(sums.get(name) or 0.0)

    open_times = list(opened_at)
    still_open = sum(max(0.0, _seconds(max(at, start), now)) for at in open_times)
    acknowledged = count("acknowledged")
    resolved = count("resolved_auto") + count("resolved_manual")
    return RuleStats(
        rule=rule,
        days=days,
        first_day=first,
        incidents=count("opened"),
        open_incidents=len(open_times),
        seconds_in_incident=total("incident_seconds") + still_open,
        acknowledged=acknowledged,
        mean_seconds_to_acknowledge=(
            total("acknowledge_seconds") / acknowledged if acknowledged else None
        ),
        resolved_auto=count("resolved_auto"),
        resolved_manual=count("resolved_manual"),
        mean_seconds_to_resolve=total("resolve_seconds") / resolved if resolved else None,
        flaps=count("flaps"),
        notifications_sent=count("notifications_sent"),
    )


def _noise(stats: RuleStats) -> tuple[int, int, float, int]:
    return stats.incidents, stats.notifications_sent, stats.seconds_in_incident, stats.flaps


def _add(deltas: Deltas, rule: str, day: date, name: str, amount: float) -> None:
    values = deltas.setdefault((rule, day), {})
    values[name] = values.get(name, 0) + amount


def _day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _seconds(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()
