"""Every storage test runs twice: on a fresh SQLite file and on a fresh PostgreSQL schema."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from vigil.core.evaluation import CycleResult
from vigil.core.events import Event, EventKind
from vigil.core.incidents import Incident, Severity, Status, resolve
from vigil.store import Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def _reset_postgres(url: str) -> None:
    """Empty the run's database: one schema dropped and recreated is far cheaper than a
    database per test, and just as clean."""
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_kind(request: pytest.FixtureRequest) -> tuple[str, str]:
    # Synchronous on purpose: the session's postgres_url fixture runs its own event loop.
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return request.param, request.getfixturevalue(fixture)


@pytest.fixture
async def database_url(database_kind: tuple[str, str]) -> str:
    """An empty database of each kind."""
    kind, url = database_kind
    if kind == "postgres":
        await _reset_postgres(url)
    return url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A migrated store (default rules seeded)."""
    opened = await Store.open(database_url, upgrade=True)
    try:
        yield opened
    finally:
        await opened.close()


def make_incident(
    *,
    metric: str = "gateway_latency",
    severity: Severity = Severity.WARNING,
    at: datetime = T0,
    value: float = 150.0,
) -> Incident:
    threshold = 200.0 if severity is Severity.CRITICAL else 100.0
    return Incident(
        id=uuid.uuid4(),
        metric=metric,
        severity=severity,
        status=Status.ACTIVE,
        triggered_at=at,
        threshold=threshold,
        value=value,
        peak_value=value,
        last_value=value,
        message=f"{metric} exceeded {severity} threshold",
    )


async def open_incident(
    store: Store, incident: Incident | None = None, **fields: object
) -> Incident:
    """Open an incident the way the monitor does: through a committed cycle."""
    opened = incident if incident is not None else make_incident(**fields)  # type: ignore[arg-type]
    event = Event.for_incident(EventKind.INCIDENT_OPENED, opened, at=opened.triggered_at)
    [stored] = await store.commit_cycle(
        samples=[], result=CycleResult(events=[event]), now=opened.triggered_at
    )
    assert stored.incident is not None
    return stored.incident


async def auto_resolve(store: Store, incident: Incident, *, at: datetime) -> Incident:
    """Resolve an incident the way the monitor does when a rule recovers."""
    _, event = resolve(incident, now=at)
    [stored] = await store.commit_cycle(samples=[], result=CycleResult(events=[event]), now=at)
    assert stored.incident is not None
    return stored.incident
