"""The preview over compacted history: a minute rollup is replayed as the worst of its minute
for the rule (the maximum where higher is worse, the minimum where lower is), so a breach that
opened an incident over the raw samples still opens one once they are compacted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vigil.core import Rule, Sample
from vigil.preview import preview
from vigil.store.memory import MemoryStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=3)
METRIC = "probe_latency"
INTERVAL = 10.0


@pytest.mark.parametrize(
    ("direction", "critical", "breaching"),
    [
        ("above", 200.0, (300.0, 20.0)),  # the minute's mean, 160, is normal
        ("below", 50.0, (10.0, 290.0)),  # the minute's mean, 150, is normal
    ],
)
async def test_a_breach_in_compacted_history_still_opens_its_incident(
    direction: str, critical: float, breaching: tuple[float, float]
) -> None:
    rule = Rule.from_dict(
        {
            "name": "probe",
            "metric": METRIC,
            "direction": direction,
            "critical": critical,
            "breaches_required": 1,
            "recoveries_required": 1,
        }
    )
    store = MemoryStore()
    # Ten minutes every 10 s; minutes 3 and 4 alternate between a breach and its opposite.
    await store.add_samples(
        [
            Sample(
                "bot",
                METRIC,
                T0 + timedelta(seconds=10 * n),
                breaching[n % 2] if 18 <= n < 30 else 100.0,
            )
            for n in range(60)
        ]
    )

    async def incidents() -> list[tuple[str, float]]:
        result = await preview(
            store, {"probe": rule}, start=T0, end=NOW, interval=INTERVAL, own_instance=None
        )
        return [(o.opened_at, o.value) for o in result.proposed.report.outcomes]

    raw = await incidents()
    assert len(raw) >= 1 and raw[0] == ((T0 + timedelta(minutes=3)).isoformat(), breaching[0])
    assert await store.compact_samples(now=NOW, raw_hours=24) == 60
    rolled = await incidents()
    # One incident over the two minutes, opened at the first one's start, at its worst value.
    assert rolled == [((T0 + timedelta(minutes=3)).isoformat(), breaching[0])]
