"""The whole of Vigil on one machine, fed by a simulated bot: what ``vigil demo`` runs.

A fresh SQLite database, an admin and a viewer (credentials printed once), the monitor, the
API and the dashboard on http://127.0.0.1:8000, a local notification channel whose messages
are printed here, and the scripted story of ``vigil.demo.bot``. Ctrl-C stops it all cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from vigil.core import ValidationError
from vigil.demo.bot import DemoBot
from vigil.metrics import HealthRegistry, Metrics, Recorder
from vigil.notify import Channel
from vigil.runtime import Vigil
from vigil.settings import Settings
from vigil.store import Store

DEMO_INTERVAL = 3.0  # seconds: the whole story takes two minutes
STEP = 0.25  # how often the simulated bot acts
BACKLOG = 2048  # as uvicorn's own listening socket

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Credentials:
    admin: str
    viewer: str


async def prepare(database: Path, *, now: datetime) -> Credentials:
    """A fresh demo database with two users; the old one (if any) is replaced."""
    from vigil.web.accounts import add_user  # argon2 only for this

    await asyncio.to_thread(_remove, database)
    credentials = Credentials(admin=secrets.token_urlsafe(9), viewer=secrets.token_urlsafe(9))
    async with await Store.open(f"sqlite+aiosqlite:///{database}") as store:
        await add_user(store, "admin", role="admin", password=credentials.admin, now=now)
        await add_user(store, "viewer", role="viewer", password=credentials.viewer, now=now)
    return credentials


def _remove(database: Path) -> None:
    for suffix in ("", "-wal", "-shm", ".monitor.lock"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)


@contextlib.asynccontextmanager
async def receiver(say: Say) -> AsyncIterator[int]:
    """A local webhook that prints what it receives: the demo's notification channel."""

    async def receive(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = {"body": await request.text()}
        title = body.get("title") or "(no title)"
        say(f"  >> notification received on the demo channel: {title}")
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/notify", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield int(port)
    finally:
        await runner.cleanup()


async def play(bot: DemoBot, say: Say) -> None:
    """Act out the story in real time, narrating each change of phase."""
    started = time.monotonic()
    phase = ""
    while True:
        activity = bot.advance(bot.recorder.clock())
        if activity.phase != phase:
            phase = activity.phase
            say(f"[{time.monotonic() - started:5.0f} s] {phase}")
        await asyncio.sleep(STEP)


def listen(host: str, port: int) -> socket.socket:
    """The dashboard's listening socket, opened before anything else happens: a port in use
    is a clear error before any password is printed or the database replaced."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ValidationError("host", f"{host!r} is not an address to listen on ({exc})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            reason = "is already in use: stop what uses it, or choose another with --port"
        else:
            reason = f"cannot be opened: {exc.strerror or exc}"
        raise ValidationError("port", f"{host}:{port} {reason}") from None
    sock.set_inheritable(True)
    return sock


async def run_demo(*, database: Path, host: str, port: int, say: Say = print) -> None:
    listener = listen(host, port)
    try:
        await _run(listener, database=database, host=host, say=say)
    finally:
        listener.close()


async def _run(listener: socket.socket, *, database: Path, host: str, say: Say) -> None:
    from vigil.web.app import create_app
    from vigil.web.serve import server_for

    port = int(listener.getsockname()[1])  # the one chosen, when asked for port 0
    now = datetime.now(UTC)
    credentials = await prepare(database, now=now)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{database}",
        host=host,
        port=port,
        interval=DEMO_INTERVAL,
        instance="demo-bot",
    )
    recorder = Recorder()
    health = HealthRegistry(clock=recorder.clock)
    metrics = Metrics(recorder=recorder, health=health, window=DEMO_INTERVAL)
    bot = DemoBot(recorder, health, interval=DEMO_INTERVAL)
    async with receiver(say) as hook_port:
        async with await Store.open(settings.database_url) as store:
            channel = Channel(name="demo", url=f"json://127.0.0.1:{hook_port}/notify")
            await store.add_channel(channel, now=now)
        vigil = Vigil(settings, sources=bot.sources, metrics=metrics, process_metrics=True)
        await vigil.start()
        actor = asyncio.create_task(play(bot, say), name="vigil-demo-bot")
        try:
            url = settings.public_url
            say(
                f"\nVigil demo: {url}\n"
                f"  sign in as admin / {credentials.admin}  (or viewer / {credentials.viewer})\n"
                f"  API docs: {url}/docs   live events: {url}/api/events\n"
                f"  a simulated bot runs a two-minute story of trouble every "
                f"{DEMO_INTERVAL * 40:.0f} s; incidents open, escalate and resolve by themselves.\n"
                "  Press Ctrl-C to stop.\n"
            )
            server = server_for(create_app(vigil), host=host, port=port, vigil=vigil)
            await server.serve(sockets=[listener])
        finally:
            actor.cancel()
            await asyncio.gather(actor, return_exceptions=True)
            await vigil.aclose()  # already closed by the server's shutdown, unless it never ran
