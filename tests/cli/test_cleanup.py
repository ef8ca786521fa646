"""``vigil cleanup``, run as a user runs it, against both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from vigil.core.samples import Sample
from vigil.store import Store

from .support import vigil

LONG_AGO = datetime(2020, 3, 1, 12, 0, tzinfo=UTC)  # far past the 30-day sample retention


async def _old_samples(url: str) -> None:
    store = await Store.open(url, upgrade=True)
    try:
        await store.add_samples([Sample("bot", "gateway_latency", LONG_AGO, 1.0)] * 3)
    finally:
        await store.close()


def test_cleanup_reports_what_it_deleted(migrated_url: str) -> None:
    asyncio.run(_old_samples(migrated_url))

    code, output = vigil(migrated_url, "cleanup", "--dry-run")
    assert code == 0 and "Would delete 0 incidents, 0 events, 3 samples" in output
    code, output = vigil(migrated_url, "cleanup", "--batch-size", "2")
    assert code == 0 and "Deleted 0 incidents, 0 events, 3 samples" in output
    code, output = vigil(migrated_url, "cleanup")
    assert code == 0 and "Deleted 0 incidents, 0 events, 0 samples" in output


async def _samples_of_two_days_ago(url: str) -> None:
    store = await Store.open(url, upgrade=True)
    try:
        two_days_ago = datetime.now(UTC) - timedelta(days=2)
        await store.add_samples([Sample("bot", "gateway_latency", two_days_ago, 1.0)] * 4)
    finally:
        await store.close()


def test_cleanup_compacts_what_is_older_than_the_raw_hours(migrated_url: str) -> None:
    asyncio.run(_samples_of_two_days_ago(migrated_url))

    code, output = vigil(migrated_url, "cleanup", "--dry-run")
    assert code == 0 and "would compact 4 older samples into minute rollups" in output
    code, output = vigil(migrated_url, "cleanup")
    assert code == 0 and "0 samples, 0 minute rollups" in output
    assert "compacted 4 older samples into minute rollups" in output
    code, output = vigil(migrated_url, "cleanup")
    assert code == 0 and "compacted 0 older samples" in output
