"""The database goes away for a few cycles and comes back."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from vigil.core import EventKind
from vigil.metrics import TaskStatus
from vigil.runtime.monitor import MONITOR_TASK

from ..conftest import POSTGRES_ADMIN_URL
from .support import T0, Clock, Script, cycle, make_vigil

pytestmark = pytest.mark.postgres
LATENCY = "gateway_latency"


@contextlib.asynccontextmanager
async def outage(url: str) -> AsyncIterator[None]:
    """Refuse new connections to the database and cut the open ones, then restore it."""
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()


async def test_an_outage_is_reported_then_caught_up_without_loss_or_doubles(
    migrated_postgres_url: str,
) -> None:
    script, clock = Script(), Clock()
    async with make_vigil(migrated_postgres_url, script, clock) as vigil:
        assert await cycle(vigil, clock, {LATENCY: 150}, script) == []  # breach 1 is stored
        async with outage(migrated_postgres_url):
            for _ in range(3):
                assert await cycle(vigil, clock, {LATENCY: 150}, script) == []
            status = vigil.monitor.status()
            assert not status.database_ok and not status.leader
            assert "database unavailable" in (status.last_error or "")
            # recorded, waiting for the database: three cycles of gateway_latency and of
            # service_failure (the health registry's own metric)
            assert status.pending_samples == 6
            task = vigil.metrics.health.get(MONITOR_TASK)
            assert task is not None and task.status is TaskStatus.ERROR
        events = await cycle(vigil, clock, {LATENCY: 150}, script)
        # the stored streak (1) plus this breach opens the incident: once
        assert [e.kind for e in events] == [EventKind.INCIDENT_OPENED]
        status = vigil.monitor.status()
        assert status.database_ok and status.leader and status.pending_samples == 0
        stored = await vigil.store.events_after(0, limit=100)
        kinds = [e.kind for e in stored]
        assert kinds.count(EventKind.INCIDENT_OPENED) == 1
        assert kinds.count(EventKind.LEADER_CHANGED) == 2  # at start, and after the outage
        history = await vigil.store.metric_history(
            LATENCY, start=T0, end=clock.now + timedelta(seconds=1), max_points=100
        )
        assert sum(p.count for p in history) == 5  # none of the outage's readings was lost
        assert (await cycle(vigil, clock, {LATENCY: 150}, script)) == []  # no second incident
