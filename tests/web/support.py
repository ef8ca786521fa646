"""A real Vigil with users, tokens and the API in front of it, for the web tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from argon2 import PasswordHasher
from fastapi import FastAPI

from vigil.core import Event, EventKind, Incident, Severity, Status, resolve
from vigil.core.evaluation import CycleResult
from vigil.runtime import Vigil
from vigil.runtime.notifier import DeliveryPolicy
from vigil.store import Store
from vigil.web import close_streams, create_app
from vigil.web.accounts import add_user, create_token
from vigil.web.security import Passwords
from vigil.web.serve import VigilServer, server_for

from ..runtime.support import DEADLINE, T0, Clock, Script, Started, cycle, settings, wait_until

LATENCY = "gateway_latency"
PASSWORD = "correct horse battery"
# Verifying a hash costs what its own parameters say: cheap ones keep the tests quick.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

__all__ = [
    "DEADLINE",
    "LATENCY",
    "PASSWORD",
    "T0",
    "Api",
    "FakeClock",
    "running_api",
    "wait_until",
]


class FakeClock:
    """A clock that moves only when a test moves it (``now += seconds``): a limiter given it
    judges attempts by the test's time, not by how long a busy machine takes."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Api:
    vigil: Vigil
    app: FastAPI
    client: httpx.AsyncClient
    script: Script
    clock: Clock
    tokens: dict[str, str] = field(default_factory=dict)  # role -> secret

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def request(
        self,
        method: str,
        path: str,
        *,
        role: str,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        return await self.client.request(
            method, path, headers={**self.auth(role), **(headers or {})}, **kwargs
        )

    async def get(self, path: str, *, role: str = "viewer", **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, role=role, **kwargs)

    async def post(self, path: str, *, role: str = "admin", **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, role=role, **kwargs)

    async def put(self, path: str, *, role: str = "admin", **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", path, role=role, **kwargs)

    async def cycle(self, values: Mapping[str, float | None]) -> list[Event]:
        return await cycle(self.vigil, self.clock, values, self.script)

    async def breach(self, metric: str, value: float, times: int = 2) -> list[Event]:
        """Readings that open (or escalate) an incident the way the monitor does."""
        events = []
        for _ in range(times):
            events += await self.cycle({metric: value})
        return events

    async def sign_in(self, name: str = "ana", password: str = PASSWORD) -> str:
        """Sign the client in with a cookie; returns the CSRF token."""
        response = await self.client.post(
            "/api/auth/login", json={"name": name, "password": password}
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["csrf_token"]
        return token


async def seed_accounts(store: Store) -> dict[str, str]:
    passwords = Passwords(CHEAP_HASHER)
    await add_user(store, "ana", role="admin", password=PASSWORD, passwords=passwords)
    await add_user(store, "vic", role="viewer", password=PASSWORD, passwords=passwords)
    tokens = {}
    for role in ("admin", "viewer", "ingest"):
        _, tokens[role] = await create_token(store, f"{role}-bot", role=role)
    return tokens


@contextlib.asynccontextmanager
async def running_api(
    url: str,
    *,
    delivery: DeliveryPolicy | None = None,
    settings_changes: Mapping[str, Any] | None = None,
    **app_options: Any,
) -> AsyncIterator[Api]:
    """Vigil on ``url`` (its dispatcher trying as ``delivery`` says, its settings changed as
    ``settings_changes`` says) and its app, in process."""
    script, clock = Script(), Clock()
    chosen = settings(url).model_copy(update=dict(settings_changes or {}))
    vigil = Vigil(chosen, sources=[script], process_metrics=False, clock=clock, delivery=delivery)
    async with Started(vigil):
        tokens = await seed_accounts(vigil.store)
        app = create_app(vigil, **{"password_hasher": CHEAP_HASHER, **app_options})
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                yield Api(vigil, app, c, script, clock, tokens)
        finally:
            await close_streams(app)


# -- a real server -----------------------------------------------------------------------------


class _QuietServer(VigilServer):
    """Tests run in the main thread: leave pytest's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[tuple[str, VigilServer]]:
    """``app`` on uvicorn at 127.0.0.1 on an ephemeral port, in this event loop."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    base = server_for(app, host="127.0.0.1", port=port, log_level="warning")
    server = _QuietServer(base.config, app=app, vigil=None)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[listener]))
    try:
        await wait_until(lambda: server.started or task.done())
        assert server.started, task.exception() if task.done() else "not started"
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, DEADLINE)
        listener.close()


# -- history without the monitor -----------------------------------------------------------


async def past_incident(
    store: Store,
    *,
    metric: str = LATENCY,
    severity: Severity = Severity.WARNING,
    at: datetime = T0,
    resolved_after: timedelta | None = timedelta(minutes=5),
    auto: bool = True,
) -> Incident:
    """An incident in the history, committed the way the monitor commits one (opened, and
    resolved unless ``resolved_after`` is None), without going through the live view."""
    threshold = 200.0 if severity is Severity.CRITICAL else 100.0
    opened = Incident(
        id=uuid.uuid4(),
        metric=metric,
        severity=severity,
        status=Status.ACTIVE,
        triggered_at=at,
        threshold=threshold,
        value=threshold + 10,
        peak_value=threshold + 10,
        last_value=threshold + 10,
        message=f"{metric} exceeded {severity} threshold",
    )
    event = Event.for_incident(EventKind.INCIDENT_OPENED, opened, at=at)
    [stored] = await store.commit_cycle(samples=[], result=CycleResult(events=[event]), now=at)
    assert stored.incident is not None
    if resolved_after is None:
        return stored.incident
    end = at + resolved_after
    if auto:
        _, closing = resolve(stored.incident, now=end)
        [done] = await store.commit_cycle(samples=[], result=CycleResult(events=[closing]), now=end)
        assert done.incident is not None
        return done.incident
    manual, _ = await store.resolve_incident(stored.incident.id, by="ops", now=end)
    return manual


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait until ``check()`` holds (a cache expiring, say), with a generous deadline."""

    async def poll() -> None:
        while not await check():  # noqa: ASYNC110 - a condition over HTTP: poll it
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), DEADLINE)
