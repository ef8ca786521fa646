"""A teardown step that fails, with every task's await chain, instead of hanging the run.

A step that never ends (a bot's close, Vigil's ``aclose``, the fake Discord's shutdown) would
otherwise hold a test worker until CI's own limit, and say nothing about where it waits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from typing import Any

TEARDOWN = 60.0  # seconds; generous: a loaded machine ends each step in well under one


async def ended(step: Awaitable[None], what: str) -> None:
    """Await ``step``; if it has not ended within ``TEARDOWN``, cancel it and fail, naming
    where each task of the loop waits."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait([task], timeout=TEARDOWN)
    if done:
        return task.result()
    chains = "\n".join(
        f"{other.get_name()}: " + " -> ".join(_awaiting(other.get_coro()))
        for other in asyncio.all_tasks()
        if other is not asyncio.current_task()
    )
    task.cancel()
    raise AssertionError(
        f"{what} did not end within {TEARDOWN:.0f} s; the tasks wait at:\n{chains}"
    )


def _awaiting(awaitable: Any) -> Iterator[str]:
    """The frames of a suspended coroutine down to what it waits on (a task's own stack shows
    only its outermost frame)."""
    while awaitable is not None:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is None:
            yield repr(awaitable)[:200]
            return
        yield f"{frame.f_code.co_qualname} ({frame.f_code.co_filename}:{frame.f_lineno})"
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
