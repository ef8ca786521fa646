"""This process's resident memory and CPU use, from psutil."""

from __future__ import annotations

from typing import Any

from vigil.metrics.source import Reading

MIB = 1024 * 1024


class ProcessSource:
    """``memory_usage``: resident set size (RSS) in MB of 2**20 bytes, the figure ``ps`` and
    container limits speak of. ``cpu_usage``: percent of one core used since the previous read
    (so a busy multi-threaded process can exceed 100); ``None`` on the first read, which has
    nothing to compare with.

    ``process`` is a ``psutil.Process``; this one by default.
    """

    name = "process"

    def __init__(self, process: Any = None) -> None:
        import psutil

        self._process = process if process is not None else psutil.Process()
        self._primed = False

    async def read(self) -> Reading:
        process = self._process
        with process.oneshot():
            rss = process.memory_info().rss
            cpu = process.cpu_percent(interval=None)
        primed, self._primed = self._primed, True
        return {"memory_usage": rss / MIB, "cpu_usage": float(cpu) if primed else None}
