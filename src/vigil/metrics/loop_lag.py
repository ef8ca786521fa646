"""Event loop lag: how late the loop runs a callback that asked to run on time.

A probe task sleeps ``interval`` seconds over and over and records by how much each wake-up
overslept. A blocking call on the loop (synchronous I/O, a long computation) shows up as lag
as long as the block. The owner starts the probe and stops it (which cancels and awaits the
task), or uses it as an async context manager.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from vigil.metrics.recorder import Recorder
from vigil.metrics.source import DEFAULT_WINDOW, Reading

METRIC = "event_loop_lag"


class LoopLagProbe:
    """Produces ``event_loop_lag``: the worst lag (ms) seen in the last ``window`` seconds,
    ``None`` when the probe recorded nothing in it (not started, or the loop was frozen for
    the whole window, which the next sample reports).

    Samples go to ``recorder`` (under ``event_loop_lag``), and its clock measures them.
    """

    name = "loop_lag"

    def __init__(
        self,
        recorder: Recorder | None = None,
        *,
        interval: float = 0.5,
        window: float = DEFAULT_WINDOW,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        self.recorder = recorder or Recorder()
        self.interval = interval
        self.window = window
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start probing on the running loop."""
        if self.running:
            raise RuntimeError("the loop lag probe is already running")
        self._task = asyncio.get_running_loop().create_task(self._probe(), name="vigil-loop-lag")

    async def stop(self) -> None:
        """Cancel the probe and wait for it to finish. Safe to call when not running."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():  # our caller was cancelled, not just the probe
                raise
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise

    async def __aenter__(self) -> LoopLagProbe:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def read(self) -> Reading:
        return {METRIC: self.recorder.window(METRIC, self.window).max}

    async def _probe(self) -> None:
        clock, interval, record = self.recorder.clock, self.interval, self.recorder.record
        while True:
            start = clock()
            await asyncio.sleep(interval)
            record(METRIC, max(clock() - start - interval, 0.0) * 1000.0)
