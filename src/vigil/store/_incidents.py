"""Incident reads: what the dashboard and the API show."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Date,
    Uuid,
    bindparam,
    case,
    func,
    literal,
    select,
    tuple_,
)
from sqlalchemy.sql.elements import ColumnElement

from vigil.core.errors import NotFoundError, ValidationError
from vigil.core.events import Event
from vigil.core.incidents import Incident, Resolution, Severity, Status
from vigil.core.validation import METRIC_PATTERN, check_rule_name
from vigil.store import models
from vigil.store._base import (
    MAX_PAGE_SIZE,
    StoreBase,
    check_enum,
    check_int,
    check_time,
    event_from_row,
    incident_from_row,
    parse_incident_id,
)
from vigil.store.records import Cursor, DayCount, Page
from vigil.store.types import UTCDateTime

MAX_PAGE = 1_000_000
MAX_DAYS = 365
MAX_TIMELINE = 1000

_SEVERITY_RANK = case(
    {severity: severity.rank for severity in Severity}, value=models.incidents.c.severity
)

# The hot reads are built once: building a statement costs more than SQLite takes to answer
# these, and a prebuilt one also keeps its cache key.
_BY_ID = select(models.incidents).where(models.incidents.c.id == bindparam("ident"))
_ACTIVE = (
    select(models.incidents)
    .where(models.OPEN_PREDICATE)
    .order_by(
        _SEVERITY_RANK.desc(),
        models.incidents.c.triggered_at.desc(),
        models.incidents.c.id.desc(),
    )
)
_DAY_COUNTS = select(
    models.incident_daily_counts.c.day,
    models.incident_daily_counts.c.severity,
    models.incident_daily_counts.c.count,
).where(
    models.incident_daily_counts.c.day >= bindparam("first", type_=Date()),
    models.incident_daily_counts.c.day <= bindparam("last", type_=Date()),
)


class IncidentQueries(StoreBase):
    async def get_incident(self, incident_id: uuid.UUID | str) -> Incident:
        """One incident; ``NotFoundError`` for an unknown (or malformed) id."""
        ident = parse_incident_id(incident_id)
        async with self._read("reading an incident") as connection:
            row = (await connection.execute(_BY_ID, {"ident": ident})).first()
        if row is None:
            raise NotFoundError("incident", ident)
        return incident_from_row(row)

    async def active_incidents(self) -> list[Incident]:
        """Open incidents (active or acknowledged): most severe first, then newest."""
        async with self._read("reading active incidents") as connection:
            rows = (await connection.execute(_ACTIVE)).all()
        return [incident_from_row(row) for row in rows]

    async def incident_history(
        self,
        *,
        severity: Severity | str | None = None,
        status: Status | str | None = None,
        metric: str | None = None,
        rule: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        page: int = 1,
        page_size: int = 50,
        cursor: str | None = None,
    ) -> Page[Incident]:
        """Incidents newest first, filtered; ``start`` inclusive, ``end`` exclusive.

        ``page`` counts from 1 and costs an OFFSET scan; pass the previous page's
        ``next_cursor`` (with the same filters) to continue in constant time at any depth.
        """
        table = models.incidents
        conditions: list[ColumnElement[bool]] = []
        if severity is not None:
            conditions.append(table.c.severity == check_enum(Severity, "severity", severity))
        if status is not None:
            conditions.append(table.c.status == check_enum(Status, "status", status))
        if metric is not None:
            if not isinstance(metric, str) or not METRIC_PATTERN.fullmatch(metric):
                raise ValidationError("metric", f"{metric!r} is not a metric name")
            conditions.append(table.c.metric == metric)
        if rule is not None:
            conditions.append(table.c.rule == check_rule_name("rule", rule))
        if start is not None:
            conditions.append(table.c.triggered_at >= check_time("start", start))
        if end is not None:
            conditions.append(table.c.triggered_at < check_time("end", end))
            if start is not None and end <= start:
                raise ValidationError("end", "must be after start")
        check_int("page", page, 1, MAX_PAGE)
        check_int("page_size", page_size, 1, MAX_PAGE_SIZE)
        after = Cursor.decode(cursor) if cursor is not None else None

        statement = (
            select(table)
            .where(*conditions)
            .order_by(table.c.triggered_at.desc(), table.c.id.desc())
            .limit(page_size + 1)
        )
        if after is None:
            statement = statement.offset((page - 1) * page_size)
        else:
            statement = statement.where(
                tuple_(table.c.triggered_at, table.c.id)
                < tuple_(literal(after.triggered_at, UTCDateTime()), literal(after.id, Uuid()))
            )
        count = select(func.count()).select_from(table).where(*conditions)
        async with self._read("reading incident history") as connection:
            total = int(await connection.scalar(count) or 0)
            rows = (await connection.execute(statement)).all()
        items = [incident_from_row(row) for row in rows[:page_size]]
        next_cursor = None
        if len(rows) > page_size:
            last = items[-1]
            next_cursor = Cursor(last.triggered_at, last.id).encode()
        return Page(
            items=items,
            total=total,
            page=page,
            page_size=page_size,
            pages=math.ceil(total / page_size),
            next_cursor=next_cursor,
        )

    async def frequency(self, *, days: int, now: datetime) -> list[DayCount]:
        """Incidents triggered per UTC day by severity, for the ``days`` days ending today:
        every day present (zero-filled), oldest first. Read from the maintained daily counts."""
        check_int("days", days, 1, MAX_DAYS)
        today = check_time("now", now).astimezone(UTC).date()
        first = today - timedelta(days=days - 1)
        async with self._read("reading incident frequency") as connection:
            rows = (await connection.execute(_DAY_COUNTS, {"first": first, "last": today})).all()
        by_day: dict[object, dict[str, int]] = {}
        for day, severity, count in rows:
            by_day.setdefault(day, {})[severity.value] = count
        return [
            DayCount(day=day, **by_day.get(day, {}))
            for day in (first + timedelta(days=offset) for offset in range(days))
        ]

    async def auto_recoveries(self, *, limit: int = 50) -> list[Incident]:
        """Incidents that resolved on their own, most recent resolution first."""
        check_int("limit", limit, 1, MAX_PAGE_SIZE)
        table = models.incidents
        statement = (
            select(table)
            .where(table.c.resolved_at.is_not(None), table.c.resolution == Resolution.AUTO)
            .order_by(table.c.resolved_at.desc(), table.c.id.desc())
            .limit(limit)
        )
        async with self._read("reading auto-recoveries") as connection:
            rows = (await connection.execute(statement)).all()
        return [incident_from_row(row) for row in rows]

    async def incident_events(
        self, incident_id: uuid.UUID | str, *, limit: int = MAX_TIMELINE
    ) -> list[Event]:
        """An incident's events in order, oldest first: its timeline (at most ``limit``)."""
        ident = parse_incident_id(incident_id)
        check_int("limit", limit, 1, MAX_TIMELINE)
        table = models.events
        statement = (
            select(table).where(table.c.incident_id == ident).order_by(table.c.id).limit(limit)
        )
        async with self._read("reading an incident's events") as connection:
            rows = (await connection.execute(statement)).all()
        return [event_from_row(row) for row in rows]
