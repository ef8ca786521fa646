"""Group commit on its own, with a write the test holds and releases: pushes that arrive
while a transaction is written share the next one; a push returns only once its transaction
has committed; a full buffer refuses at once and keeps nothing; a failed transaction fails
exactly its pushes; closing writes what waits."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.core import Sample
from vigil.runtime.groupcommit import BufferFullError, GroupCommit, IngestClosedError
from vigil.store import VigilStorageError

from .support import DEADLINE, T0


def samples(instance: str, count: int) -> list[Sample]:
    return [Sample(instance, "gateway_latency", T0, float(n)) for n in range(count)]


class Database:
    """A write the test controls: each call is one transaction, held while ``gate`` is
    closed, failed while ``failing`` is set."""

    def __init__(self) -> None:
        self.transactions: list[list[Sample]] = []
        self.started = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.failing = False

    async def write(self, batch: Sequence[Sample]) -> None:
        self.started += 1
        await self.gate.wait()
        if self.failing:
            raise VigilStorageError("storing pushed samples failed: disk full")
        self.transactions.append(list(batch))

    @property
    def stored(self) -> list[Sample]:
        return [sample for batch in self.transactions for sample in batch]


@asynccontextmanager
async def running(
    database: Database, *, interval: float = 0.0, capacity: int = 1000
) -> AsyncIterator[GroupCommit]:
    buffer = GroupCommit(database.write, interval=interval, capacity=capacity)
    writer = asyncio.create_task(buffer.run())
    try:
        yield buffer
    finally:
        database.gate.set()
        await buffer.close()
        await asyncio.wait_for(writer, DEADLINE)


async def until(condition: object) -> None:
    async def poll() -> None:
        while not condition():  # type: ignore[operator]  # noqa: ASYNC110
            await asyncio.sleep(0.001)

    await asyncio.wait_for(poll(), DEADLINE)


async def test_pushes_arriving_during_a_write_share_the_next_transaction() -> None:
    database = Database()
    async with running(database) as buffer:
        database.gate.clear()
        first = asyncio.create_task(buffer.add(samples("first", 3)))
        await until(lambda: database.started == 1)  # its transaction is being written
        rest = [asyncio.create_task(buffer.add(samples(f"p{n}", 2))) for n in range(30)]
        await until(lambda: buffer.buffered == 3 + 60)
        assert not first.done() and not any(task.done() for task in rest)  # none answered yet
        database.gate.set()
        await asyncio.wait_for(asyncio.gather(first, *rest), DEADLINE)
        assert [len(batch) for batch in database.transactions] == [3, 60]
        status = buffer.status()
        assert (status.flushes, status.written, status.pushes, status.buffered) == (2, 63, 31, 0)
    assert sorted((s.instance, s.value) for s in database.stored) == sorted(
        [("first", float(n)) for n in range(3)]
        + [(f"p{k}", float(n)) for k in range(30) for n in range(2)]
    )


async def test_a_push_returns_only_once_its_transaction_has_committed() -> None:
    database = Database()
    async with running(database) as buffer:
        database.gate.clear()
        push = asyncio.create_task(buffer.add(samples("a", 1)))
        await until(lambda: database.started == 1)
        await asyncio.sleep(0.05)
        assert not push.done() and database.transactions == []
        database.gate.set()
        await asyncio.wait_for(push, DEADLINE)
        assert len(database.transactions) == 1


async def test_a_full_buffer_refuses_at_once_and_keeps_nothing() -> None:
    database = Database()
    async with running(database, capacity=10) as buffer:
        database.gate.clear()
        held = asyncio.create_task(buffer.add(samples("a", 8)))
        await until(lambda: database.started == 1)
        with pytest.raises(BufferFullError) as refused:
            await buffer.add(samples("b", 3))  # 8 + 3 > 10
        assert refused.value.retry_after >= 1
        assert "VIGIL_INGEST_BUFFER" in str(refused.value)
        assert buffer.buffered == 8  # the refused push kept nothing
        second = asyncio.create_task(buffer.add(samples("c", 2)))  # 8 + 2 fits
        await until(lambda: buffer.buffered == 10)
        assert not buffer.has_room()
        database.gate.set()
        await asyncio.wait_for(asyncio.gather(held, second), DEADLINE)
        assert buffer.has_room() and buffer.status().refused == 1
        await buffer.add(samples("d", 10))  # room again, a whole buffer's worth
    assert {s.instance for s in database.stored} == {"a", "c", "d"}


async def test_a_failed_transaction_fails_its_pushes_and_the_next_one_succeeds() -> None:
    database = Database()
    async with running(database) as buffer:
        database.gate.clear()
        database.failing = True
        doomed = [asyncio.create_task(buffer.add(samples(f"x{n}", 1))) for n in range(3)]
        await until(lambda: database.started == 1)
        database.gate.set()
        results = await asyncio.wait_for(asyncio.gather(*doomed, return_exceptions=True), DEADLINE)
        assert all(isinstance(result, VigilStorageError) for result in results), results
        database.failing = False
        await buffer.add(samples("after", 1))
        assert buffer.status().failed >= 1
    assert [s.instance for s in database.stored] == ["after"]


async def test_a_push_that_goes_away_leaves_the_others_answered_and_its_samples_stored() -> None:
    database = Database()
    async with running(database) as buffer:
        database.gate.clear()
        blocker = asyncio.create_task(buffer.add(samples("first", 1)))
        await until(lambda: database.started == 1)
        leaving = asyncio.create_task(buffer.add(samples("leaving", 1)))
        staying = asyncio.create_task(buffer.add(samples("staying", 1)))
        await until(lambda: buffer.buffered == 3)
        leaving.cancel()
        database.gate.set()
        await asyncio.wait_for(asyncio.gather(blocker, staying), DEADLINE)
        assert leaving.cancelled()
    assert {s.instance for s in database.stored} == {"first", "leaving", "staying"}


async def test_closing_writes_what_waits_and_refuses_what_comes_after() -> None:
    database = Database()
    buffer = GroupCommit(database.write, interval=30.0, capacity=100)
    writer = asyncio.create_task(buffer.run())
    await buffer.add(samples("a", 1))  # the first is written at once
    waiting = asyncio.create_task(buffer.add(samples("b", 1)))  # waits out the 30 s interval
    await until(lambda: buffer.buffered == 1)
    await buffer.close()  # ... or the close
    await asyncio.wait_for(asyncio.gather(waiting, writer), DEADLINE)
    with pytest.raises(IngestClosedError):
        await buffer.add(samples("c", 1))
    assert [s.instance for s in database.stored] == ["a", "b"]


async def test_a_writer_cancelled_mid_write_tells_its_pushes() -> None:
    database = Database()
    buffer = GroupCommit(database.write, interval=0.0, capacity=100)
    writer = asyncio.create_task(buffer.run())
    database.gate.clear()
    push = asyncio.create_task(buffer.add(samples("a", 1)))
    await until(lambda: database.started == 1)
    writer.cancel()
    with pytest.raises(IngestClosedError):
        await asyncio.wait_for(push, DEADLINE)
    with pytest.raises(IngestClosedError):  # nobody would write it
        await buffer.add(samples("b", 1))


async def test_transactions_are_at_least_the_interval_apart() -> None:
    database = Database()
    starts: list[float] = []
    plain = database.write

    async def timed(batch: Sequence[Sample]) -> None:
        starts.append(time.monotonic())
        await plain(batch)

    buffer = GroupCommit(timed, interval=0.3, capacity=100)
    writer = asyncio.create_task(buffer.run())
    try:
        for n in range(3):
            await buffer.add(samples(f"p{n}", 1))
    finally:
        await buffer.close()
        await asyncio.wait_for(writer, DEADLINE)
    assert len(starts) == 3
    # A lower bound only: a slow machine makes the gaps longer, never shorter.
    assert all(later - earlier >= 0.29 for earlier, later in itertools.pairwise(starts))


@pytest.mark.untraced
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pushes=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30),
    holds=st.lists(st.booleans(), min_size=1, max_size=30),
)
def test_every_acknowledged_sample_is_stored_once_and_the_buffer_stays_bounded(
    pushes: list[int], holds: list[bool]
) -> None:
    """Pushes of any sizes, the writer held at random moments: every push either returns
    (and its samples are stored, once) or is refused (and none are); never more than the
    capacity waits."""

    async def scenario() -> None:
        database = Database()
        capacity = 60
        peak = 0
        plain = database.write

        async def watched(batch: Sequence[Sample]) -> None:
            nonlocal peak
            peak = max(peak, buffer.buffered)
            await plain(batch)

        buffer = GroupCommit(watched, interval=0.0, capacity=capacity)
        writer = asyncio.create_task(buffer.run())
        outcomes: dict[str, bool] = {}

        async def push(name: str, count: int) -> None:
            try:
                await buffer.add(samples(name, count))
            except BufferFullError:
                outcomes[name] = False
            else:
                outcomes[name] = True

        tasks = []
        for n, count in enumerate(pushes):
            if holds[n % len(holds)]:
                database.gate.clear()
            else:
                database.gate.set()
            tasks.append(asyncio.create_task(push(f"p{n}", count)))
            await asyncio.sleep(0)
            peak = max(peak, buffer.buffered)
        database.gate.set()
        await asyncio.wait_for(asyncio.gather(*tasks), DEADLINE)
        await buffer.close()
        await asyncio.wait_for(writer, DEADLINE)
        assert peak <= capacity
        stored = [(s.instance, s.value) for s in database.stored]
        assert len(stored) == len(set(stored))  # nothing twice
        expected = {
            (f"p{n}", float(k))
            for n, count in enumerate(pushes)
            if outcomes[f"p{n}"]
            for k in range(count)
        }
        assert set(stored) == expected

    asyncio.run(scenario())
