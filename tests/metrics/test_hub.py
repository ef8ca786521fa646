"""Metrics: one recorder, one health registry, the sources of a cycle."""

from __future__ import annotations

import pytest

from vigil.metrics import HealthRegistry, Metrics, Reading, Recorder, WindowSource

from .support import FakeClock


class Constant:
    def __init__(self, name: str, value: float) -> None:
        self.name = name
        self.value = value

    async def read(self) -> Reading:
        return {self.name: self.value}


async def test_the_health_registry_is_always_a_source() -> None:
    metrics = Metrics()
    assert [source.name for source in metrics.sources] == ["health"]
    assert await metrics.read() == {"service_failure": 0.0}


async def test_a_cycle_reads_every_source() -> None:
    clock = FakeClock()
    metrics = Metrics(recorder=Recorder(clock=clock), sources=[Constant("queue_depth", 4.0)])
    metrics.add_source(WindowSource(metrics.recorder, "job_ms", "max", window=metrics.window))
    metrics.recorder.record("job_ms", 250.0)
    metrics.health.register("worker")
    clock.advance(301)
    assert await metrics.read() == {
        "service_failure": 1.0,  # the worker never beat: stale
        "queue_depth": 4.0,
        "job_ms_max": None,  # recorded more than a window ago
    }


def test_source_names_are_unique_and_sources_must_look_like_sources() -> None:
    metrics = Metrics()
    metrics.add_source(Constant("a", 1.0))
    with pytest.raises(ValueError, match="already registered"):
        metrics.add_source(Constant("a", 2.0))
    with pytest.raises(TypeError, match="not a metric source"):
        metrics.add_source(object())  # type: ignore[arg-type]
    metrics.remove_source("a")
    metrics.remove_source("never-there")
    assert [source.name for source in metrics.sources] == ["health"]


def test_parts_can_be_supplied_and_the_health_clock_follows_the_recorder() -> None:
    clock = FakeClock()
    health = HealthRegistry(stale_after=10)
    metrics = Metrics(recorder=Recorder(clock=clock), health=health, window=5.0)
    assert metrics.health is health
    assert metrics.window == 5.0
    own = Metrics(recorder=Recorder(clock=clock))
    own.health.register("t")
    clock.advance(400)
    assert own.health.failing()[0].name == "t"
