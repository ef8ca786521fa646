"""Real receivers on 127.0.0.1: an HTTP webhook endpoint (aiohttp) and an SMTP server (aiosmtpd),
both on ephemeral ports in the test's own event loop."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

# apprise's e-mail plugin imports the stdlib module imghdr (deprecated since Python 3.11) when
# it loads; this suite turns warnings into errors. Import it once here, the warning silenced,
# so the cached module is what apprise gets. Better placed in pytest's filterwarnings.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
    import imghdr  # noqa: F401

# Delivery goes through real sockets and threads on a shared, noisy machine: wait long.
PATIENCE = 60.0


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
