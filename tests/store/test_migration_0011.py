"""Migration 0011 (anomaly and forecast rules) upgrades a database with rules in it from the
previous head, stores rules of the new kinds, and goes down (dropping only those) and up again."""

from __future__ import annotations

from sqlalchemy import text

from vigil.core import Kind, Rule
from vigil.store import Store, migrate

from .conftest import T0, raw

PREVIOUS_HEAD = "0006"


async def test_upgrading_keeps_the_rules_and_stores_the_new_kinds(database_url: str) -> None:
    await migrate.upgrade(database_url, PREVIOUS_HEAD)
    async with raw(database_url) as connection:
        await connection.execute(
            text(
                "INSERT INTO rules (name, kind, metric, display_name, description, unit, "
                "warning, critical, direction, enabled, breaches_required, recoveries_required, "
                "aggregate, split_by, no_data) VALUES ('lat', 'threshold', 'gateway_latency', "
                "'Lat', '', 'ms', 100, 200, 'above', true, 2, 3, 'max', 'none', 'keep')"
            )
        )

    await migrate.upgrade(database_url, "0011")
    # Later migrations add tables of their own: the store opens at the head, as SQLite does
    # on its own, and the rules 0011 kept are read there.
    store = await Store.open(database_url, upgrade=True)
    try:
        kept = await store.get_rule("lat")
        assert (kept.kind, kept.warning, kept.critical, kept.horizon) == (
            Kind.THRESHOLD,
            100.0,
            200.0,
            None,
        )
        anomaly = Rule(name="odd", kind=Kind.ANOMALY, metric="gateway_latency", sensitivity=3)
        forecast = Rule(
            name="leak", kind=Kind.FORECAST, metric="memory_usage", critical=480, horizon=7200
        )
        for rule in (anomaly, forecast):
            await store.add_rule(rule, by="ana", now=T0)
        stored = {rule.name: rule for rule in await store.list_rules()}
        assert stored["odd"].same_as(anomaly) and stored["leak"].same_as(forecast)
        assert stored["leak"].lookback == 7200.0

        await migrate.downgrade(database_url, PREVIOUS_HEAD)
        async with raw(database_url) as connection:
            names = set((await connection.execute(text("SELECT name FROM rules"))).scalars())
            assert "lat" in names and not names & {"odd", "leak"}  # the seeded ten stay too
        await migrate.upgrade(database_url, "0011")
        assert {rule.name for rule in await store.list_rules()} == names
    finally:
        await store.close()
