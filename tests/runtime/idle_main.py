"""A Vigil process for the crash test of batched samples (tests/runtime/test_idle_crash.py),
killed by the test with SIGKILL.

    python -m tests.runtime.idle_main URL BATCH FIRST

Its source reads ``cycle_probe`` = FIRST, FIRST + 1, ... (one a cycle, printing ``read N`` as
each cycle begins, so the test knows that every cycle before N has ended) and a breaching
gateway_latency of 250 ms, which opens a critical incident on the second cycle (or finds it
open after a restart). The interval is 1 s and ``sample_batch`` BATCH. It prints ``started``
once running, and runs until killed.
"""

from __future__ import annotations

import asyncio
import sys

from vigil.metrics import Reading
from vigil.runtime import Vigil
from vigil.settings import Settings


class Counting:
    name = "counting"

    def __init__(self, first: int) -> None:
        self.next = first

    async def read(self) -> Reading:
        number, self.next = self.next, self.next + 1
        print(f"read {number}", flush=True)
        return {"cycle_probe": float(number), "gateway_latency": 250.0}


async def main(url: str, batch: int, first: int) -> None:
    settings = Settings(database_url=url, instance="crash", interval=1.0, sample_batch=batch)
    vigil = Vigil(settings, sources=[Counting(first)], process_metrics=False)
    await vigil.start()
    print("started", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
