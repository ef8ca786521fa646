"""The metric side of one monitor, in one object: a recorder for the hot path, the health
registry, and the sources to read each cycle.

``MetricHost`` is the narrow shape integrations need (``instrument(bot, host)``); ``Metrics``
is its in-memory implementation, which the runtime embeds and tests use as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from vigil.metrics.health import HealthRegistry
from vigil.metrics.recorder import Recorder
from vigil.metrics.source import DEFAULT_WINDOW, MetricSource, collect


class MetricHost(Protocol):
    """What an integration plugs into: it records into ``recorder`` and adds (and on detaching
    removes) the sources it creates, whose windows span ``window`` seconds."""

    @property
    def recorder(self) -> Recorder: ...

    @property
    def window(self) -> float: ...

    def add_source(self, source: MetricSource) -> None: ...

    def remove_source(self, name: str) -> None: ...


class Metrics:
    """A recorder, a health registry (itself the source of ``service_failure``) and sources.

    ``window`` is the look-back of the windowed sources integrations create: the monitor
    interval. ``source_timeout`` bounds each source's ``read`` in a cycle.
    """

    def __init__(
        self,
        *,
        recorder: Recorder | None = None,
        health: HealthRegistry | None = None,
        sources: Iterable[MetricSource] = (),
        window: float = DEFAULT_WINDOW,
        source_timeout: float = 10.0,
    ) -> None:
        self._recorder = recorder or Recorder()
        self._health = health or HealthRegistry(clock=self._recorder.clock)
        self._window = window
        self.source_timeout = source_timeout
        self._sources: dict[str, MetricSource] = {}
        self.add_source(self._health)
        for source in sources:
            self.add_source(source)

    @property
    def recorder(self) -> Recorder:
        return self._recorder

    @property
    def health(self) -> HealthRegistry:
        return self._health

    @property
    def window(self) -> float:
        return self._window

    @property
    def sources(self) -> tuple[MetricSource, ...]:
        return tuple(self._sources.values())

    def add_source(self, source: MetricSource) -> None:
        if not isinstance(source, MetricSource):
            raise TypeError(f"{source!r} is not a metric source: it needs .name and async .read()")
        if source.name in self._sources:
            raise ValueError(f"a source named {source.name!r} is already registered")
        self._sources[source.name] = source

    def remove_source(self, name: str) -> None:
        """Remove the source called ``name``; unknown names are ignored."""
        self._sources.pop(name, None)

    async def read(self) -> dict[str, float | None]:
        """One cycle's readings from every source (see ``collect``)."""
        return await collect(self._sources.values(), source_timeout=self.source_timeout)
