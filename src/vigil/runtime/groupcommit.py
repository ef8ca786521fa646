"""Group commit: the samples of many pushes written in one transaction.

A push (``POST /api/ingest``, or ``Vigil.ingest`` in process) hands its checked samples to
``GroupCommit.add`` and waits there until a transaction holding them has committed: only
then is it answered, so nothing acknowledged is lost on a crash. One writer task takes
everything waiting and writes it at once, at most one transaction every ``interval``
seconds (sooner when half the buffer is waiting): a burst of pushes costs one write, not
one per request, and the first push after a quiet spell is written at once. Pushes that
arrive while a transaction is being written wait for the next one.

Memory is bounded: the samples waiting and being written are at most ``capacity``; a push
that would pass it is refused at once with ``BufferFullError`` (429 with ``Retry-After``
over HTTP) and nothing of it is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from vigil.core import Sample, VigilError

logger = logging.getLogger(__name__)

Write = Callable[[Sequence[Sample]], Awaitable[None]]


class BufferFullError(VigilError):
    """The ingest buffer cannot take a push now; retrying after ``retry_after`` seconds may."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IngestClosedError(VigilError):
    """The buffer takes no more pushes: Vigil is stopping."""


@dataclass(frozen=True, slots=True)
class GroupCommitStatus:
    buffered: int  # samples waiting or being written now
    capacity: int  # the most that may be
    flushes: int  # transactions committed, since start
    written: int  # samples they held
    pushes: int  # pushes they answered
    refused: int  # pushes refused because the buffer was full
    failed: int  # transactions that failed (their pushes got the error)
    last_flush_seconds: float | None  # how long the last transaction took


class GroupCommit:
    """``add`` returns once the samples are committed; ``run`` is the one writer."""

    def __init__(self, write: Write, *, interval: float, capacity: int) -> None:
        if interval < 0:
            raise ValueError("interval must not be negative")
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.write = write
        self.interval = interval
        self.capacity = capacity
        self.flush_size = max(1, capacity // 2)
        self._pending: list[Sample] = []
        self._pushes = 0  # pushes among the pending samples
        self._done: asyncio.Future[None] | None = None  # what the pending pushes wait on
        self._writing = 0  # samples of the transaction under way
        self._arrived = asyncio.Event()  # something is pending, or the buffer is closing
        self._enough = asyncio.Event()  # half the buffer is pending, or it is closing
        self._closing = False
        self._flushes = self._written = self._answered = self._refused = self._failed = 0
        self._last_seconds: float | None = None

    @property
    def buffered(self) -> int:
        return len(self._pending) + self._writing

    def has_room(self) -> bool:
        """Whether the buffer could take a sample now (for turning a flood away before its
        body is read)."""
        return self.buffered < self.capacity

    def check(self, count: int) -> None:
        """Whether ``count`` samples fit now: ``BufferFullError`` (counted) if not,
        ``IngestClosedError`` once closing; nothing is taken either way."""
        if self._closing:
            raise IngestClosedError("Vigil is stopping: it takes no more samples")
        if self.buffered + count > self.capacity:
            self._refused += 1
            wait = max(1.0, self.interval, self._last_seconds or 0.0)
            raise BufferFullError(
                f"the ingest buffer holds {self.buffered:,} of {self.capacity:,} samples "
                f"(VIGIL_INGEST_BUFFER): try again in {math.ceil(wait)} s",
                retry_after=wait,
            )

    async def add(self, samples: Sequence[Sample]) -> None:
        """Buffer ``samples`` and return once a transaction holding them has committed.
        ``BufferFullError`` or ``IngestClosedError`` (nothing kept) as ``check`` says; the
        write's own error (``VigilStorageError``) when that transaction failed. A caller
        cancelled while it waits leaves its samples to be written all the same."""
        self.check(len(samples))
        if not samples:
            return
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
        done = self._done
        self._pending.extend(samples)
        self._pushes += 1
        self._arrived.set()
        if len(self._pending) >= self.flush_size:
            self._enough.set()
        # Shielded: one caller going away must not cancel the answer the others wait for.
        await asyncio.shield(done)

    def status(self) -> GroupCommitStatus:
        return GroupCommitStatus(
            buffered=self.buffered,
            capacity=self.capacity,
            flushes=self._flushes,
            written=self._written,
            pushes=self._answered,
            refused=self._refused,
            failed=self._failed,
            last_flush_seconds=self._last_seconds,
        )

    async def close(self) -> None:
        """Take no more pushes; ``run`` writes what is waiting and returns."""
        self._closing = True
        self._arrived.set()
        self._enough.set()

    async def run(self) -> None:
        """Write what is waiting, one transaction at a time, until closed and empty."""
        loop = asyncio.get_running_loop()
        last_start = -math.inf
        try:
            while True:
                await self._arrived.wait()
                if not self._pending:
                    if self._closing:
                        return
                    self._arrived.clear()
                    continue
                wait = last_start + self.interval - loop.time()
                if wait > 0 and not self._enough.is_set():
                    # More pushes join while the previous transaction's interval runs out.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await self._enough.wait()
                last_start = loop.time()
                await self._flush()
        finally:
            # Stopped for good (cancelled): whoever still waits is told, not left hanging.
            self._fail_pending(IngestClosedError("Vigil stopped before these samples were stored"))

    async def _flush(self) -> None:
        batch, pushes, done = self._pending, self._pushes, self._done
        self._pending, self._pushes, self._done = [], 0, None
        if not self._closing:
            self._arrived.clear()
            self._enough.clear()
        if done is None:  # pragma: no cover - pending samples always have their future
            return
        self._writing = len(batch)
        started = time.perf_counter()
        try:
            await self.write(batch)
        except Exception as exc:
            self._failed += 1
            logger.warning("storing %d pushed samples failed: %s", len(batch), exc)
            _settle(done, exc)
        except BaseException:
            _settle(done, IngestClosedError("Vigil stopped while these samples were stored"))
            raise
        else:
            self._flushes += 1
            self._written += len(batch)
            self._answered += pushes
            if not done.done():
                done.set_result(None)
        finally:
            self._writing = 0
            self._last_seconds = time.perf_counter() - started

    def _fail_pending(self, error: VigilError) -> None:
        self._closing = True
        done, self._done = self._done, None
        self._pending, self._pushes = [], 0
        if done is not None:
            _settle(done, error)


def _settle(done: asyncio.Future[None], error: BaseException) -> None:
    if done.done():
        return
    done.set_exception(error)
    # Every waiter may have gone (cancelled): the error is then nobody's to read.
    done.add_done_callback(lambda future: future.exception())
