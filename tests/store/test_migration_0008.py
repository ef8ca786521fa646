"""Migration 0008 (incident groups) on a database written by the previous release: its
incidents and notifications keep every value, belong to no group, and still work; new
incidents are grouped; going down and up again keeps the incidents."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import text

from vigil.core import EventKind, Status
from vigil.core.evaluation import CycleResult
from vigil.core.events import Event
from vigil.store import Store, migrate
from vigil.store.types import UTCDateTime

from .conftest import T0, make_incident, raw, table_names

PREVIOUS_HEAD = "0006"
OLD_ID = uuid.UUID(int=41)
TIME = UTCDateTime()


def _table(table: str, /, **columns: Any) -> sa.TableClause:
    return sa.table(table, *(sa.column(key, type_) for key, type_ in columns.items()))


INCIDENTS = _table(
    "incidents",
    id=sa.Uuid(),
    metric=sa.String(),
    severity=sa.String(),
    status=sa.String(),
    triggered_at=TIME,
    threshold=sa.Float(),
    value=sa.Float(),
    peak_value=sa.Float(),
    last_value=sa.Float(),
    message=sa.Text(),
    rule=sa.String(),
    series=sa.String(),
    no_data=sa.Boolean(),
)
EVENTS = _table(
    "events",
    id=sa.Integer(),
    kind=sa.String(),
    at=TIME,
    metric=sa.String(),
    incident_id=sa.Uuid(),
    payload=sa.JSON(),
    rule=sa.String(),
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


async def test_upgrading_keeps_incidents_and_messages_without_a_group(database_url: str) -> None:
    await migrate.upgrade(database_url, PREVIOUS_HEAD)
    async with raw(database_url) as connection:
        await connection.execute(
            INCIDENTS.insert().values(
                id=OLD_ID,
                metric="gateway_latency",
                severity="warning",
                status="active",
                triggered_at=T0,
                threshold=100.0,
                value=150.0,
                peak_value=170.0,
                last_value=160.0,
                message="Gateway Latency exceeded warning threshold",
                rule="gateway_latency",
                series="",
                no_data=False,
            )
        )
        event_id = await connection.scalar(
            EVENTS.insert()
            .values(
                kind="incident.opened",
                at=T0,
                metric="gateway_latency",
                incident_id=OLD_ID,
                payload={"kind": "incident.opened", "at": T0.isoformat()},
                rule="gateway_latency",
            )
            .returning(EVENTS.c.id)
        )
        await connection.execute(
            OUTBOX.insert().values(
                event_id=event_id,
                channel="ops",
                idempotency_key="k1",
                status="sent",
                attempts=1,
                next_attempt_at=T0,
                created_at=T0,
                incident_id=OLD_ID,
                repeat=0,
            )
        )
    assert "incident_groups" not in await table_names(database_url)

    await migrate.upgrade(database_url)
    store = await Store.open(database_url)
    try:
        old = await store.get_incident(OLD_ID)
        assert (old.group, old.status, old.peak_value, old.last_value) == (
            None,
            Status.ACTIVE,
            170.0,
            160.0,
        )
        assert [i.id for i in await store.active_incidents()] == [OLD_ID]
        [row] = await store.list_notifications()
        assert (row.idempotency_key, row.group_id, row.incident_id) == ("k1", None, OLD_ID)
        assert await store.list_groups() == []
        rules = await store.list_rules()
        assert len(rules) == 10 and {r.group_label for r in rules} == {None}
        # The old incident lives on as before; a new one is grouped.
        acknowledged, _ = await store.acknowledge_incident(OLD_ID, by="ana", now=T0)
        assert acknowledged.status is Status.ACKNOWLEDGED
        later = T0 + timedelta(minutes=1)
        new = make_incident(metric="error_rate", at=later)
        event = Event.for_incident(EventKind.INCIDENT_OPENED, new, at=later)
        [stored] = await store.commit_cycle(
            samples=[],
            result=CycleResult(events=[event]),
            now=later,
            group_window=timedelta(seconds=60),
        )
        assert stored.incident is not None and stored.incident.group is not None
        [group] = await store.list_groups()
        assert [m.id for m in group.members] == [new.id]  # the old incident joined nothing

        await migrate.downgrade(database_url, PREVIOUS_HEAD)
        assert "incident_groups" not in await table_names(database_url)
        async with raw(database_url) as connection:
            ids = (await connection.execute(text("SELECT id FROM incidents"))).scalars().all()
            assert len(ids) == 2
        await migrate.upgrade(database_url)
        assert {i.group for i in await store.active_incidents()} == {None}
    finally:
        await store.close()
