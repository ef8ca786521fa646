"""A ``vigil serve`` for the ingest crash test, killed by the test with SIGKILL.

    python -m tests.web.ingest_crash_main URL

Vigil and its API on uvicorn at 127.0.0.1 (an ephemeral port), as ``vigil serve`` runs
them, with the per-token ingest limits out of the way. Prints ``started``, then
``listening PORT TOKEN`` (an ingest token it made), and runs until killed.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys

from vigil.runtime import Vigil
from vigil.settings import Settings
from vigil.web import create_app
from vigil.web.accounts import create_token
from vigil.web.serve import server_for


async def main(url: str) -> None:
    settings = Settings(
        database_url=url,
        instance="crash",
        interval=1.0,
        ingest_rate=10_000,
        ingest_volume=1_000_000,
    )
    vigil = Vigil(settings, process_metrics=False)
    await vigil.start()
    _, token = await create_token(vigil.store, f"crash-pusher-{os.getpid()}", role="ingest")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = server_for(
        create_app(vigil), host="127.0.0.1", port=port, vigil=vigil, log_level="warning"
    )
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:  # uvicorn offers no event for it
        if serving.done():
            serving.result()
            return
        await asyncio.sleep(0.01)
    print("started", flush=True)
    print(f"listening {port} {token}", flush=True)
    await serving


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
