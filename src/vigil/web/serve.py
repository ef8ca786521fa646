"""``vigil serve``: Vigil and its API on uvicorn, standalone.

uvicorn handles the signals. On Ctrl-C (or SIGTERM) the server stops accepting connections,
ends the open event streams, lets running requests finish, then Vigil stops (its running
cycle commits) — all before uvicorn hands the signal back to the process.
"""

from __future__ import annotations

import socket

import uvicorn
from fastapi import FastAPI

from vigil.runtime import Vigil
from vigil.settings import Settings
from vigil.web.app import close_streams, create_app

GRACEFUL_SECONDS = 10


class VigilServer(uvicorn.Server):
    """uvicorn's server, which first ends the app's event streams when it shuts down (they
    would otherwise hold it open) and then stops Vigil."""

    def __init__(self, config: uvicorn.Config, *, app: FastAPI, vigil: Vigil | None) -> None:
        super().__init__(config)
        self.web_app = app
        self.vigil = vigil

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await close_streams(self.web_app)
        await super().shutdown(sockets)
        if self.vigil is not None:
            await self.vigil.aclose()


def server_for(
    app: FastAPI, *, host: str, port: int, vigil: Vigil | None = None, log_level: str = "info"
) -> VigilServer:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        log_level=log_level,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        server_header=False,
    )
    return VigilServer(config, app=app, vigil=vigil)


async def serve(settings: Settings, *, log_level: str = "info") -> None:
    vigil = Vigil(settings)
    await vigil.start()
    try:
        app = create_app(vigil)
        await server_for(
            app, host=settings.host, port=settings.port, vigil=vigil, log_level=log_level
        ).serve()
    finally:
        await vigil.aclose()  # when the server never started; otherwise already closed
