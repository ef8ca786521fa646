"""Replay a CSV trace of readings through the real evaluator (being written)."""

from __future__ import annotations


def backtest_command() -> None:
    raise SystemExit("backtest is not built yet")
