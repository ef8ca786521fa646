"""Anomaly and forecast rules on synthetic data of a known shape: what fires, what does not,
and how close a forecast's predicted crossing is to the true one."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Sequence
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.core import Evaluator, Event, Kind, Level, Rule, SplitBy, ValidationError, kinds
from vigil.core.events import EventKind
from vigil.core.incidents import Incident
from vigil.core.kinds import about, forecast_message
from vigil.core.learning import Line, Trend, quiet_until, theil_sen

from .support import T0, counter_ids

MINUTE = 60.0
HOUR = 3600.0
DAY = 86_400.0
# A forecast's predicted crossing is within this of the true one, on the leaks below, with
# the default lookback (the horizon: two hours). With a lookback of half the horizon the
# errors reach 23 minutes: extrapolating twice the window doubles the slope's noise.
FORECAST_ERROR = 10 * MINUTE

Shape = Callable[[float], float]  # seconds since T0 -> value (noise added by the caller)


def drive(
    rule: Rule, shape: Shape, *, seconds: float, step: float, noise: float = 0.0, seed: int = 1
) -> list[tuple[float, Event]]:
    """Feed ``shape`` plus gaussian noise every ``step`` seconds; (seconds, event) pairs."""
    rng = random.Random(seed)
    evaluator = Evaluator([rule], new_id=counter_ids())
    events: list[tuple[float, Event]] = []
    t = 0.0
    while t <= seconds:
        value = shape(t) + (rng.gauss(0.0, noise) if noise else 0.0)
        result = evaluator.evaluate({rule.metric: value}, now=T0 + timedelta(seconds=t))
        events.extend((t, event) for event in result.events)
        t += step
    return events


def opened(events: Sequence[tuple[float, Event]]) -> list[tuple[float, Event]]:
    return [(t, e) for t, e in events if e.kind is EventKind.INCIDENT_OPENED]


def incident(event: Event) -> Incident:
    assert event.incident is not None
    return event.incident


def memory_forecast(**overrides: object) -> Rule:
    fields: dict[str, object] = {
        "kind": "forecast",
        "metric": "memory_usage",
        "unit": "MB",
        "critical": 480.0,
        "horizon": 2 * HOUR,
    }
    fields.update(overrides)
    return Rule(**fields)  # type: ignore[arg-type]


def latency_anomaly(**overrides: object) -> Rule:
    fields: dict[str, object] = {
        "kind": "anomaly",
        "metric": "gateway_latency",
        "unit": "ms",
        "min_history": DAY,
    }
    fields.update(overrides)
    return Rule(**fields)  # type: ignore[arg-type]


# -- forecast ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "rate_per_min", "noise", "seed"),
    [
        (300.0, 1.0, 5.0, 1),  # the brief's example: 1 MB/min towards 480 MB
        (300.0, 1.0, 15.0, 2),  # noisier
        (200.0, 0.5, 5.0, 3),  # slower: crosses in over 9 hours
        (400.0, 0.25, 3.0, 4),  # slow and close
        (200.0, 2.0, 20.0, 5),  # fast and noisy: crosses 20 min after its minimum history
    ],
)
def test_a_leak_fires_with_its_crossing_time_within_the_stated_error(
    start: float, rate_per_min: float, noise: float, seed: int
) -> None:
    rule = memory_forecast()
    crossing = (480.0 - start) / rate_per_min * MINUTE  # seconds after T0
    events = drive(
        rule,
        lambda t: start + rate_per_min * t / MINUTE,
        seconds=crossing,
        step=30.0,
        noise=noise,
        seed=seed,
    )
    (when, event), *_ = opened(events)
    predicted = when + incident(event).values["eta_s"]  # type: ignore[index]
    assert abs(predicted - crossing) <= FORECAST_ERROR
    # It warns about a horizon ahead (once it has its minimum history), not at the crossing.
    earliest = max(crossing - rule.horizon, rule.lookback or 0.0)  # type: ignore[operator]
    assert earliest - FORECAST_ERROR <= when <= earliest + FORECAST_ERROR
    assert "will reach critical 480 MB in about" in incident(event).message
    rate = re.search(r"rising ([0-9.]+) MB/min", incident(event).message)
    assert rate is not None
    assert float(rate[1]) == pytest.approx(rate_per_min, rel=0.1)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_flat_noisy_metric_never_fires_a_forecast(seed: int) -> None:
    # 300 MB +- 30 MB of noise for two days; critical 480 MB two hours ahead.
    events = drive(memory_forecast(), lambda t: 300.0, seconds=2 * DAY, step=30.0, noise=30.0)
    assert events == []


def test_spikes_do_not_tilt_the_trend() -> None:
    """Why Theil-Sen over bucket medians rather than a least-squares fit (Prometheus's
    ``predict_linear``): a burst of spikes at the end of the lookback, on a flat metric,
    drags a least-squares line up past the threshold; the medians do not move."""
    rule = memory_forecast(horizon=4 * HOUR)

    def spiky(t: float) -> float:
        late = (t % HOUR) > 0.75 * HOUR and int(t / 30) % 3 == 0
        return 470.0 if late else 300.0

    assert drive(rule, spiky, seconds=DAY, step=30.0, noise=2.0) == []
    # The same readings, a least-squares line over the last hour: it would have fired.
    times = [t for t in range(0, int(HOUR), 30)]
    values = [spiky(t) for t in times]
    mean_t, mean_v = sum(times) / len(times), sum(values) / len(values)
    slope = sum((t - mean_t) * (v - mean_v) for t, v in zip(times, values, strict=True)) / sum(
        (t - mean_t) ** 2 for t in times
    )
    assert mean_v + slope * (times[-1] - mean_t + rule.horizon) >= 480.0  # type: ignore[operator]


def test_a_forecast_waits_for_its_minimum_history() -> None:
    rule = memory_forecast(min_history=3 * HOUR)
    events = drive(rule, lambda t: 450.0 + t / MINUTE, seconds=6 * HOUR, step=30.0)
    [(when, _)] = opened(events)
    assert 3 * HOUR <= when <= 3 * HOUR + 2 * 30.0


def test_a_forecast_below_fires_on_a_falling_metric_and_resolves_when_it_turns() -> None:
    rule = memory_forecast(
        metric="free_disk", unit="GB", direction="below", warning=20.0, critical=10.0
    )

    def fall_then_flat(t: float) -> float:
        return 100.0 - min(t, 3 * HOUR) / MINUTE * 0.4  # 0.4 GB/min for 3 h, then flat at 28

    events = drive(rule, fall_then_flat, seconds=8 * HOUR, step=30.0, noise=0.5)
    kinds = [e.kind for _, e in events]
    assert kinds[0] is EventKind.INCIDENT_OPENED
    assert kinds[-1] is EventKind.INCIDENT_RESOLVED
    assert re.search(r"falling 0\.(39|4)\d* GB/min", incident(events[0][1]).message)


def test_theil_sen_is_exact_on_a_line_and_ignores_an_outlier() -> None:
    points = [(float(x), 2.0 * x + 1.0) for x in range(10)]
    points[4] = (4.0, 1000.0)
    line = theil_sen(points)
    assert line.slope == pytest.approx(2.0)
    assert line.value(20.0) == pytest.approx(41.0)


def test_a_trend_keeps_bounded_memory() -> None:
    trend = Trend(HOUR)
    for i in range(200_000):  # 10 readings a second for over five hours
        trend.add(i / 10, float(i))
    assert len(trend._kept) <= 64
    assert len(trend._medians) <= 21
    assert trend.line is not None
    assert trend.line.slope == pytest.approx(10.0, rel=1e-3)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(20, "a minute"), (90, "2 min"), (4200, "1 h 10 min"), (7200, "2 h"), (3 * DAY, "3 d")],
)
def test_about(seconds: float, words: str) -> None:
    assert about(seconds) == words


def test_the_forecast_message() -> None:
    trend = {"eta_s": 4200.0, "rate_per_s": 1.0 / 60, "projected": 530.0}
    message = forecast_message(memory_forecast(), Level.CRITICAL, 410.0, 480.0, trend)
    assert message == (
        "Memory Usage will reach critical 480 MB in about 1 h 10 min (now 410 MB, rising 1 MB/min)"
    )


# -- anomaly ----------------------------------------------------------------------------------


def daily(t: float) -> float:
    """A latency with a daily cycle: 60 ms at night, 140 ms at the day's peak (15:00 UTC)."""
    hour = ((T0.hour * HOUR + t) % DAY) / HOUR
    return 100.0 + 40.0 * math.cos((hour - 15.0) / 24.0 * 2 * math.pi)


def weekly(t: float) -> float:
    """Busy weekdays, quiet weekends."""
    day = (T0 + timedelta(seconds=t)).weekday()
    return daily(t) if day < 5 else 30.0


STEP = 5 * MINUTE
LEARN = 8 * DAY


def with_event(shape: Shape, start: float, end: float, value: float) -> Shape:
    return lambda t: value if start <= t < end else shape(t)


def at_hour(day: float, hour: float) -> float:
    """Seconds after T0 (10:00 UTC) of ``hour`` UTC on day ``day``."""
    return day * DAY + (hour - T0.hour) * HOUR


@pytest.mark.parametrize(
    ("name", "shape", "fires"),
    [
        ("daily cycle, unchanged", daily, False),
        ("weekly cycle, unchanged", weekly, False),
        (
            "night reading at the day's usual peak",
            with_event(daily, at_hour(9, 3), at_hour(9, 3.5), 140.0),
            True,
        ),
        (
            "day reading at its usual level",
            with_event(daily, at_hour(9, 15), at_hour(9, 15.5), 140.0),
            False,
        ),
        ("step change up", with_event(daily, at_hour(9, 0), 99 * DAY, 400.0), True),
        ("drop to zero", with_event(daily, at_hour(9, 12), at_hour(9, 13), 0.0), True),
        (
            "a lone spike (one reading)",
            with_event(daily, at_hour(9, 12), at_hour(9, 12) + STEP, 900.0),
            False,
        ),
    ],
)
def test_anomaly_bands_on_known_shapes(name: str, shape: Shape, fires: bool) -> None:
    # breaches_required 2: one spike is not an incident, a sustained anomaly is.
    rule = latency_anomaly(min_history=LEARN - DAY)
    events = drive(rule, shape, seconds=10 * DAY, step=STEP, noise=3.0)
    assert bool(opened(events)) is fires, name
    for _, event in opened(events):
        assert "gateway_latency" in incident(event).metric
        assert "is unusually" in incident(event).message


def test_the_weekly_shape_is_learned_weekend_by_weekend() -> None:
    # Two weeks of busy weekdays and quiet weekends, then a Saturday as busy as a weekday:
    # unusual for a Saturday, though usual for the week as a whole.
    saturday = next(d for d in range(14, 21) if (T0 + timedelta(days=d)).weekday() == 5)
    busy_saturday = with_event(
        weekly, at_hour(saturday, 14), at_hour(saturday, 16), daily(at_hour(0, 15))
    )
    rule = latency_anomaly(min_history=7 * DAY)
    events = drive(rule, busy_saturday, seconds=(saturday + 1) * DAY, step=STEP, noise=3.0)
    [(when, event)] = opened(events)
    assert at_hour(saturday, 14) <= when < at_hour(saturday, 14) + 3 * STEP
    assert "for this hour of the week" in incident(event).message


def test_an_anomaly_rule_waits_for_its_minimum_history() -> None:
    rule = latency_anomaly(min_history=2 * DAY)
    anomalous = with_event(daily, at_hour(1, 3), at_hour(1, 6), 500.0)  # on day 1: too early
    assert opened(drive(rule, anomalous, seconds=2 * DAY - STEP, step=STEP, noise=3.0)) == []
    late = with_event(daily, at_hour(3, 3), at_hour(3, 6), 500.0)  # past two days: fires
    assert len(opened(drive(rule, late, seconds=3 * DAY, step=STEP, noise=3.0))) == 1


def test_an_anomaly_resolves_when_the_series_is_usual_again() -> None:
    shape = with_event(daily, at_hour(9, 12), at_hour(9, 14), 400.0)
    events = drive(latency_anomaly(), shape, seconds=10 * DAY, step=STEP, noise=3.0)
    kinds = [e.kind for _, e in events]
    assert kinds == [EventKind.INCIDENT_OPENED, EventKind.INCIDENT_RESOLVED]
    assert incident(events[0][1]).severity == "critical"


def test_sensitivity_widens_the_band() -> None:
    shape = with_event(daily, at_hour(9, 12), at_hour(9, 13), daily(at_hour(9, 12)) + 30.0)
    narrow = drive(latency_anomaly(sensitivity=3.0), shape, seconds=10 * DAY, step=STEP, noise=3.0)
    wide = drive(latency_anomaly(sensitivity=20.0), shape, seconds=10 * DAY, step=STEP, noise=3.0)
    assert opened(narrow) and not opened(wide)


def test_a_split_anomaly_rule_learns_each_instance_apart() -> None:
    rule = latency_anomaly(split_by=SplitBy.INSTANCE)
    evaluator = Evaluator([rule], new_id=counter_ids())
    events: list[Event] = []
    rng = random.Random(3)
    t = 0.0
    while t <= 3 * DAY:
        # shard-1 always reads 200 ms, shard-0 100 ms; on day 2 shard-0 jumps to 200 ms.
        shard0 = 200.0 if t >= 2 * DAY + HOUR else 100.0
        now = T0 + timedelta(seconds=t)
        readings = {
            "gateway_latency": {
                "shard-0": (shard0 + rng.gauss(0, 3), now),
                "shard-1": (200.0 + rng.gauss(0, 3), now),
            }
        }
        events.extend(evaluator.evaluate_series(readings, now=now).events)
        t += STEP
    [event] = [e for e in events if e.kind is EventKind.INCIDENT_OPENED]
    assert incident(event).instance == "shard-0"
    assert sorted(evaluator.series(rule.name)) == ["shard-0", "shard-1"]


# -- the rules themselves -----------------------------------------------------------------------


def test_defaults_of_the_learning_kinds() -> None:
    anomaly = Rule(kind=Kind.ANOMALY, metric="gateway_latency")
    assert (anomaly.sensitivity, anomaly.min_history, anomaly.severity) == (
        4.0,
        DAY,
        Level.CRITICAL,
    )
    forecast = Rule(kind=Kind.FORECAST, metric="memory_usage", critical=480, horizon=7200)
    assert (forecast.lookback, forecast.min_history, forecast.top_level) == (
        2 * HOUR,
        2 * HOUR,
        Level.CRITICAL,
    )
    assert Rule.from_dict(forecast.to_dict()) == forecast
    assert Rule.from_dict(anomaly.to_dict()) == anomaly


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"kind": "forecast", "critical": 1}, "horizon", "needs horizon"),
        ({"kind": "forecast", "horizon": 60}, "critical", "warning or a critical"),
        ({"kind": "forecast", "critical": 1, "horizon": 0}, "horizon", "more than 0"),
        (
            {"kind": "forecast", "critical": 1, "horizon": 60, "lookback": 10},
            "lookback",
            "at least 60",
        ),
        (
            {"kind": "forecast", "critical": 1, "horizon": 60, "sensitivity": 3},
            "sensitivity",
            "does not apply",
        ),
        (
            {"kind": "forecast", "critical": 1, "horizon": 60, "severity": "warning"},
            "severity",
            "does not apply",
        ),
        (
            {"kind": "forecast", "critical": 1, "horizon": 60, "recovery": 2},
            "recovery",
            "at or below the lowest threshold",
        ),
        ({"kind": "anomaly", "recovery": 2}, "recovery", "does not apply"),
        ({"kind": "anomaly", "sensitivity": 0.1}, "sensitivity", "between 0.5 and 50"),
        ({"kind": "anomaly", "sensitivity": math.nan}, "sensitivity", "finite"),
        ({"kind": "anomaly", "critical": 5}, "critical", "does not apply"),
        ({"kind": "anomaly", "horizon": 60}, "horizon", "does not apply"),
        ({"kind": "anomaly", "min_history": -1}, "min_history", "more than 0"),
        ({"kind": "threshold", "critical": 1, "min_history": 60}, "min_history", "does not apply"),
        ({"kind": "absent", "absent_for": 60, "lookback": 60}, "lookback", "does not apply"),
    ],
)
def test_bad_learning_fields_are_refused_by_name(
    fields: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Rule(metric="memory_usage", **fields)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert words in str(caught.value)


@pytest.mark.untraced
@settings(max_examples=500, deadline=None)
@given(
    level=st.floats(-1000, 1000),
    slope=st.floats(-10, 10),
    first=st.floats(-1000, 1000),
    above=st.booleans(),
    horizon=st.floats(60, 30 * DAY),
    later=st.floats(0, 10 * DAY),
)
def test_the_quiet_shortcut_never_hides_a_breach(
    level: float, slope: float, first: float, above: bool, horizon: float, later: float
) -> None:
    """While ``quiet_until`` says so, the full judgement (``kinds.forecast``) is normal."""
    rule = memory_forecast(
        direction="above" if above else "below",
        critical=first,
        horizon=horizon,
        min_history=60,
    )
    now = 1.8e9
    line = Line(now - 100.0, level, slope)
    until = quiet_until(line, now, first=first, above=above, horizon=horizon)
    for at in (now, now + later, min(until, now + later + DAY) - 1e-3):
        if now <= at < until:
            assert kinds.forecast(rule, 0.0, line, at, history=DAY).level is Level.NORMAL


def test_changing_a_learning_rule_keeps_what_it_learned_unless_its_trend_window_changes() -> None:
    anomaly = latency_anomaly(min_history=DAY)
    evaluator = Evaluator([anomaly], new_id=counter_ids())
    rng = random.Random(7)
    t = 0.0
    while t < 2 * DAY:
        now = T0 + timedelta(seconds=t)
        evaluator.evaluate({"gateway_latency": daily(t) + rng.gauss(0, 3)}, now=now)
        t += STEP
    evaluator.set_rule(anomaly.updated({"sensitivity": 6.0}))  # learned history kept
    opened_after = []
    for k in range(3):
        now = T0 + timedelta(seconds=t + k * STEP)
        opened_after += evaluator.evaluate({"gateway_latency": 900.0}, now=now).events
    assert [e.kind for e in opened_after] == [EventKind.INCIDENT_OPENED]

    forecast = memory_forecast(lookback=HOUR, min_history=HOUR)
    evaluator = Evaluator([forecast], new_id=counter_ids())
    for k in range(int(2 * HOUR / 30)):
        evaluator.evaluate({"memory_usage": 300.0}, now=T0 + timedelta(seconds=30 * k))
    evaluator.set_rule(forecast.updated({"lookback": 2 * HOUR}))  # a new trend window
    rising = [
        evaluator.evaluate(
            {"memory_usage": 470.0 + k}, now=T0 + timedelta(seconds=2 * HOUR + 30 * k)
        ).events
        for k in range(60)
    ]
    assert not any(rising)  # learning afresh: no trend and no minimum history yet


@pytest.mark.parametrize(
    ("rate_per_s", "eta_s", "says"),
    [
        (1 / 60, 4200, "in about 1 h 10 min (now 410 MB, rising 1 MB/min)"),
        # under a tenth of a unit a minute, the pace is told per hour
        (3 / 3600, 5400, "in about 1 h 30 min (now 410 MB, rising 3 MB/h)"),
        (-0.5 / 3600, 0, "now, by its trend (now 410 MB, falling 0.5 MB/h)"),
        (0.0, 0, "now, by its trend (now 410 MB, steady 0 MB/h)"),
    ],
)
def test_a_forecast_message_says_when_and_how_fast(
    rate_per_s: float, eta_s: float, says: str
) -> None:
    rule = Rule(kind=Kind.FORECAST, metric="memory_usage", unit="MB", critical=480, horizon=7200)
    trend = {"rate_per_s": rate_per_s, "eta_s": eta_s}
    message = kinds.forecast_message(rule, Level.CRITICAL, 410.0, 480.0, trend)
    assert message == f"Memory Usage will reach critical 480 MB {says}"
