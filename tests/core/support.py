"""Shared builders for core tests."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from vigil.core import Evaluator, Event, Rule

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def at(i: int) -> datetime:
    return T0 + timedelta(seconds=30 * i)


def counter_ids() -> Callable[[], uuid.UUID]:
    numbers = itertools.count(1)
    return lambda: uuid.UUID(int=next(numbers))


def latency_rule(**overrides: object) -> Rule:
    fields: dict[str, object] = {
        "metric": "gateway_latency",
        "unit": "ms",
        "warning": 100.0,
        "critical": 200.0,
    }
    fields.update(overrides)
    return Rule(**fields)  # type: ignore[arg-type]


def run(
    rule: Rule, readings: Sequence[float | None], *, silenced: Iterable[int] = ()
) -> tuple[Evaluator, list[tuple[int, Event]]]:
    """Feed one reading per cycle; return the evaluator and (cycle index, event) pairs."""
    silent = set(silenced)
    evaluator = Evaluator([rule], new_id=counter_ids())
    events: list[tuple[int, Event]] = []
    for i, value in enumerate(readings):
        result = evaluator.evaluate(
            {rule.metric: value}, now=at(i), silenced={rule.metric} if i in silent else ()
        )
        events.extend((i, event) for event in result.events)
    return evaluator, events
