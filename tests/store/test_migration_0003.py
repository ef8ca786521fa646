"""Migration 0003 (the open rule model) on a database written by the previous release: a
0002 database with rules, incidents, streaks, events, notifications and snoozes upgrades with
nothing lost, goes down again keeping what 0002 can hold, and comes back up."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from vigil.core import Evaluator, EventKind, Kind, Rule, RuleState, Severity, SplitBy, Status
from vigil.core.catalogue import DEFAULT_RULES
from vigil.store import Store, migrate
from vigil.store.types import UTCDateTime

from .conftest import T0, raw

OPEN_ID = uuid.UUID(int=1)
CLOSED_ID = uuid.UUID(int=2)
LATER = T0 + timedelta(minutes=10)


def _table(table: str, /, **columns: Any) -> sa.TableClause:
    return sa.table(table, *(sa.column(key, type_) for key, type_ in columns.items()))


TIME = UTCDateTime()
RULES = _table(
    "rules",
    metric=sa.String(),
    display_name=sa.String(),
    description=sa.Text(),
    unit=sa.String(),
    warning=sa.Float(),
    critical=sa.Float(),
    direction=sa.String(),
    enabled=sa.Boolean(),
    breaches_required=sa.Integer(),
    recoveries_required=sa.Integer(),
    recovery=sa.Float(),
    aggregate=sa.String(),
    updated_at=TIME,
    updated_by=sa.String(),
)
STATES = _table(
    "rule_states",
    metric=sa.String(),
    breach_streak=sa.Integer(),
    normal_streak=sa.Integer(),
    critical_streak=sa.Integer(),
    updated_at=TIME,
)
INCIDENTS = _table(
    "incidents",
    id=sa.Uuid(),
    metric=sa.String(),
    severity=sa.String(),
    status=sa.String(),
    triggered_at=TIME,
    resolved_at=TIME,
    resolution=sa.String(),
    threshold=sa.Float(),
    value=sa.Float(),
    peak_value=sa.Float(),
    last_value=sa.Float(),
    message=sa.Text(),
    acknowledged_by=sa.String(),
    acknowledged_at=TIME,
    notes=sa.Text(),
    resolved_by=sa.String(),
)
EVENTS = _table(
    "events",
    kind=sa.String(),
    at=TIME,
    metric=sa.String(),
    incident_id=sa.Uuid(),
    payload=sa.JSON(),
)
CHANNELS = _table(
    "notification_channels",
    name=sa.String(),
    url=sa.Text(),
    min_severity=sa.String(),
    events=sa.JSON(),
    enabled=sa.Boolean(),
    renotify_minutes=sa.Integer(),
    created_at=TIME,
    updated_at=TIME,
)
OUTBOX = _table(
    "notification_outbox",
    event_id=sa.Integer(),
    channel=sa.String(),
    idempotency_key=sa.String(),
    status=sa.String(),
    attempts=sa.Integer(),
    next_attempt_at=TIME,
    created_at=TIME,
    incident_id=sa.Uuid(),
    repeat=sa.Integer(),
)
SNOOZES = _table(
    "snoozes",
    metric=sa.String(),
    until=TIME,
    reason=sa.Text(),
    by=sa.String(),
    created_at=TIME,
)


def _incident(ident: uuid.UUID, metric: str, *, resolved: bool) -> dict[str, Any]:
    return {
        "id": ident,
        "metric": metric,
        "severity": "warning",
        "status": "resolved" if resolved else "acknowledged",
        "triggered_at": T0,
        "resolved_at": LATER if resolved else None,
        "resolution": "auto" if resolved else None,
        "threshold": 1.0,
        "value": 2.0,
        "peak_value": 3.0,
        "last_value": 2.5,
        "message": f"{metric} exceeded warning threshold",
        "acknowledged_by": None if resolved else "ana",
        "acknowledged_at": None if resolved else T0,
        "notes": None if resolved else "looking",
        "resolved_by": None,
    }


def _payload(incident: dict[str, Any]) -> dict[str, Any]:
    """An event as release 0002 wrote it: no rule anywhere."""
    snapshot = {
        key: (value.isoformat() if hasattr(value, "isoformat") else value)
        for key, value in incident.items()
    }
    snapshot["id"] = str(incident["id"])
    return {
        "kind": "incident.opened",
        "at": T0.isoformat(),
        "metric": incident["metric"],
        "incident": snapshot,
        "by": None,
        "data": {},
    }


async def _write_a_0002_database(url: str) -> None:
    assert await migrate.upgrade(url, "0002") == "0002"
    opened = _incident(OPEN_ID, "error_rate", resolved=False)
    closed = _incident(CLOSED_ID, "gateway_latency", resolved=True)
    async with raw(url) as connection:
        await connection.execute(
            RULES.insert().values(
                metric="queue_depth",
                display_name="Queue Depth",
                description="",
                unit="jobs",
                warning=None,
                critical=500.0,
                direction="above",
                enabled=True,
                breaches_required=2,
                recoveries_required=3,
                recovery=None,
                aggregate="sum",
                updated_at=T0,
                updated_by="ana",
            )
        )
        await connection.execute(INCIDENTS.insert(), [opened, closed])
        await connection.execute(
            STATES.insert(),
            [
                {
                    "metric": "error_rate",
                    "breach_streak": 4,
                    "normal_streak": 1,
                    "critical_streak": 0,
                    "updated_at": T0,
                },
                {
                    "metric": "queue_depth",
                    "breach_streak": 1,
                    "normal_streak": 0,
                    "critical_streak": 0,
                    "updated_at": T0,
                },
            ],
        )
        await connection.execute(
            EVENTS.insert().values(
                kind="incident.opened",
                at=T0,
                metric="error_rate",
                incident_id=OPEN_ID,
                payload=_payload(opened),
            )
        )
        await connection.execute(
            CHANNELS.insert().values(
                name="ops",
                url="json://127.0.0.1:9/hook",
                min_severity="warning",
                events=["opened"],
                enabled=True,
                renotify_minutes=None,
                created_at=T0,
                updated_at=T0,
            )
        )
        event_id = await connection.scalar(sa.text("SELECT max(id) FROM events"))
        await connection.execute(
            OUTBOX.insert().values(
                event_id=event_id,
                channel="ops",
                idempotency_key="k-1",
                status="pending",
                attempts=0,
                next_attempt_at=T0,
                created_at=T0,
                incident_id=OPEN_ID,
                repeat=0,
            )
        )
        await connection.execute(
            SNOOZES.insert().values(
                metric="queue_depth", until=LATER, reason="deploy", by="ana", created_at=T0
            )
        )


async def _check_the_0002_data(store: Store) -> None:
    rules = {rule.name: rule for rule in await store.list_rules()}
    assert set(rules) == {rule.name for rule in DEFAULT_RULES} | {"queue_depth"}
    custom = rules["queue_depth"]
    assert (custom.kind, custom.metric, custom.critical, custom.aggregate) == (
        Kind.THRESHOLD,
        "queue_depth",
        500.0,
        "sum",
    )
    assert (custom.split_by, custom.updated_by) == (SplitBy.NONE, "ana")
    opened = await store.get_incident(OPEN_ID)
    assert (opened.rule, opened.instance, opened.status, opened.notes) == (
        "error_rate",
        None,
        Status.ACKNOWLEDGED,
        "looking",
    )
    closed = await store.get_incident(CLOSED_ID)
    assert (closed.rule, closed.status, closed.peak_value) == (
        "gateway_latency",
        Status.RESOLVED,
        3.0,
    )
    assert [i.id for i in await store.active_incidents()] == [OPEN_ID]
    states = await store.load_states()
    assert states["error_rate"] == RuleState(4, 1, 0, opened)
    assert states["queue_depth"] == RuleState(1, 0, 0, None)
    [event] = [e for e in await store.events_after(0) if e.kind is EventKind.INCIDENT_OPENED]
    assert (event.rule, event.incident) == (
        "error_rate",
        opened.observed(last_value=2.5, peak_value=3.0, no_data=False),
    )
    assert [e.id for e in await store.rule_events("error_rate")] == [event.id]
    [row] = await store.list_notifications()
    assert (row.channel, row.incident_id) == ("ops", OPEN_ID)
    [snooze] = await store.active_snoozes(now=T0)
    assert (snooze.metric, snooze.reason) == ("queue_depth", "deploy")
    # a restarted monitor resumes every streak from it
    evaluator = Evaluator(rules.values(), states=states)
    assert evaluator.state("error_rate").incident == opened


async def test_a_0002_database_upgrades_with_nothing_lost_and_goes_down_and_up(
    database_url: str,
) -> None:
    await _write_a_0002_database(database_url)
    assert await migrate.upgrade(database_url) == migrate.head_revision()
    async with await Store.open(database_url, upgrade=False) as store:
        await _check_the_0002_data(store)
        # what only 0003 can hold: a composite rule and a split series with an incident
        composite = Rule(name="slow_and_failing", kind=Kind.COMPOSITE, condition="error_rate > 1")
        await store.add_rule(composite, by="ana", now=LATER)
        assert (await store.frequency(days=1, now=T0))[0] is not None

    assert await migrate.downgrade(database_url, "0002") == "0002"
    async with raw(database_url) as connection:
        names = set((await connection.scalars(sa.text("SELECT metric FROM rules"))).all())
        incidents = (await connection.scalars(sa.text("SELECT metric FROM incidents"))).all()
        outbox = (
            await connection.scalars(sa.text("SELECT channel FROM notification_outbox"))
        ).all()
    assert "queue_depth" in names and "slow_and_failing" not in names
    assert sorted(incidents) == ["error_rate", "gateway_latency"]
    assert outbox == ["ops"]

    assert await migrate.upgrade(database_url) == migrate.head_revision()
    async with await Store.open(database_url, upgrade=False) as store:
        await _check_the_0002_data(store)
        assert Severity.WARNING in {i.severity for i in await store.active_incidents()}
