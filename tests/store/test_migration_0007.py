"""Migration 0007 (flap detection) on a database written by the previous release: a 0006
database with streaks and an open incident upgrades with nothing lost (calm, not flapping),
keeps the flap state a cycle writes, goes down keeping its rows, and comes back up."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from vigil.core import Evaluator
from vigil.core.flapping import FlapSettings
from vigil.notify import NotifyOn
from vigil.store import Store, migrate
from vigil.store.types import UTCDateTime

from .conftest import T0, raw, table_names

PREVIOUS_HEAD = "0006"
OPEN_ID = uuid.UUID(int=7)
TIME = UTCDateTime()


def _table(table: str, /, **columns: Any) -> sa.TableClause:
    return sa.table(table, *(sa.column(key, type_) for key, type_ in columns.items()))


STATES = _table(
    "rule_states",
    rule=sa.String(),
    series=sa.String(),
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
    threshold=sa.Float(),
    value=sa.Float(),
    peak_value=sa.Float(),
    last_value=sa.Float(),
    message=sa.Text(),
    rule=sa.String(),
    series=sa.String(),
    no_data=sa.Boolean(),
)
CHANNELS = _table(
    "notification_channels",
    name=sa.String(),
    url=sa.Text(),
    min_severity=sa.String(),
    events=sa.JSON(),
    enabled=sa.Boolean(),
    created_at=TIME,
    updated_at=TIME,
)


async def _columns(url: str, table: str) -> set[str]:
    async with raw(url) as connection:
        return await connection.run_sync(
            lambda sync: {c["name"] for c in sa.inspect(sync).get_columns(table)}
        )


async def test_upgrading_keeps_streaks_and_incidents_and_adds_the_flap_state(
    database_url: str,
) -> None:
    await migrate.upgrade(database_url, PREVIOUS_HEAD)
    async with raw(database_url) as connection:
        await connection.execute(
            STATES.insert().values(
                rule="gateway_latency",
                series="",
                breach_streak=3,
                normal_streak=1,
                critical_streak=3,
                updated_at=T0,
            )
        )
        await connection.execute(
            INCIDENTS.insert().values(
                id=OPEN_ID,
                metric="gateway_latency",
                severity="critical",
                status="active",
                triggered_at=T0,
                threshold=200.0,
                value=250.0,
                peak_value=250.0,
                last_value=250.0,
                message="Gateway Latency exceeded critical threshold: 250.00 ms >= 200.00 ms",
                rule="gateway_latency",
                series="",
                no_data=False,
            )
        )
        for name, events in [("all", ["opened", "escalated", "acknowledged", "resolved"])]:
            await connection.execute(
                CHANNELS.insert().values(
                    name=name,
                    url="json://127.0.0.1:9/hook",
                    min_severity="info",
                    events=events,
                    enabled=True,
                    created_at=T0,
                    updated_at=T0,
                )
            )
        await connection.execute(
            CHANNELS.insert().values(
                name="acks",
                url="json://127.0.0.1:9/acks",
                min_severity="info",
                events=["acknowledged"],
                enabled=True,
                created_at=T0,
                updated_at=T0,
            )
        )
    assert "flapping" not in await _columns(database_url, "incidents")

    await migrate.upgrade(database_url)
    store = await Store.open(database_url)
    try:
        states = await store.load_states()
        state = states["gateway_latency"]
        assert (state.breach_streak, state.normal_streak, state.critical_streak) == (3, 1, 3)
        assert (state.flap_history, state.flapping) == ("", False)
        assert state.incident is not None and state.incident.id == OPEN_ID
        assert not state.incident.flapping
        # A channel told of openings is told of flapping; one that chose otherwise is not.
        channels = {c.channel.name: c.channel.events for c in await store.list_channels()}
        assert NotifyOn.FLAPPING in channels["all"]
        assert channels["acks"] == {NotifyOn.ACKNOWLEDGED}

        # A cycle of a flapping series writes its history and marks the incident; a
        # restarted monitor resumes both.
        rules = await store.list_rules()
        evaluator = Evaluator(rules, states=states, flap=FlapSettings(window=5, high=50, low=10))
        for i, value in enumerate([50.0, 250.0, 50.0, 250.0]):
            result = evaluator.evaluate({"gateway_latency": value}, now=T0.replace(minute=i + 1))
            await store.commit_cycle(samples=[], result=result, now=T0.replace(minute=i + 1))
        resumed = (await store.load_states())["gateway_latency"]
        assert resumed == evaluator.state("gateway_latency")
        assert resumed.flapping and resumed.flap_history == "cnc"
        incident = await store.get_incident(OPEN_ID)
        assert incident.flapping and incident.is_open

        await migrate.downgrade(database_url, PREVIOUS_HEAD)
        assert "flapping" not in await _columns(database_url, "incidents")
        assert "flap_history" not in await _columns(database_url, "rule_states")
        async with raw(database_url) as connection:
            ids = (await connection.execute(sa.select(INCIDENTS.c.id))).scalars().all()
            streaks = (await connection.execute(sa.select(STATES.c.breach_streak))).all()
        assert ids == [OPEN_ID]
        async with raw(database_url) as connection:
            kept = (await connection.execute(sa.select(CHANNELS.c.events))).scalars().all()
        assert sorted(map(len, kept)) == [1, 4]
        assert len(streaks) == 1
        await migrate.upgrade(database_url)
        again = (await store.load_states())["gateway_latency"]
        assert (again.flap_history, again.flapping) == ("", False)
        assert again.incident is not None and not again.incident.flapping
        assert "incidents" in await table_names(database_url)
    finally:
        await store.close()
