"""A Python module run as a child process for the crash tests, read line by line and killed
with SIGKILL, as a crash would."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).parents[1]
PATIENCE = 120.0  # generous: reached only when something is broken


class Child:
    def __init__(self, process: asyncio.subprocess.Process, module: str) -> None:
        self.process = process
        self.module = module

    async def line(self, prefix: str) -> str:
        """The rest of the next line the child prints that starts with ``prefix``."""
        assert self.process.stdout is not None
        async with asyncio.timeout(PATIENCE):
            while True:
                raw = await self.process.stdout.readline()
                if not raw:
                    raise AssertionError(f"{self.module} ended before printing {prefix!r}")
                text = raw.decode().strip()
                if text.startswith(prefix):
                    return text[len(prefix) :].strip()

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()


@asynccontextmanager
async def child_process(
    module: str, *args: str, env: Mapping[str, str] | None = None
) -> AsyncIterator[Child]:
    """``python -m module args…`` from the repository, once it has printed ``started``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})},
        stdout=asyncio.subprocess.PIPE,
    )
    child = Child(process, module)
    try:
        await child.line("started")
        yield child
    finally:
        await child.kill()
