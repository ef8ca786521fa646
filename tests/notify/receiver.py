"""A webhook receiver on 127.0.0.1 that can refuse, hold and count: what the dispatcher
and crash tests deliver to. Every request is recorded with its arrival time and its
``Idempotency-Key``, whatever the receiver answers."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

PATIENCE = 60.0  # reached only when what is under test is broken


@dataclass(frozen=True)
class Hit:
    path: str
    key: str
    body: Any
    at: float  # loop time of arrival


@dataclass
class Receiver:
    port: int = 0
    hits: list[Hit] = field(default_factory=list)
    fail_first: dict[str, int] = field(default_factory=dict)  # path -> requests refused first
    always_fail: set[str] = field(default_factory=set)
    hold: dict[str, asyncio.Event] = field(default_factory=dict)  # path -> answer when set
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/hook") -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Hit]:
        return [hit for hit in self.hits if hit.path == path]

    def copies(self) -> Counter[str]:
        """Requests per idempotency key."""
        return Counter(hit.key for hit in self.hits)

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(PATIENCE):
            while not condition():
                changed = self._changed
                await changed.wait()

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path
        self.hits.append(
            Hit(
                path,
                request.headers.get("Idempotency-Key", ""),
                await request.json(),
                asyncio.get_running_loop().time(),
            )
        )
        self._changed.set()
        self._changed = asyncio.Event()
        held = self.hold.get(path)
        if held is not None:
            await held.wait()
        refused = len(self.on(path)) <= self.fail_first.get(path, 0)
        if refused or path in self.always_fail:
            return web.Response(status=500, text="no")
        return web.Response(text="ok")


@asynccontextmanager
async def serving() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", found.handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    found.port = sock.getsockname()[1]
    try:
        yield found
    finally:
        for held in found.hold.values():
            held.set()
        await runner.cleanup()
