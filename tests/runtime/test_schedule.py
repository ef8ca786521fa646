from __future__ import annotations

import pytest

from vigil.runtime.schedule import next_tick


@pytest.mark.parametrize(
    ("previous", "now", "tick", "skipped"),
    [
        (0, 0.2, 30, 0),  # a quick cycle: the next tick is one interval after the last
        (0, 29.999, 30, 0),
        (0, 30, 30, 0),  # exactly due: run now
        (30, 30.5, 60, 0),
        (0, 31, 60, 1),  # overran by a second: tick 30 is skipped, 60 is next
        (0, 95, 120, 3),  # three ticks covered by one slow cycle
        (60, 60.01, 90, 0),  # no drift: 90, not 90.01
    ],
)
def test_ticks_stay_on_the_grid(previous: float, now: float, tick: float, skipped: int) -> None:
    assert next_tick(0, 30, previous, now) == (tick, skipped)


def test_an_offset_start_keeps_its_phase() -> None:
    assert next_tick(7, 10, 7, 12) == (17, 0)
    assert next_tick(7, 10, 7, 40) == (47, 3)  # 17, 27 and 37 were covered


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        next_tick(0, 0, 0, 1)
