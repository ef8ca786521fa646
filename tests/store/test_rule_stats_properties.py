"""The kept counters always equal the figures computed from scratch over the stored history.

Random histories (incidents opened, acknowledged, resolved on their own or by a person,
flapping events, notifications delivered, at random moments over weeks) are written through
the store on SQLite; then, at a random later moment, every rule's figures for 7, 30 and 90
days are those of the plainest computation over the incidents, events and outbox rows.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from vigil.core.incidents import Incident
from vigil.store import RuleStats, Store

from .conftest import add_channel, auto_resolve, make_incident, open_incident, raw
from .test_cycle_writes import copy_of
from .test_rule_stats import flapping, send_everything

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RULES = ("gateway_latency", "error_rate", "memory_usage")
STEP = st.integers(0, 4 * 24 * 3600).map(lambda s: timedelta(seconds=s))
OPERATION = st.tuples(
    st.sampled_from(["open", "acknowledge", "resolve", "auto", "flap", "send"]),
    st.sampled_from(RULES),
    STEP,
)


async def write(url: str, operations: list[tuple[str, str, timedelta]]) -> datetime:
    """Play the operations; returns the moment of the last."""
    now = T0
    async with await Store.open(url) as store:
        await add_channel(store)
        open_ones: dict[str, Incident] = {}
        every: dict[str, Incident] = {}
        for action, rule, step in operations:
            now += step
            current = open_ones.get(rule)
            if action == "open" and current is None:
                opened = await open_incident(store, make_incident(metric=rule, at=now))
                open_ones[rule] = every[rule] = opened
            elif action == "acknowledge" and current is not None and current.status == "active":
                open_ones[rule], _ = await store.acknowledge_incident(current.id, by="a", now=now)
            elif action == "resolve" and current is not None:
                await store.resolve_incident(current.id, by="a", now=now)
                del open_ones[rule]
            elif action == "auto" and current is not None:
                await auto_resolve(store, current, at=now)
                del open_ones[rule]
            elif action == "flap" and rule in every:
                await flapping(store, every[rule], now)
            elif action == "send":
                await send_everything(store, now=now)
    return now


async def from_scratch(url: str, rule: str, days: int, now: datetime) -> RuleStats:
    """The figures from the stored rows, the plain way."""
    async with raw(url) as connection:
        incidents = (
            await connection.execute(
                text(
                    "SELECT triggered_at, resolved_at, resolution, acknowledged_at "
                    "FROM incidents WHERE rule = :rule"
                ),
                {"rule": rule},
            )
        ).all()
        flaps = (
            await connection.scalars(
                text("SELECT at FROM events WHERE kind = 'incident.flapping' AND rule = :rule"),
                {"rule": rule},
            )
        ).all()
        sent = (
            await connection.scalars(
                text(
                    "SELECT o.sent_at FROM notification_outbox o JOIN events e "
                    "ON e.id = o.event_id WHERE o.status = 'sent' AND e.rule = :rule"
                ),
                {"rule": rule},
            )
        ).all()
    first = now.date() - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time(), UTC)

    def moment(value: Any) -> datetime | None:
        if value is None:
            return None
        parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed

    def inside(value: Any) -> bool:
        found = moment(value)
        return found is not None and found.date() >= first

    def when(value: Any) -> datetime:
        found = moment(value)
        assert found is not None
        return found

    rows: list[tuple[datetime, datetime | None, str | None, datetime | None]] = [
        (when(t), moment(r), how, moment(a)) for t, r, how, a in incidents
    ]
    acks = [(a - t).total_seconds() for t, _, _, a in rows if a is not None and inside(a)]
    resolutions = [(r - t, how) for t, r, how, _ in rows if r is not None and inside(r)]
    auto = sum(1 for _, how in resolutions if how == "auto")
    return RuleStats(
        rule=rule,
        days=days,
        first_day=first,
        incidents=sum(1 for t, *_ in rows if inside(t)),
        open_incidents=sum(1 for _, r, *_ in rows if r is None),
        seconds_in_incident=sum(
            max(0.0, ((r or now) - max(t, start)).total_seconds()) for t, r, *_ in rows
        ),
        acknowledged=len(acks),
        mean_seconds_to_acknowledge=sum(acks) / len(acks) if acks else None,
        resolved_auto=auto,
        resolved_manual=len(resolutions) - auto,
        mean_seconds_to_resolve=(
            sum(d.total_seconds() for d, _ in resolutions) / len(resolutions)
            if resolutions
            else None
        ),
        flaps=sum(1 for at in flaps if inside(at)),
        notifications_sent=sum(1 for at in sent if inside(at)),
    )


def approx(stats: RuleStats) -> tuple[Any, ...]:
    return tuple(
        pytest.approx(value) if isinstance(value, float) else value
        for value in (
            stats.rule,
            stats.days,
            stats.first_day,
            stats.incidents,
            stats.open_incidents,
            stats.seconds_in_incident,
            stats.acknowledged,
            stats.mean_seconds_to_acknowledge,
            stats.resolved_auto,
            stats.resolved_manual,
            stats.mean_seconds_to_resolve,
            stats.flaps,
            stats.notifications_sent,
        )
    )


async def check(url: str, operations: list[tuple[str, str, timedelta]], later: timedelta) -> None:
    now = await write(url, operations) + later
    async with await Store.open(url) as store:
        for days in (7, 30, 90):
            kept = {rule: await store.rule_stats(rule, days=days, now=now) for rule in RULES}
            for rule in RULES:
                expected = await from_scratch(url, rule, days, now)
                assert approx(kept[rule]) == approx(expected), (rule, days)
            noisiest = await store.noisiest_rules(days=days, now=now)
            assert noisiest == [kept[s.rule] for s in noisiest]
            assert {s.rule for s in noisiest} == {r for r in RULES if not kept[r].quiet}


@pytest.mark.untraced
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(OPERATION, max_size=30), later=STEP)
def test_the_kept_counters_equal_a_computation_from_scratch(
    sqlite_template: Any, operations: list[tuple[str, str, timedelta]], later: timedelta
) -> None:
    with copy_of(sqlite_template) as url:
        asyncio.run(check(url, operations, later))
