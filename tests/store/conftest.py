"""Every storage test runs twice: on SQLite and on PostgreSQL, each freshly migrated (a copy of
a migrated template file, a migrated database emptied; see tests/conftest.py)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncConnection

from vigil.core.evaluation import CycleResult
from vigil.core.events import Event, EventKind
from vigil.core.incidents import Incident, Severity, Status, resolve
from vigil.notify import Channel
from vigil.store import Store
from vigil.store.engine import create_engine
from vigil.store.memory import MemoryStore

from ..conftest import MigratedPostgres

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOOK = "json://127.0.0.1:8080/hook?+Authorization=Bearer%20s3cret"
AnyStore = Store | MemoryStore


@pytest.fixture
async def store(migrated_url: str) -> AsyncIterator[Store]:
    """A migrated store (default rules seeded); ``database_url`` is its database."""
    opened = await Store.open(migrated_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_kind(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """Synchronous on purpose: the session's database fixtures run their own event loop."""
    if request.param == "memory":
        return "memory", None
    if request.param == "sqlite":
        return "sqlite", request.getfixturevalue("migrated_sqlite_url")
    template: MigratedPostgres = request.getfixturevalue("postgres_template")
    return "postgres", template.url


@pytest.fixture
async def any_store(
    store_kind: tuple[str, str | None], request: pytest.FixtureRequest
) -> AsyncIterator[AnyStore]:
    """A store of each kind where the runtime's ports are checked: the memory store, and a
    migrated ``Store`` on SQLite and on PostgreSQL (see tests/conftest.py for the databases)."""
    name, url = store_kind
    if url is None:
        yield MemoryStore()
        return
    if name == "postgres":
        template: MigratedPostgres = request.getfixturevalue("postgres_template")
        await template.reset()
    async with await Store.open(url) as opened:
        yield opened


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


async def add_channel(store: Store, name: str = "ops", **fields: object) -> Channel:
    """A channel (a webhook nobody listens on: the store never sends)."""
    stored, _ = await store.add_channel({"name": name, "url": HOOK, **fields}, now=T0)
    return stored.channel


@contextlib.asynccontextmanager
async def raw(url: str) -> AsyncIterator[AsyncConnection]:
    """A connection of the test's own, in a transaction committed at the end: for what no
    ``Store`` method does (break a stored row as an apprise upgrade would, read the schema)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            yield connection
    finally:
        await engine.dispose()


async def table_names(url: str) -> list[str]:
    async with raw(url) as connection:
        return sorted(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
