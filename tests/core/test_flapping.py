"""Flap detection: Nagios's weighted percent state change, the thresholds, the evaluator."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.core import Evaluator, Rule, ValidationError
from vigil.core.events import Event, EventKind
from vigil.core.flapping import FlapSettings, percent_state_change, record
from vigil.core.rules import Level

from .support import at, counter_ids, latency_rule

# The worked example, by hand from the formula Nagios documents: 21 results, 20 possible
# changes; change k (k = 0 the oldest .. 19 the newest) weighs 0.8 + 0.4 * k / 19; the
# percentage is the sum of the weights of the changes that happened, times 100 / 20.
#
# results: 13 x normal, critical, critical, normal, normal, critical, critical, normal, normal
#   index: 0..12          13        14       15      16       17       18      19     20
# changes between results i-1 and i at i = 13, 15, 17, 19, i.e. k = i - 1 = 12, 14, 16, 18:
#   k=12: 0.8 + 4.8/19 = 1.052632     k=14: 0.8 + 5.6/19 = 1.094737
#   k=16: 0.8 + 6.4/19 = 1.136842     k=18: 0.8 + 7.2/19 = 1.178947
#   sum = 3.2 + 24/19 = 84.8/19 = 4.463158;  percent = 4.463158 * 100 / 20 = 22.3158 %
WORKED = "n" * 13 + "ccnnccnn"


@pytest.mark.parametrize(
    ("history", "percent"),
    [
        (WORKED, 22.3158),
        ("", 0.0),  # steady normal
        ("c" * 21, 0.0),  # steady critical: a full window, no change
        ("c" + "n" * 20, 4.0),  # one change, the oldest: 0.8 * 100 / 20
        ("n" * 20 + "c", 6.0),  # one change, the newest: 1.2 * 100 / 20
        ("cc", 5.8947),  # padded: n x 19, c, c: one change at k = 18, 1.178947 / 20
        ("nc" * 10 + "n", 100.0),  # a change at every result: the weights sum to 20
        ("n" * 19 + "wc", 5.8947),  # normal -> warning at k = 18; warning -> critical is no
        # change (both breaching: see vigil.core.flapping)
        ("n" * 17 + "wcwc", 5.6842),  # one change, normal -> warning at k = 16: 1.136842 / 20
        ("x" * 40 + WORKED, 22.3158),  # only the last 21 results count
    ],
)
def test_percent_state_change_matches_the_worked_example(history: str, percent: float) -> None:
    assert percent_state_change(history, 21) == pytest.approx(percent, abs=1e-4)


def test_a_shorter_window_weighs_its_own_changes() -> None:
    # window 5: 4 possible changes, weights 0.8, 0.9333, 1.0667, 1.2; "nccnc": k = 0, 2, 3
    assert percent_state_change("nccnc", 5) == pytest.approx((0.8 + 3.2 / 3 + 1.2) * 25)


def test_a_history_of_normal_levels_is_empty() -> None:
    assert record("", Level.NORMAL, 21) == ""
    assert record("c", Level.NORMAL, 21) == "cn"
    assert record("cn" + "n" * 19, Level.NORMAL, 21) == ""  # the change fell out
    assert len(record("wc" * 30, Level.WARNING, 21)) == 21


# Start above 20 %, stop below 5 %: a c-n-c-n burst, then normal readings. By hand (weights
# as above): after "c" 6.0; "cn" (k=18,19) 11.8947; "cnc" (k=17..19) 17.6842; "cncn"
# (k=16..19) 23.3684 > 20: flapping. Each further normal moves the four changes one older
# (-0.4211 each): 22.9474 ... 16.6316 at j=15 (k=0..3), then they drop out one by one:
# j=17 12.3158 (three left), j=18 8.1053 (two: still above 5, so still flapping), j=19 4.0:
# below 5, flapping ends.
BURST = ["c", "n", "c", "n"] + ["n"] * 19


def test_flapping_starts_above_high_and_stops_below_low() -> None:
    flap = FlapSettings(window=21, high=20.0, low=5.0)
    history = ""
    flapping = False
    seen: list[tuple[float, bool]] = []
    for letter in BURST:
        history = record(history, {"c": Level.CRITICAL, "n": Level.NORMAL}[letter], 21)
        percent = percent_state_change(history, 21)
        if not flapping and percent > flap.high:
            flapping = True
        elif flapping and percent < flap.low:
            flapping = False
        seen.append((round(percent, 4), flapping))
    by_hand = [
        (6.0, False),
        (11.8947, False),
        (17.6842, False),
        (23.3684, True),  # above 20: starts
        *((round(23.3684 - 0.4211 * j, 2), True) for j in range(1, 13)),
    ]
    for (percent, flapping_now), (hand, expected) in zip(seen, by_hand, strict=False):
        assert percent == pytest.approx(hand, abs=0.01)
        assert flapping_now is expected
    # j = 13..19: 17.89, 17.47, 17.05, 16.63 (k = 0..3), 12.32, 8.11 (both above 5: still
    # flapping, the hysteresis), 4.0 (below 5: stops).
    tail = [(17.8947, True), (17.4737, True), (17.0526, True), (16.6316, True)]
    tail += [(12.3158, True), (8.1053, True), (4.0, False)]
    assert seen[-7:] == tail  # rounded to 4 places above


@pytest.mark.parametrize(
    ("window", "high", "low", "field"),
    [
        (2, 20.0, 5.0, "flap_window"),
        (101, 20.0, 5.0, "flap_window"),
        (True, 20.0, 5.0, "flap_window"),
        (21, 0.0, 5.0, "flap_high"),
        (21, 101.0, 5.0, "flap_high"),
        (21, float("nan"), 5.0, "flap_high"),
        (21, 20.0, 20.0, "flap_low"),
        (21, 20.0, 0.0, "flap_low"),
    ],
)
def test_bad_settings_name_the_field(window: int, high: float, low: float, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        FlapSettings(window=window, high=high, low=low)
    assert caught.value.field == field


# -- the evaluator ---------------------------------------------------------------------------

# Jitter around the threshold (four changes: flapping from the fifth reading, the incident
# opened at the second), then bouncing: without flap detection one incident per bounce; with
# it, one held open. By hand: n x 16 padding, c c n c n: changes at k = 15, 17, 18, 19:
# (0.8 + 0.4 * 15/19) + (0.8 + 0.4 * 17/19) + (0.8 + 0.4 * 18/19) + 1.2 = 4.6526 -> 23.26 %.
OSCILLATING = [250.0, 250.0, 50.0, 250.0, 50.0] + [250.0, 250.0, 50.0, 50.0] * 10
QUIET = [50.0] * 25


def _run(
    rule: Rule, readings: Sequence[float], flap: FlapSettings | None
) -> tuple[Evaluator, list[tuple[int, Event]]]:
    evaluator = Evaluator([rule], new_id=counter_ids(), flap=flap)
    events: list[tuple[int, Event]] = []
    for i, value in enumerate(readings):
        result = evaluator.evaluate({rule.metric: value}, now=at(i))
        events.extend((i, event) for event in result.events)
    return evaluator, events


def _kinds(events: list[tuple[int, Event]]) -> list[tuple[int, str]]:
    return [(i, e.kind.value) for i, e in events]


def test_a_flapping_series_keeps_one_incident_open_and_says_so_once() -> None:
    rule = latency_rule(breaches_required=2, recoveries_required=2)
    _, without = _run(rule, OSCILLATING + QUIET, None)
    opened_without = [e for _, e in without if e.kind is EventKind.INCIDENT_OPENED]
    assert len(opened_without) == 10

    evaluator, events = _run(rule, OSCILLATING + QUIET, FlapSettings())
    kinds = _kinds(events)
    # opened at the second breach; flapping from the fifth reading (23.26 %, by hand above)
    assert kinds[:2] == [(1, "incident.opened"), (4, "incident.flapping")]
    assert [k for _, k in kinds].count("incident.opened") == 1
    assert [k for _, k in kinds].count("incident.resolved") == 1
    flapping_event = events[1][1]
    assert flapping_event.incident is not None and flapping_event.incident.flapping
    assert flapping_event.data["percent"] == pytest.approx(23.26, abs=0.01)
    # it ends in the quiet tail, and the normal recovery applies in that same cycle
    end, resolved = kinds[-2], kinds[-1]
    assert end[1] == "incident.flapping_ended" and resolved == (end[0], "incident.resolved")
    assert end[0] >= len(OSCILLATING) + 10
    resolved_incident = events[-1][1].incident
    assert resolved_incident is not None and not resolved_incident.flapping
    assert evaluator.open_incidents() == []
    assert evaluator.states()[rule.name].is_idle


def test_while_flapping_the_incident_is_marked_and_the_state_remembers_it() -> None:
    rule = latency_rule(breaches_required=2, recoveries_required=2)
    evaluator, _ = _run(rule, OSCILLATING, FlapSettings())
    state = evaluator.state(rule.name)
    assert state.flapping and state.flap_history
    [incident] = evaluator.open_incidents()
    assert incident.flapping


def test_flapping_with_no_incident_open_opens_nothing_new() -> None:
    # breaches_required=3: c-n-c-n-c-n never has three breaches in a row, so nothing opens,
    # with or without flap detection; flapping is recorded (without an incident).
    rule = latency_rule(breaches_required=3, recoveries_required=2)
    readings = [250.0, 50.0] * 8
    _, without = _run(rule, readings, None)
    evaluator, events = _run(rule, readings, FlapSettings())
    assert without == []
    assert [e.kind for _, e in events] == [EventKind.INCIDENT_FLAPPING]
    assert events[0][1].incident is None and events[0][1].rule == rule.name
    assert evaluator.state(rule.name).flapping


def test_a_flapping_incident_resolved_by_hand_keeps_the_series_flapping() -> None:
    rule = latency_rule(breaches_required=2, recoveries_required=2)
    evaluator, _ = _run(rule, OSCILLATING, FlapSettings())
    [incident] = evaluator.open_incidents()
    evaluator.resolve(incident.id, by="ann", now=at(100))
    state = evaluator.state(rule.name)
    assert state.incident is None and state.flapping


def test_the_state_survives_a_restore() -> None:
    rule = latency_rule(breaches_required=2, recoveries_required=2)
    first, _ = _run(rule, OSCILLATING[:6], FlapSettings())
    resumed = Evaluator([rule], states=first.states(), flap=FlapSettings())
    rest_first = [first.evaluate({rule.metric: v}, now=at(10 + i)) for i, v in enumerate(QUIET)]
    rest_resumed = [resumed.evaluate({rule.metric: v}, now=at(10 + i)) for i, v in enumerate(QUIET)]
    assert [r.events for r in rest_first] == [r.events for r in rest_resumed]


# -- invariants ------------------------------------------------------------------------------

VALUES = st.sampled_from([50.0, 90.0, 150.0, 250.0]) | st.none()


@pytest.mark.untraced
@settings(deadline=None, max_examples=200)
@given(
    readings=st.lists(VALUES, max_size=80),
    breaches=st.integers(1, 3),
    recoveries=st.integers(1, 3),
    window=st.integers(3, 25),
    thresholds=st.sampled_from([(20.0, 5.0), (10.0, 2.0), (50.0, 30.0)]),
)
def test_a_flapping_series_never_has_two_open_incidents_nor_resolves(
    readings: list[float | None],
    breaches: int,
    recoveries: int,
    window: int,
    thresholds: tuple[float, float],
) -> None:
    rule = latency_rule(breaches_required=breaches, recoveries_required=recoveries, recovery=80.0)
    flap = FlapSettings(window=window, high=thresholds[0], low=thresholds[1])
    evaluator = Evaluator([rule], new_id=counter_ids(), flap=flap)
    open_ids: set[object] = set()
    for i, value in enumerate(readings):
        before = evaluator.state(rule.name)
        result = evaluator.evaluate({rule.metric: value}, now=at(i))
        after = evaluator.state(rule.name)
        kinds = [e.kind for e in result.events]
        for event in result.events:
            if event.kind is EventKind.INCIDENT_OPENED:
                assert event.incident is not None
                open_ids.add(event.incident.id)
            elif event.kind is EventKind.INCIDENT_RESOLVED:
                assert event.incident is not None
                open_ids.discard(event.incident.id)
                # no resolution while flapping: only in a cycle that ends flapping, or calm
                assert not after.flapping
                assert not before.flapping or EventKind.INCIDENT_FLAPPING_ENDED in kinds
        assert len(open_ids) <= 1
        assert len(evaluator.open_incidents()) == len(open_ids)
        if after.incident is not None:
            assert after.incident.flapping is after.flapping
        assert kinds.count(EventKind.INCIDENT_FLAPPING) == int(
            after.flapping and not before.flapping
        )
        ended = int(before.flapping and not after.flapping)
        assert kinds.count(EventKind.INCIDENT_FLAPPING_ENDED) == ended


@pytest.mark.untraced
@settings(deadline=None, max_examples=100)
@given(readings=st.lists(VALUES, max_size=60))
def test_without_flap_detection_nothing_changes(readings: list[float | None]) -> None:
    rule = latency_rule(breaches_required=2, recoveries_required=2)
    plain = Evaluator([rule], new_id=counter_ids())
    flapless = Evaluator([rule], new_id=counter_ids(), flap=None)
    for i, value in enumerate(readings):
        first = plain.evaluate({rule.metric: value}, now=at(i))
        second = flapless.evaluate({rule.metric: value}, now=at(i))
        assert first.events == second.events
        assert not plain.state(rule.name).flap_history
