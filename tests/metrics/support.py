"""Shared builders for metrics tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class FakeClock:
    """A monotonic clock that moves only when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        assert seconds >= 0, "a monotonic clock never goes back"
        self.now += seconds


async def wait_until(condition: Callable[[], bool], *, deadline: float = 20.0) -> None:
    """Yield to the loop until ``condition()`` holds; fail only after a generous deadline."""
    give_up = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"condition not met within {deadline} s")
        await asyncio.sleep(0.001)
