from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

from vigil.core import (
    DEFAULT_RULES,
    Event,
    EventKind,
    Incident,
    Level,
    Severity,
    Status,
    acknowledge,
    resolve,
)
from vigil.runtime.view import LiveView

T0 = datetime(2026, 11, 27, tzinfo=UTC)


def incident(n: int, severity: Severity, minutes: int) -> Incident:
    return Incident(
        id=uuid.UUID(int=n),
        metric=f"m{n}",
        severity=severity,
        status=Status.ACTIVE,
        triggered_at=T0 + timedelta(minutes=minutes),
        threshold=1,
        value=2,
        peak_value=2,
        last_value=2,
        message="m",
    )


def opened(i: Incident) -> Event:
    return Event.for_incident(EventKind.INCIDENT_OPENED, i, at=i.triggered_at)


def test_active_is_most_severe_first_then_newest_and_follows_events() -> None:
    view = LiveView(DEFAULT_RULES)
    old_warning = incident(1, Severity.WARNING, 0)
    new_warning = incident(2, Severity.WARNING, 5)
    critical = incident(3, Severity.CRITICAL, 1)
    for i in (old_warning, new_warning, critical):
        view.apply(opened(i))
    assert [i.id.int for i in view.active()] == [3, 2, 1]
    assert view.summary() == {Severity.INFO: 0, Severity.WARNING: 2, Severity.CRITICAL: 1}
    acked, event = acknowledge(new_warning, by="ana", now=T0)
    view.apply(event)
    assert view.active()[1] == acked
    _, event = resolve(acked, now=T0)
    view.apply(event)
    assert [i.id.int for i in view.active()] == [3, 1]
    assert view.summary()[Severity.WARNING] == 1


def test_rule_changes_and_current_levels() -> None:
    view = LiveView(DEFAULT_RULES)
    view.set_values({"gateway_latency": 150.0, "memory_usage": None, "cpu": 3.0}, at=T0)
    assert view.current["gateway_latency"].level is Level.WARNING
    assert view.current["memory_usage"].level is None
    assert view.current["cpu"].level is None  # no rule: a value but no level
    rule = view.rules["gateway_latency"].updated({"warning": 160})
    view.apply(Event(kind=EventKind.RULE_CHANGED, at=T0, data={"rule": rule.to_dict()}))
    assert view.rules["gateway_latency"].warning == 160


def test_a_rule_s_own_staleness_limit_judges_its_metric_s_value() -> None:
    """A rule with ``stale_after`` 600 s: a 90 s old sample is still current (the default
    limit, two intervals, would call it stale); past 600 s it is stale, with no level."""
    patient = dataclasses.replace(
        next(r for r in DEFAULT_RULES if r.name == "memory_usage"), stale_after=600.0
    )
    view = LiveView([patient, *(r for r in DEFAULT_RULES if r.name != "memory_usage")])
    sampled = T0 - timedelta(seconds=90)
    readings = {
        "memory_usage": {"bot": (450.0, sampled)},
        "gateway_latency": {"bot": (50.0, sampled)},
    }
    view.set_readings(readings, at=T0, stale_after=60)
    memory, latency = view.current["memory_usage"], view.current["gateway_latency"]
    assert (memory.stale, memory.level) == (False, Level.WARNING)
    assert (latency.stale, latency.level) == (True, None)  # the default limit: 60 s
    later = T0 + timedelta(seconds=600)
    view.set_readings({}, at=later, stale_after=60)  # the source fell silent
    assert (view.current["memory_usage"].stale, view.current["memory_usage"].level) == (True, None)


def test_one_instance_s_reading_is_its_metric_s_value_whatever_the_aggregate() -> None:
    """A metric read from one instance (the usual case, taken without combining) gets the
    value, level, sample time and staleness that the same reading gets beside an older one
    of another instance (combined by the rule's aggregate, or the largest without a rule),
    fresh or stale."""
    from vigil.core import Aggregate

    rules = [
        dataclasses.replace(rule, aggregate=aggregate)
        for rule, aggregate in zip(
            DEFAULT_RULES, [*Aggregate, *Aggregate, *Aggregate], strict=False
        )
    ]
    for age in (0.0, 30.0, 60.0, 60.5, 90.0):  # the limit: 60 s
        sampled = T0 - timedelta(seconds=age)
        old = sampled - timedelta(seconds=1000)
        values = {rule.metric: float(n * 37 + 0.1) for n, rule in enumerate(rules)}
        values["no_rule"] = 1e300
        one, twice = LiveView(rules), LiveView(rules)
        one.set_readings(
            {m: {"bot": (v, sampled)} for m, v in values.items()}, at=T0, stale_after=60
        )
        twice.set_readings(
            {m: {"bot": (v, sampled), "old": (-v, old)} for m, v in values.items()},
            at=T0,
            stale_after=60,
        )
        assert one.current == twice.current
        assert {m: c.stale for m, c in one.current.items()} == dict.fromkeys(values, age > 60)
        assert any(c.level is not None for c in one.current.values()) is (age <= 60)
