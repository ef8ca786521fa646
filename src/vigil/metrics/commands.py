"""Command outcomes: latency percentiles and the share that failed.

Any command framework can feed it; ``vigil.integrations.discord`` feeds it from discord.py's
prefix and application command events.
"""

from __future__ import annotations

from vigil.metrics.recorder import Recorder
from vigil.metrics.source import DEFAULT_WINDOW, Reading

LATENCY = "command_latency"
FAILED = "command_failed"


class CommandStats:
    """Produces ``command_p95_latency`` (ms, over the commands that finished in the last
    ``window`` seconds) and ``error_rate`` (% of those commands that failed). Both are no data
    when no command finished in the window.

    Each finished command records its duration (ms, if known) under ``command_latency`` and
    an outcome, 1 failed or 0 succeeded, under ``command_failed``. The error rate is that
    series' mean rather than a ratio of two counters, so a busy window that outgrows the ring
    buffer still gives the failure share of its most recent commands, not a ratio of two
    different spans.
    """

    name = "commands"

    def __init__(self, recorder: Recorder | None = None, *, window: float = DEFAULT_WINDOW) -> None:
        self.recorder = recorder or Recorder()
        self.window = window

    def finished(self, duration_ms: float | None, *, failed: bool) -> None:
        """One command ended; ``duration_ms`` is None when its start was not seen."""
        if duration_ms is not None:
            self.recorder.record(LATENCY, duration_ms)
        self.recorder.record(FAILED, 1.0 if failed else 0.0)

    async def read(self) -> Reading:
        latency = self.recorder.window(LATENCY, self.window)
        outcomes = self.recorder.window(FAILED, self.window)
        return {
            "command_p95_latency": latency.p95,
            "error_rate": None if outcomes.mean is None else outcomes.mean * 100.0,
        }
