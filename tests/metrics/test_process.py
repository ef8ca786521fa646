"""Process memory and CPU from psutil, on this very process."""

from __future__ import annotations

import psutil
import pytest

from vigil.metrics import ProcessSource

MIB = 1024 * 1024


async def test_memory_usage_is_rss_in_megabytes_and_follows_allocations() -> None:
    source = ProcessSource()
    before = await source.read()
    assert before["memory_usage"] == pytest.approx(
        psutil.Process().memory_info().rss / MIB, rel=0.2
    )
    ballast = bytearray(b"\x01") * (64 * MIB)  # written, so its pages are resident
    after = await source.read()
    assert before["memory_usage"] is not None and after["memory_usage"] is not None
    assert after["memory_usage"] - before["memory_usage"] >= 60
    del ballast


async def test_cpu_usage_has_no_data_on_the_first_read_then_measures_work() -> None:
    process = psutil.Process()
    source = ProcessSource(process)
    assert (await source.read())["cpu_usage"] is None
    start = sum(process.cpu_times()[:2])
    spins = 0
    while sum(process.cpu_times()[:2]) - start < 0.05:  # burn at least 50 ms of CPU
        spins += sum(i * i for i in range(1000))
    cpu = (await source.read())["cpu_usage"]
    assert cpu is not None and cpu > 0
