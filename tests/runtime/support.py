"""A scripted source and a controllable clock for driving a real Vigil."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from vigil.core import Event
from vigil.metrics import Reading
from vigil.runtime import Vigil
from vigil.settings import Settings

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
DEADLINE = 60.0  # generous: reached only when the behaviour under test is broken


class Script:
    """A metric source whose next readings the test sets."""

    name = "script"

    def __init__(self) -> None:
        self.values: dict[str, float | None] = {}

    async def read(self) -> Reading:
        return dict(self.values)


class Broken:
    name = "broken"

    async def read(self) -> Reading:
        raise RuntimeError("sensor unplugged")


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 30) -> None:
        self.now += timedelta(seconds=seconds)


def settings(url: str, *, interval: float = 3600, instance: str = "test") -> Settings:
    """A long interval by default: the loop's first cycle runs at start, then tests drive
    cycles by hand with ``vigil.monitor.cycle()``."""
    return Settings(database_url=url, interval=interval, instance=instance)


class Started:
    """``async with Started(vigil)``: started, and its loop's first cycle is over, so the
    test's own cycles are the only ones until the long interval ends."""

    def __init__(self, vigil: Vigil) -> None:
        self.vigil = vigil

    async def __aenter__(self) -> Vigil:
        await self.vigil.start()
        await wait_until(lambda: self.vigil.monitor.status().cycles >= 1)
        return self.vigil

    async def __aexit__(self, *exc: object) -> None:
        await self.vigil.aclose()


def make_vigil(url: str, script: Script, clock: Clock, **kwargs: Any) -> Started:
    vigil = Vigil(settings(url, **kwargs), sources=[script], process_metrics=False, clock=clock)
    return Started(vigil)


async def wait_until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        # A plain condition (a counter) has no event to await: poll it, with a deadline.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), DEADLINE)


async def cycle(
    vigil: Vigil, clock: Clock, values: Mapping[str, float | None], script: Script
) -> list[Event]:
    clock.advance()
    script.values = dict(values)
    return await vigil.monitor.cycle()


async def collect(stream: AsyncIterator[Event], n: int) -> list[Event]:
    async def take() -> list[Event]:
        return [await anext(stream) for _ in range(n)]

    return await asyncio.wait_for(take(), DEADLINE)
