"""Migration 0013 (cancelled outbox rows) upgrades a database with notifications in it from the
previous head keeping every row, then stores cancelled rows; going down turns them into failed
rows with a note (never sent again either) and keeps the rest; up again works."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select, update

from vigil.store import Store, migrate, models
from vigil.store.records import OutboxStatus

from .conftest import T0, raw

PREVIOUS_HEAD = "0012"
INCIDENT = uuid.UUID("00000000-0000-4000-8000-000000000012")


async def statuses(url: str) -> dict[str, tuple[str, str | None]]:
    outbox = models.outbox
    async with raw(url) as connection:
        rows = await connection.execute(
            select(outbox.c.idempotency_key, outbox.c.status, outbox.c.last_error)
        )
        return {key: (status, error) for key, status, error in rows}


async def test_upgrading_keeps_the_outbox_and_stores_cancelled_rows(database_url: str) -> None:
    await migrate.upgrade(database_url, PREVIOUS_HEAD)
    outbox = models.outbox
    async with raw(database_url) as connection:
        event_id = await connection.scalar(
            models.events.insert()
            .values(
                kind="incident.opened",
                at=T0,
                metric="error_rate",
                rule="error_rate",
                incident_id=INCIDENT,
                payload={},
            )
            .returning(models.events.c.id)
        )
        for n, status in enumerate(("pending", "sent", "failed", "pending")):
            await connection.execute(
                outbox.insert().values(
                    event_id=event_id,
                    channel="ops",
                    idempotency_key=f"k{n}",
                    status=status,
                    attempts=0,
                    next_attempt_at=T0,
                    created_at=T0,
                    incident_id=INCIDENT,
                    repeat=n,
                    last_error="boom" if status == "failed" else None,
                )
            )
    with pytest.raises(sa_exc.IntegrityError):  # the old schema cannot hold it
        async with raw(database_url) as connection:
            await connection.execute(
                update(outbox).where(outbox.c.idempotency_key == "k3").values(status="cancelled")
            )
    before = await statuses(database_url)

    await migrate.upgrade(database_url, "0013")
    assert await statuses(database_url) == before
    store = await Store.open(database_url, upgrade=True)  # and on to the head, if any
    try:
        async with raw(database_url) as connection:
            await connection.execute(
                update(outbox).where(outbox.c.idempotency_key == "k3").values(status="cancelled")
            )
        [cancelled] = await store.list_notifications(status="cancelled")
        assert (cancelled.status, cancelled.repeat) == (OutboxStatus.CANCELLED, 3)

        await migrate.downgrade(database_url, PREVIOUS_HEAD)
        after = await statuses(database_url)
        assert {key: after[key] for key in ("k0", "k1", "k2")} == {
            key: before[key] for key in ("k0", "k1", "k2")
        }
        status, note = after["k3"]
        assert status == "failed" and note is not None and "cancelled" in note

        await migrate.upgrade(database_url, "0013")
        assert await statuses(database_url) == after
        async with raw(database_url) as connection:
            await connection.execute(
                update(outbox).where(outbox.c.idempotency_key == "k0").values(status="cancelled")
            )
        assert [r.idempotency_key for r in await store.list_notifications(status="cancelled")] == [
            "k0"
        ]
    finally:
        await store.close()
