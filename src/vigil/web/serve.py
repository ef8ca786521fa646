"""``vigil serve``: Vigil and its API on uvicorn, standalone.

uvicorn handles the signals. On Ctrl-C (or SIGTERM) the server stops accepting connections,
ends the open event streams, lets running requests finish, then Vigil stops (its running
cycle commits) — all before uvicorn hands the signal back to the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from collections.abc import AsyncIterator, Iterator

import uvicorn
from fastapi import FastAPI

from vigil.core import VigilError
from vigil.logmask import every_handler, install_on_handlers
from vigil.runtime import Vigil
from vigil.settings import Settings
from vigil.web.app import close_streams, create_app
from vigil.web.connections import (
    BACKLOG,
    ConnectionLimits,
    connection_cap,
    guarded_protocol,
    raise_open_files_limit,
)
from vigil.web.state import WebState

GRACEFUL_SECONDS = 10
TICK_SECONDS = 1.0  # uvicorn's own tick is 0.1 s: ten wake-ups a second at rest
TICKS = 10  # uvicorn's tick counter: its once-a-second work runs when the counter % 10 == 0


class VigilServer(uvicorn.Server):
    """uvicorn's server, which first ends the app's event streams when it shuts down (they
    would otherwise hold it open) and then stops Vigil.

    Its main loop wakes once a second (for the Date header), not ten times: a request to stop
    (a signal, ``should_exit = True``) wakes it at once instead of at the next tick."""

    def __init__(self, config: uvicorn.Config, *, app: FastAPI, vigil: Vigil | None) -> None:
        self._exit_requested: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        super().__init__(config)
        self.web_app = app
        self.vigil = vigil

    @property
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._should_exit = value
        if value and self._exit_requested is not None and self._loop is not None:
            # From a signal handler or another thread too: wake the main loop through the
            # event loop, never by touching the event from here.
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self._loop.call_soon_threadsafe(self._exit_requested.set)

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._exit_requested = asyncio.Event()
        if self._should_exit:
            self._exit_requested.set()
        # One waiter for the whole loop: a task per tick would cost more than the tick.
        waiter = self._loop.create_task(self._exit_requested.wait(), name="vigil-server-exit")
        try:
            counter = 0
            should_exit = await self.on_tick(counter)
            while not should_exit:
                counter = (counter + TICKS) % 864000
                await asyncio.wait((waiter,), timeout=TICK_SECONDS)
                should_exit = await self.on_tick(counter)
        finally:
            waiter.cancel()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await close_streams(self.web_app)
        await super().shutdown(sockets)
        await close_streams(self.web_app)  # lookups the last requests started, too
        if self.vigil is not None:
            await self.vigil.aclose()


class EmbeddedServer(VigilServer):
    """The server inside a host's own program (a bot): the host owns the signals, so this
    one neither captures nor re-raises them, and the host stops Vigil itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def server_for(
    app: FastAPI,
    *,
    host: str,
    port: int,
    vigil: Vigil | None = None,
    log_level: str = "info",
    embedded: bool = False,
) -> VigilServer:
    """uvicorn serving ``app`` with the limits of its Vigil's settings: deadlines for slow
    clients, a connection cap below the open-files limit, the keep-alive timeout. Proxy
    headers are the app's business (``VIGIL_TRUSTED_PROXIES``), so uvicorn reads none."""
    state: WebState = app.state.vigil_web
    settings = state.vigil.settings
    limits = ConnectionLimits(
        max_connections=connection_cap(settings.max_connections),
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        log_level=log_level,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        server_header=False,
        http=guarded_protocol(limits),
        backlog=BACKLOG,
        timeout_keep_alive=settings.keepalive_timeout,
        proxy_headers=False,
    )
    kind = EmbeddedServer if embedded else VigilServer
    return kind(config, app=app, vigil=vigil)


async def serve(settings: Settings, *, log_level: str = "info") -> None:
    # The command is the application: it may use every file descriptor it is allowed, and
    # the connection cap (server_for) stays below that.
    raise_open_files_limit()
    vigil = Vigil(settings)
    await vigil.start()
    try:
        app = create_app(vigil)
        # This command is the application, so it may tune the process: what start-up made
        # (modules, the app, the schema) lives until exit, and the collector need not scan it
        # again and again (a full pass over it paused the event stream for ~100 ms).
        gc.freeze()
        server = server_for(
            app, host=settings.host, port=settings.port, vigil=vigil, log_level=log_level
        )
        # uvicorn has just given its loggers handlers of their own (the access log prints
        # each request line, query string included): secrets are masked there too.
        install_on_handlers(every_handler())
        await server.serve()
    finally:
        await vigil.aclose()  # when the server never started; otherwise already closed


@contextlib.asynccontextmanager
async def dashboard(
    vigil: Vigil, *, host: str | None = None, port: int | None = None, log_level: str = "warning"
) -> AsyncIterator[VigilServer]:
    """Serve the dashboard and the API inside the running event loop, beside a bot::

        async with dashboard(vigil):
            await bot.start(token)

    Listens on ``host``/``port`` (default: the settings'). Leaves signals to the host and
    Vigil's lifetime to its owner. A port that cannot be opened is a ``VigilError``.
    """
    address = host or vigil.settings.host
    number = vigil.settings.port if port is None else port
    server = server_for(
        create_app(vigil),
        host=address,
        port=number,
        log_level=log_level,
        embedded=True,
    )
    task = asyncio.create_task(server.serve(), name="vigil-dashboard")
    # uvicorn offers no event for "started": poll its flag (or the task's end).
    while not server.started and not task.done():  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    if task.done():
        try:
            task.result()
        except SystemExit:  # uvicorn exits when it cannot bind
            raise VigilError(f"the dashboard cannot listen on {address}:{number}") from None
        raise VigilError(f"the dashboard on {address}:{number} stopped as it started")
    try:
        yield server
    finally:
        server.should_exit = True
        await task
