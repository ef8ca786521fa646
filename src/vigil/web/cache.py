"""Cached database reads for the history views (incident pages, day counts, auto-recoveries).

An answer is reused while nothing it could depend on has changed: it is tagged with the
generation it was read in (the newest event id and the monitor's cycle count, both known
without a query), and dropped when the generation moves or after ``ttl`` seconds, which
bounds staleness for changes that make no event here (retention cleanup from the CLI).
Concurrent misses for one key share one query. At most ``capacity`` answers are kept.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

Generation = Hashable


class ReadCache:
    def __init__(
        self,
        generation: Callable[[], Generation],
        *,
        ttl: float = 10.0,
        capacity: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._generation = generation
        self.ttl = ttl
        self.capacity = capacity
        self._clock = clock
        self._answers: OrderedDict[Hashable, tuple[Generation, float, Any]] = OrderedDict()
        self._pending: dict[tuple[Hashable, Generation], asyncio.Future[Any]] = {}
        self.hits = 0
        self.misses = 0

    async def get(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        generation = self._generation()  # before reading: a change after it invalidates
        found = self._answers.get(key)
        if found is not None and found[0] == generation and found[1] > self._clock():
            self._answers.move_to_end(key)
            self.hits += 1
            answer: T = found[2]
            return answer
        pending = self._pending.get((key, generation))
        if pending is not None:
            self.hits += 1
            try:
                shared: T = await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not pending.cancelled() or (task is not None and task.cancelling()):
                    raise
                # the request that was reading went away: read for ourselves
            else:
                return shared
        self.misses += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[(key, generation)] = future
        try:
            answer = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # marks it retrieved: the waiters re-raise it themselves
            raise
        else:
            future.set_result(answer)
            self._answers[key] = (generation, self._clock() + self.ttl, answer)
            self._answers.move_to_end(key)
            while len(self._answers) > self.capacity:
                self._answers.popitem(last=False)
            return answer
        finally:
            self._pending.pop((key, generation), None)

    def clear(self) -> None:
        self._answers.clear()
