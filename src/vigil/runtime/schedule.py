"""Drift-corrected ticks: pure maths on a fixed grid ``start + k * interval``."""

from __future__ import annotations

import math


def next_tick(start: float, interval: float, previous: float, now: float) -> tuple[float, int]:
    """The tick after ``previous`` and how many ticks were skipped because ``now`` is past them.

    A cycle that overruns its interval is never overlapped: the ticks it covered are skipped
    (and reported as late), and the next cycle starts on the grid, not ``interval`` after the
    overrun ended, so the schedule does not drift.
    """
    if interval <= 0:
        raise ValueError("interval must be positive")
    due = previous + interval
    if now <= due:
        return due, 0
    k = math.floor((now - start) / interval) + 1
    tick = start + k * interval
    return tick, round((tick - due) / interval)
