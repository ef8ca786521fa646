"""The schema. ORM rows never leave ``vigil.store``: the repository converts them to core types.

Enums are stored as their lowercase values (VARCHAR with a CHECK constraint, no native enum type),
times as aware UTC (see ``UTCDateTime``). Every index names the query it serves.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Double,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from vigil.core.incidents import Resolution, Severity, Status
from vigil.core.rules import Aggregate, Direction, Kind, Level, NoData, SplitBy
from vigil.core.silences import WindowKind
from vigil.store.records import OutboxStatus, Role
from vigil.store.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Inlined, not a bound parameter: SQLite and PostgreSQL use a partial index only when the
# query's predicate matches the index's literally.
OPEN_PREDICATE = text("status != 'resolved'")
# A snooze that nobody ended and that the leader has not yet marked expired.
LIVE_SNOOZE_PREDICATE = text("ended_at IS NULL")

# INTEGER PRIMARY KEY is SQLite's rowid; BIGINT would not auto-increment there.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _enum(kind: type[StrEnum], name: str) -> Enum:
    return Enum(
        kind,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {  # noqa: RUF012 - SQLAlchemy's own hook
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
        float: Double(),
        int: Integer(),
        str: String(100),
        date: Date(),
    }


class RuleRow(Base):
    """A rule (since 0003 keyed by its ``name``; several rules may watch one metric)."""

    __tablename__ = "rules"

    name: Mapped[str] = mapped_column(primary_key=True)
    kind: Mapped[Kind] = mapped_column(_enum(Kind, "rule_kind"))
    metric: Mapped[str | None]  # NULL for a composite rule (it reads its condition's)
    display_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    unit: Mapped[str] = mapped_column(String(32))
    warning: Mapped[float | None]
    critical: Mapped[float | None]
    direction: Mapped[Direction] = mapped_column(_enum(Direction, "direction"))
    enabled: Mapped[bool] = mapped_column(Boolean)
    breaches_required: Mapped[int]
    recoveries_required: Mapped[int]
    recovery: Mapped[float | None]
    aggregate: Mapped[Aggregate] = mapped_column(_enum(Aggregate, "aggregate"))
    absent_for: Mapped[float | None]
    condition: Mapped[str | None] = mapped_column(Text)
    severity: Mapped[Level | None] = mapped_column(_enum(Level, "rule_severity"))
    split_by: Mapped[SplitBy] = mapped_column(_enum(SplitBy, "split_by"))
    no_data: Mapped[NoData] = mapped_column(_enum(NoData, "no_data"))
    stale_after: Mapped[float | None]
    group_label: Mapped[str | None]  # since 0008: rules declared related share one
    sensitivity: Mapped[float | None]  # since 0011: anomaly and forecast rules
    horizon: Mapped[float | None]
    lookback: Mapped[float | None]
    min_history: Mapped[float | None]
    updated_at: Mapped[datetime | None]
    updated_by: Mapped[str | None]

    # The rules watching one metric (the seed's config-by-metric calls).
    __table_args__ = (Index("ix_rules_metric", "metric"),)


class RuleStateRow(Base):
    """One series' streaks, for restart safety. Its open incident is read from ``incidents``.
    ``series`` is the instance of a rule split per instance, '' otherwise."""

    __tablename__ = "rule_states"

    rule: Mapped[str] = mapped_column(
        ForeignKey("rules.name", ondelete="CASCADE"), primary_key=True
    )
    series: Mapped[str] = mapped_column(primary_key=True)
    breach_streak: Mapped[int]
    normal_streak: Mapped[int]
    critical_streak: Mapped[int]
    updated_at: Mapped[datetime]
    # Since 0007: the levels of the latest evaluations (vigil.core.flapping) and whether the
    # series is flapping, so a restart neither forgets nor restarts flap detection.
    flap_history: Mapped[str] = mapped_column(server_default=text("''"))
    flapping: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class IncidentRow(Base):
    __tablename__ = "incidents"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # No foreign key to rules: a deleted rule's incidents stay in the history.
    metric: Mapped[str]
    severity: Mapped[Severity] = mapped_column(_enum(Severity, "severity"))
    status: Mapped[Status] = mapped_column(_enum(Status, "status"))
    triggered_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[Resolution | None] = mapped_column(_enum(Resolution, "resolution"))
    threshold: Mapped[float]
    value: Mapped[float]
    peak_value: Mapped[float]
    last_value: Mapped[float]
    message: Mapped[str] = mapped_column(Text)
    acknowledged_by: Mapped[str | None]
    acknowledged_at: Mapped[datetime | None]
    notes: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None]
    # Since 0003: the rule (by name) and its series ('' when not split: NOT NULL, so the
    # unique index below compares it), a composite's condition and term values, and whether
    # missing data keeps it open.
    rule: Mapped[str]
    series: Mapped[str] = mapped_column(server_default=text("''"))
    condition: Mapped[str | None] = mapped_column(Text)
    term_values: Mapped[dict[str, float] | None] = mapped_column(JSON)
    no_data: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # Since 0007: its series is flapping (held open, its changes not notified).
    flapping: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # Since 0008: the incident group it joined when it opened (NULL: grouping off, or older).
    group_id: Mapped[uuid.UUID | None]

    __table_args__ = (
        # A group's members.
        Index("ix_incidents_group_id", "group_id"),
        # The last line of defence: at most one open incident per rule and series, whatever
        # the callers do. It also serves the active list and the summary (open incidents).
        Index(
            "uq_incidents_open_rule_series",
            "rule",
            "series",
            unique=True,
            sqlite_where=OPEN_PREDICATE,
            postgresql_where=OPEN_PREDICATE,
        ),
        # History, newest first, unfiltered or by time range; the keyset cursor.
        Index("ix_incidents_triggered_at_id", "triggered_at", "id"),
        # History filtered by status, severity, metric or rule (and its total count).
        Index("ix_incidents_status_triggered_at_id", "status", "triggered_at", "id"),
        Index("ix_incidents_severity_triggered_at_id", "severity", "triggered_at", "id"),
        Index("ix_incidents_metric_triggered_at_id", "metric", "triggered_at", "id"),
        Index("ix_incidents_rule_triggered_at_id", "rule", "triggered_at", "id"),
        # Auto-recoveries (newest resolution first) and retention (resolved before a cutoff).
        Index("ix_incidents_resolved_at", "resolved_at"),
    )


class IncidentGroupRow(Base):
    """An incident group (since 0008). Its status is its members' (``incidents.group_id``),
    derived when read, so the two can never disagree."""

    __tablename__ = "incident_groups"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    opened_at: Mapped[datetime]
    # When its latest member opened: the next incident within the window of it joins.
    last_opened_at: Mapped[datetime]
    label: Mapped[str | None]
    # The correlation window it was formed with; also the least time between two messages
    # about it (Alertmanager's group_interval).
    window_s: Mapped[float]

    # The groups listed newest first.
    __table_args__ = (Index("ix_incident_groups_opened_at", "opened_at"),)


class IncidentDailyCountRow(Base):
    """Incidents triggered per UTC day and severity, kept up to date in the transaction that
    opens or escalates an incident, so the frequency chart never scans ``incidents``."""

    __tablename__ = "incident_daily_counts"

    day: Mapped[date] = mapped_column(primary_key=True)
    severity: Mapped[Severity] = mapped_column(_enum(Severity, "severity"), primary_key=True)
    count: Mapped[int]


class RuleDailyStatsRow(Base):
    """Per rule and UTC day, the figures of its noise (``vigil.store._rule_stats``), kept up to
    date in the transaction that stores each incident event or settles a notification as sent,
    so a rule's statistics never scan ``incidents``. Since 0010."""

    __tablename__ = "rule_daily_stats"

    rule: Mapped[str] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    opened: Mapped[int] = mapped_column(server_default=text("0"))
    resolved_auto: Mapped[int] = mapped_column(server_default=text("0"))
    resolved_manual: Mapped[int] = mapped_column(server_default=text("0"))
    resolve_seconds: Mapped[float] = mapped_column(server_default=text("0"))
    # The part of each resolved incident's time that fell on this day.
    incident_seconds: Mapped[float] = mapped_column(server_default=text("0"))
    acknowledged: Mapped[int] = mapped_column(server_default=text("0"))
    acknowledge_seconds: Mapped[float] = mapped_column(server_default=text("0"))
    flaps: Mapped[int] = mapped_column(server_default=text("0"))
    notifications_sent: Mapped[int] = mapped_column(server_default=text("0"))

    # The noisiest rules: every rule's days in a window.
    __table_args__ = (Index("ix_rule_daily_stats_day", "day"),)


class EventRow(Base):
    """The event log. ``id`` only grows (AUTOINCREMENT on SQLite, a sequence on PostgreSQL)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    metric: Mapped[str | None]
    incident_id: Mapped[uuid.UUID | None]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    rule: Mapped[str | None]  # since 0003: the rule's name, for its history

    __table_args__ = (
        Index("ix_events_incident_id", "incident_id"),
        Index("ix_events_rule_id", "rule", "id"),
        Index("ix_events_at", "at"),
        {"sqlite_autoincrement": True},
    )


class SampleRow(Base):
    __tablename__ = "samples"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instance: Mapped[str]
    metric: Mapped[str]
    time: Mapped[datetime]
    value: Mapped[float]

    __table_args__ = (
        # One metric's history over a time range (charts, backtests).
        Index("ix_samples_metric_time", "metric", "time"),
        # The latest samples of the last interval, and retention.
        Index("ix_samples_time", "time"),
    )


class SampleRollupRow(Base):
    """One metric's samples of one instance and one minute, compacted (``_rollups``): history
    older than ``sample_raw_hours`` is kept this way until the sample retention. Since 0014."""

    __tablename__ = "sample_rollups"

    # Primary key in this order: one metric's buckets over a time range (charts, backtests).
    metric: Mapped[str] = mapped_column(primary_key=True)
    start: Mapped[datetime] = mapped_column(primary_key=True)
    instance: Mapped[str] = mapped_column(primary_key=True)
    count: Mapped[int]
    min: Mapped[float]
    max: Mapped[float]
    sum: Mapped[float]
    last: Mapped[float]  # the newest sample's value, at ``last_at``
    last_at: Mapped[datetime]

    # Retention, and reading every metric's buckets over a time range.
    __table_args__ = (Index("ix_sample_rollups_start", "start"),)


class OutboxRow(Base):
    __tablename__ = "notification_outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str]
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus, "outbox_status"))
    attempts: Mapped[int]
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime]
    # Since 0002: the incident the event is about (deliveries of one incident to one channel
    # keep their order; reminders look up what was last sent), and the reminder number.
    incident_id: Mapped[uuid.UUID | None]
    repeat: Mapped[int] = mapped_column(server_default=text("0"))
    # Since 0008: the incident group the message tells of (NULL: one incident's message).
    group_id: Mapped[uuid.UUID | None]

    __table_args__ = (
        # A group's messages to one channel: one pending at a time, the last one sent.
        Index("ix_notification_outbox_group_id_channel", "group_id", "channel"),
        # What is due: pending rows by next attempt time.
        Index("ix_notification_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        # One incident's deliveries to one channel: their order, and the last one sent.
        Index("ix_notification_outbox_incident_id_channel", "incident_id", "channel"),
    )


class ChannelRow(Base):
    """A notification channel. ``url`` is stored in full: it holds the secrets delivery needs;
    the repository's readers mask it (``Channel.to_dict``)."""

    __tablename__ = "notification_channels"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    url: Mapped[str] = mapped_column(Text)
    min_severity: Mapped[Severity] = mapped_column(_enum(Severity, "severity"))
    events: Mapped[list[str]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean)
    renotify_minutes: Mapped[int | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Since 0009: realtime, or a digest (hourly, daily) at digest_at local time in timezone.
    delivery: Mapped[str] = mapped_column(String(16), server_default=text("'realtime'"))
    digest_at: Mapped[str] = mapped_column(String(8), server_default=text("'09:00'"))
    timezone: Mapped[str] = mapped_column(String(64), server_default=text("'UTC'"))


class EscalationPolicyRow(Base):
    """An escalation policy (since 0009): ``steps`` is ``[{"channels": [...], "wait_minutes":
    n}]``, ``rules`` the rule names that follow it, ``severities`` those it is the default for;
    read back through ``EscalationPolicy.from_dict`` (the core validates it both ways)."""

    __tablename__ = "escalation_policies"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    repeat_minutes: Mapped[int | None]
    rules: Mapped[list[str]] = mapped_column(JSON)
    severities: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    updated_by: Mapped[str | None] = mapped_column(String(200))


class SnoozeRow(Base):
    """A snooze, live until a person ends it or the leader marks it expired (``ended_at``)."""

    __tablename__ = "snoozes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # The snoozed rule's name (since 0003; before, rules were named after their metric).
    metric: Mapped[str] = mapped_column(ForeignKey("rules.name", ondelete="CASCADE"))
    until: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        # At most one live snooze per rule; snoozing again replaces it. Also what the
        # runtime loads: the live ones.
        Index(
            "uq_snoozes_live_metric",
            "metric",
            unique=True,
            sqlite_where=LIVE_SNOOZE_PREDICATE,
            postgresql_where=LIVE_SNOOZE_PREDICATE,
        ),
    )


class MaintenanceWindowRow(Base):
    """A maintenance window: ``spec`` is ``MaintenanceWindow.to_dict()``, read back through
    ``MaintenanceWindow.from_dict`` (the core validates it both ways)."""

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    kind: Mapped[WindowKind] = mapped_column(_enum(WindowKind, "window_kind"))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(unique=True)
    role: Mapped[str] = mapped_column(
        Enum(
            *(role.value for role in (Role.VIEWER, Role.ADMIN)),
            name="user_role",
            native_enum=False,
            create_constraint=True,
            length=16,
        )
    )
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str]
    role: Mapped[Role] = mapped_column(_enum(Role, "token_role"))
    token_hash: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # An ingest token bound to one instance name may push samples for that instance only.
    instance: Mapped[str | None]


class SignedOutSessionRow(Base):
    """A session signed out before it expired, until it expires: sign-out survives a restart
    and is seen by every instance sharing the secret key."""

    __tablename__ = "signed_out_sessions"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_name: Mapped[str]
    # Cleanup deletes the expired ones.
    expires_at: Mapped[datetime] = mapped_column(index=True)


def _table(row: type[Base]) -> Table:
    table = row.__table__
    assert isinstance(table, Table)
    return table


# The repository runs Core statements on these tables: no identity map, no unit of work, so a
# page of rows costs little more than the plain SQL it compiles to.
rules = _table(RuleRow)
rule_states = _table(RuleStateRow)
incidents = _table(IncidentRow)
incident_daily_counts = _table(IncidentDailyCountRow)
incident_groups = _table(IncidentGroupRow)
rule_daily_stats = _table(RuleDailyStatsRow)
events = _table(EventRow)
samples = _table(SampleRow)
sample_rollups = _table(SampleRollupRow)
outbox = _table(OutboxRow)
channels = _table(ChannelRow)
escalation_policies = _table(EscalationPolicyRow)
snoozes = _table(SnoozeRow)
maintenance_windows = _table(MaintenanceWindowRow)
users = _table(UserRow)
api_tokens = _table(ApiTokenRow)
signed_out_sessions = _table(SignedOutSessionRow)
