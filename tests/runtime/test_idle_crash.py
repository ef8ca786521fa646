"""Batched samples under SIGKILL: a real Vigil process writing its own samples every
``sample_batch`` cycles is killed at a random moment, twice. Every cycle but at most the last
batch's is stored, in order and once; the incident it opened is neither lost nor opened again."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from tests.child import Child, child_process
from vigil.core import EventKind
from vigil.runtime.vigil import utcnow
from vigil.store import Store

pytestmark = pytest.mark.slow
BATCH = 3
PROBE = "cycle_probe"


async def probes(url: str) -> list[int]:
    async with await Store.open(url) as store:
        found: list[int] = []
        now = utcnow()
        async for chunk in store.sample_chunks(
            start=now - timedelta(hours=1), end=now + timedelta(hours=1), metrics=[PROBE]
        ):
            found += [int(value) for _, _, _, value in chunk]
        return found


async def read_until(child: Child, number: int) -> int:
    """Wait for the child to begin cycle ``number``: every cycle before it has ended."""
    while (seen := int(await child.line("read"))) < number:
        pass
    return seen


async def test_a_killed_monitor_loses_at_most_a_batch_and_no_incident(migrated_url: str) -> None:
    rng = random.Random()
    for first in (1, 1000):  # the first life, then the restarted one
        async with child_process(
            "tests.runtime.idle_main", migrated_url, str(BATCH), str(first)
        ) as child:
            target = first + rng.randint(2, 2 + 2 * BATCH)
            begun = await read_until(child, target)
            await child.kill()  # somewhere in cycle `begun`, or just after it
        stored = [n for n in await probes(migrated_url) if n >= first]
        assert stored == list(range(first, first + len(stored)))  # in order, once, no gap
        # Cycles up to begun - 1 had ended; at most BATCH of them were still pending.
        assert first + len(stored) - 1 >= begun - 1 - BATCH
    async with await Store.open(migrated_url) as store:
        events = await store.events_after(0, limit=500)
        opened = [e for e in events if e.kind is EventKind.INCIDENT_OPENED]
        [incident] = await store.active_incidents()
    assert len(opened) == 1 and opened[0].incident is not None
    assert incident.id == opened[0].incident.id  # the restart found it open: none doubled
