"""Real receivers on 127.0.0.1, on ephemeral ports in the test's own event loop: a webhook
receiver that can refuse, hold and count (what the dispatcher and crash tests deliver to: every
request is recorded with its arrival time and its ``Idempotency-Key``, whatever the receiver
answers), and the ``webhook`` (aiohttp) and ``smtp`` (aiosmtpd) fixtures of the sender tests.
Its fixtures are shared by the whole suite (tests/conftest.py loads this module as a plugin)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

# apprise's e-mail plugin imports the stdlib module imghdr (deprecated since Python 3.11) when
# it loads; this suite turns warnings into errors. Import it once here, the warning silenced,
# so the cached module is what apprise gets.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
    import imghdr  # noqa: F401

PATIENCE = 60.0  # reached only when what is under test is broken


@dataclass(frozen=True)
class Hit:
    path: str
    key: str
    body: Any
    at: float  # loop time of arrival
    peer: object = None  # the client's address: one per connection


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
                request.transport.get_extra_info("peername") if request.transport else None,
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


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class WebhookReceiver:
    port: int
    status: int = 200
    requests: asyncio.Queue[Received] = field(default_factory=asyncio.Queue)

    def url(self, path: str = "/hook", scheme: str = "json") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def next(self) -> Received:
        return await asyncio.wait_for(self.requests.get(), timeout=PATIENCE)


@pytest.fixture
async def webhook() -> AsyncIterator[WebhookReceiver]:
    receiver: WebhookReceiver | None = None

    async def handle(request: web.Request) -> web.Response:
        assert receiver is not None
        await receiver.requests.put(
            Received(request.path, dict(request.headers), await request.json())
        )
        return web.Response(status=receiver.status, text="ok" if receiver.status < 400 else "no")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    receiver = WebhookReceiver(port=sock.getsockname()[1])
    try:
        yield receiver
    finally:
        await runner.cleanup()


@dataclass
class MailReceiver:
    port: int
    reply: str = "250 Message accepted for delivery"
    messages: asyncio.Queue[tuple[Envelope, EmailMessage]] = field(default_factory=asyncio.Queue)

    def url(self) -> str:
        # mailto:// is apprise's plain SMTP (no TLS); without a user it does not log in.
        return f"mailto://127.0.0.1:{self.port}?from=vigil@example.com&to=oncall@example.com"

    async def next(self) -> tuple[Envelope, EmailMessage]:
        return await asyncio.wait_for(self.messages.get(), timeout=PATIENCE)


class _Handler:
    def __init__(self) -> None:
        self.receiver: MailReceiver | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert self.receiver is not None and isinstance(envelope.content, bytes)
        if self.receiver.reply.startswith("250"):
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            await self.receiver.messages.put((envelope, parsed))
        return self.receiver.reply


@pytest.fixture
async def smtp() -> AsyncIterator[MailReceiver]:
    handler = _Handler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="vigil-test", loop=loop), "127.0.0.1", 0
    )
    handler.receiver = MailReceiver(port=server.sockets[0].getsockname()[1])
    try:
        yield handler.receiver
    finally:
        server.close()
        await server.wait_closed()
