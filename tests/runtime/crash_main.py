"""A Vigil process for the crash tests, killed by the test with SIGKILL.

    python -m tests.runtime.crash_main URL MODE

Its source reads gateway_latency = 250 ms every second, so it opens a critical incident on
its second cycle (or finds it open after a restart). MODE ``send`` delivers normally; MODE
``settings`` too, but with the delivery policy the settings make (``VIGIL_DELIVERY_LEASE``
from the environment); MODE ``gate`` holds every delivery before a byte is sent, printing
``held KEY`` so the test can kill the process after the incident and its outbox rows were
committed and before anything was delivered. It prints ``started`` once running, and runs
until killed.
"""

from __future__ import annotations

import asyncio
import sys

from vigil.metrics import Reading
from vigil.notify import Channel, Message
from vigil.runtime import Vigil
from vigil.runtime.notifier import DeliveryPolicy
from vigil.settings import Settings

# Short, so a restarted process retakes an interrupted delivery within seconds.
POLICY = DeliveryPolicy(
    lease=3.0, send_timeout=2.0, batch=8, concurrency=8, backoff=0.2, check_every=0.5
)


class Breaching:
    name = "breaching"

    async def read(self) -> Reading:
        return {"gateway_latency": 250.0}


async def hold(channel: Channel, message: Message) -> None:
    print(f"held {message.idempotency_key}", flush=True)
    await asyncio.Event().wait()


async def main(url: str, mode: str) -> None:
    settings = Settings(database_url=url, instance="crash", interval=1.0)
    policy = None if mode == "settings" else POLICY
    vigil = Vigil(settings, sources=[Breaching()], process_metrics=False, delivery=policy)
    await vigil.start()
    if mode == "gate":
        # Before anything awaits: no delivery can have started yet.
        vigil.notifier.sender = hold
    print("started", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
