"""Migration 0010 (each rule's daily noise counters) fills its table from the history a
database already holds: after going down to 0006 and up again, every rule's figures are the
ones the store had kept as that history was written."""

from __future__ import annotations

from sqlalchemy import text

from vigil.store import RuleStats, Store, migrate

from .conftest import raw, table_names
from .test_rule_stats import NOW, hand_made_history, send_everything

PREVIOUS_HEAD = "0009"
RULES = ("gateway_latency", "error_rate", "memory_usage")


async def figures(store: Store) -> dict[tuple[str, int], RuleStats]:
    return {
        (rule, days): await store.rule_stats(rule, days=days, now=NOW)
        for rule in RULES
        for days in (7, 30, 90)
    }


async def test_the_backfill_gives_the_figures_kept_as_the_history_was_written(
    database_url: str,
) -> None:
    await migrate.upgrade(database_url)
    store = await Store.open(database_url)
    try:
        await hand_made_history(store)
        assert await send_everything(store, now=NOW) == 9
        kept = await figures(store)
        assert kept["gateway_latency", 30].incidents == 3  # the history is there to fill from

        await migrate.downgrade(database_url, PREVIOUS_HEAD)
        assert "rule_daily_stats" not in await table_names(database_url)
        async with raw(database_url) as connection:
            incidents = await connection.scalar(text("SELECT count(*) FROM incidents"))
            sent = await connection.scalar(
                text("SELECT count(*) FROM notification_outbox WHERE status = 'sent'")
            )
        assert (incidents, sent) == (4, 10)  # the previous release's rows, all kept

        await migrate.upgrade(database_url)
        assert await figures(store) == kept
        assert [s.rule for s in await store.noisiest_rules(days=7, now=NOW)] == [
            "gateway_latency",
            "error_rate",
        ]
    finally:
        await store.close()


async def test_an_empty_database_upgrades_with_an_empty_table(database_url: str) -> None:
    await migrate.upgrade(database_url, PREVIOUS_HEAD)
    await migrate.upgrade(database_url)
    async with raw(database_url) as connection:
        assert await connection.scalar(text("SELECT count(*) FROM rule_daily_stats")) == 0
