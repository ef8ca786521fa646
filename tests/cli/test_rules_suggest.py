"""``vigil rules suggest``: thresholds learned from the stored history, in words, with the
command that applies them; nothing saved. Both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from vigil.core.samples import Sample
from vigil.store import Store

from .support import vigil


def _store(url: str, readings: int) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    samples = [
        Sample("bot", "gateway_latency", start + timedelta(minutes=5 * i), 50.0 + i % 7)
        for i in range(readings)
    ]

    async def add() -> None:
        async with await Store.open(url, upgrade=True) as store:
            await store.add_samples(samples)

    asyncio.run(add())


def test_a_suggestion_from_the_stored_history(migrated_url: str) -> None:
    _store(migrated_url, readings=2 * 24 * 12 - 1)
    code, output = vigil(migrated_url, "rules", "suggest", "gateway_latency", "--since", "3d")
    assert code == 0, output
    text = " ".join(output.split())
    assert text.startswith("From 575 readings over 3 days (median 53 ms")
    assert "Critical would have fired never in 3 days; warning alone never." in text
    assert "Apply: vigil rules set gateway_latency:warning=" in text
    code, shown = vigil(migrated_url, "rules", "show", "gateway_latency")
    assert code == 0 and "200" in shown  # the saved critical threshold is unchanged


def test_too_little_history_and_bad_input_are_said(migrated_url: str) -> None:
    _store(migrated_url, readings=10)
    code, output = vigil(migrated_url, "rules", "suggest", "gateway_latency")
    assert code == 0, output
    assert "No suggestion: 10 readings over 0.8 hours: a suggestion needs" in " ".join(
        output.split()
    )
    code, output = vigil(migrated_url, "rules", "suggest", "gateway_latency", "--since", "soon")
    assert code == 2 and "--since" in output
    code, output = vigil(migrated_url, "rules", "suggest", "nothing_here")
    assert code == 1 and "nothing_here" in output
