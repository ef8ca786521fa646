"""The ingest route's fast path for plain samples agrees with the model it stands in for:
whatever it accepts, the model accepts as the same sample; whatever the model refuses, it
leaves to the model (which names the error)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.core import Sample, ValidationError
from vigil.web.routes.ingest import Seen, _modelled_sample, _plain_sample

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def modelled(raw: object) -> Sample | None:
    try:
        return _modelled_sample(raw, 0, "shard-0", NOW)
    except ValidationError:
        return None


def same(one: Sample, other: Sample) -> bool:
    return (one.instance, one.metric, one.time, one.value, type(one.value)) == (
        other.instance,
        other.metric,
        other.time,
        other.value,
        type(other.value),
    ) and one.time.utcoffset() == other.time.utcoffset()


def check(raw: object) -> None:
    plain = _plain_sample(raw, "shard-0", NOW)
    model = modelled(raw)
    if plain is not None:
        assert model is not None, f"the fast path accepted {raw!r}, which the model refuses"
        assert same(plain, model), (raw, plain, model)


@pytest.mark.parametrize(
    "raw",
    [
        {"metric": "gateway_latency", "value": 87.5},
        {"metric": "gateway_latency", "value": 3},
        {"metric": "gateway_latency", "value": 2**53 + 1},
        {"metric": "gateway_latency", "value": -(2**53)},
        {"metric": "gateway_latency", "value": 10**30},
        {"metric": "gateway_latency", "value": True},
        {"metric": "gateway_latency", "value": float("nan")},
        {"metric": "gateway_latency", "value": float("-inf")},
        {"metric": "gateway_latency", "value": "1.5"},
        {"metric": "gateway_latency", "value": 1.0, "time": None},
        {"metric": "gateway_latency", "value": 1.0, "time": "2026-11-27T09:59:59Z"},
        {"metric": "gateway_latency", "value": 1.0, "time": "2026-11-27T09:59:59.5+05:30"},
        {"metric": "gateway_latency", "value": 1.0, "time": "2026-11-27T09:59:59.123456-00:00"},
        {"metric": "gateway_latency", "value": 1.0, "time": "2026-11-27T09:59:59.1234567Z"},
        {"metric": "gateway_latency", "value": 1.0, "time": "2026-11-27T09:59:60Z"},
        {"metric": "gateway_latency", "value": 1.0, "time": "2026-11-27T09:59:59"},
        {"metric": "gateway_latency", "value": 1.0, "time": "2026-11-27 09:59:59Z"},
        {"metric": "gateway_latency", "value": 1.0, "time": "2026-11-27t09:59:59z"},
        {"metric": "gateway_latency", "value": 1.0, "time": "0001-01-01T00:00:00+01:00"},
        {"metric": "gateway_latency", "value": 1.0, "time": "2026-11-27T09:59:59+24:00"},
        {"metric": "gateway_latency", "value": 1.0, "time": "1700000000"},
        {"metric": "gateway_latency", "value": 1.0, "time": 1700000000},
        {"metric": "gateway_latency", "value": 1.0, "time": "٢٠٢٦-11-27T09:59:59Z"},
        {"metric": "Gateway", "value": 1.0},
        {"metric": "gateway_latency\n", "value": 1.0},
        {"metric": "x" * 101, "value": 1.0},
        {"metric": "", "value": 1.0},
        {"metric": "gateway_latency", "value": 1.0, "extra": 1},
        {"metric": "gateway_latency", "extra": 1},
        {"metric": "gateway_latency", "value": 1.0, "time": None, "extra": 1},
        {"value": 1.0},
        ["gateway_latency", 1.0],
        "gateway_latency",
        None,
    ],
)
def test_the_fast_path_agrees_with_the_model_on_edge_cases(raw: object) -> None:
    check(raw)


def test_the_fast_path_takes_the_plain_form() -> None:
    """It would be no use if it passed everything on to the model."""
    for raw in (
        {"metric": "gateway_latency", "value": 87.5},
        {"metric": "gateway_latency", "value": 3, "time": "2026-11-27T09:59:59.25Z"},
        {"metric": "gateway_latency", "value": 1.0, "time": "2026-11-27T15:29:59+05:30"},
    ):
        plain = _plain_sample(raw, "shard-0", NOW)
        assert plain is not None, raw
        assert plain.time.tzinfo is UTC and type(plain.value) is float


_metrics = st.one_of(
    st.from_regex(r"[a-z0-9_.]{1,100}", fullmatch=True),
    st.text(max_size=5),
    st.just("gateway_latency"),
)
_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
)


@st.composite
def _times(draw: st.DrawFn) -> Any:
    moment = draw(
        st.datetimes(
            min_value=datetime(1, 1, 2),
            max_value=datetime(9999, 12, 30),
            timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), None]),
        )
    )
    text = moment.isoformat(timespec=draw(st.sampled_from(["seconds", "milliseconds", "auto"])))
    return draw(
        st.sampled_from(
            [text, text.replace("+00:00", "Z"), text.replace("T", " "), None, text[:-3], 12]
        )
    )


@pytest.mark.untraced
@settings(max_examples=400, deadline=None)
@given(
    metric=_metrics,
    value=_values,
    time=st.one_of(_times(), st.just("absent")),
    extra=st.booleans(),
)
def test_whatever_the_fast_path_accepts_the_model_accepts_as_the_same_sample(
    metric: str, value: object, time: object, extra: bool
) -> None:
    raw: dict[str, object] = {"metric": metric, "value": value}
    if time != "absent":
        raw["time"] = time
    if extra:
        raw["note"] = "x"
    check(raw)


_raws = st.fixed_dictionaries(
    {"metric": _metrics, "value": _values},
    optional={"time": st.one_of(_times(), st.sampled_from(["2026-11-27T09:59:59Z", None]))},
)


@pytest.mark.untraced
@settings(max_examples=200, deadline=None)
@given(raws=st.lists(_raws, max_size=12))
def test_what_a_batch_has_shown_good_changes_no_answer(raws: list[dict[str, object]]) -> None:
    """The names and times a batch's earlier samples have shown good are not checked again:
    every sample is still answered as it would be alone (the same sample, or the model's)."""
    seen = Seen()
    for raw in raws:
        alone = _plain_sample(raw, "shard-0", NOW)
        in_batch = _plain_sample(raw, "shard-0", NOW, seen)
        assert (alone is None) == (in_batch is None), raw
        if alone is not None and in_batch is not None:
            assert same(alone, in_batch), (raw, alone, in_batch)


def test_a_batch_parses_each_time_once() -> None:
    """A batch's samples mostly share a few instants: one parse each."""
    seen = Seen()
    first, second = (
        _plain_sample(
            {"metric": metric, "value": 1.0, "time": "2026-11-27T09:59:59.25Z"},
            "shard-0",
            NOW,
            seen,
        )
        for metric in ("gateway_latency", "error_rate")
    )
    assert first is not None and second is not None
    assert first.time is second.time
    assert seen.metrics == {"gateway_latency", "error_rate"}
