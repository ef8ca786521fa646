"""Escalation step timing on a fake clock: tables of minutes after the trigger and the step
notifications due then."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.core import Incident, Severity, Status, ValidationError
from vigil.core.escalation import (
    EscalationPolicy,
    Step,
    check_unique,
    due_notices,
    next_due,
    policy_for,
)

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
INCIDENT = uuid.UUID("00000000-0000-0000-0000-000000000017")

# Step 1 tells "ops" at once; 10 minutes unacknowledged: "lead" and "pager"; 30 more: "cto".
THREE = EscalationPolicy(
    name="night",
    steps=(
        Step(channels=("ops",), wait_minutes=10),
        Step(channels=("lead", "pager"), wait_minutes=30),
        Step(channels=("cto",), wait_minutes=20),
    ),
)
REPEATING = EscalationPolicy(
    name="loud",
    steps=(Step(channels=("ops",), wait_minutes=5), Step(channels=("pager",), wait_minutes=15)),
    repeat_minutes=10,
)


def due(policy: EscalationPolicy, minutes: float, status: Status = Status.ACTIVE) -> list[str]:
    found = due_notices(
        policy,
        incident_id=INCIDENT,
        triggered_at=T0,
        status=status,
        now=T0 + timedelta(minutes=minutes),
    )
    return [
        f"{n.step}.{n.repeat}:{n.channel}@{(n.due_at - T0) // timedelta(minutes=1)}" for n in found
    ]


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        (0, ["0.0:ops@0"]),
        (9.99, ["0.0:ops@0"]),
        (10, ["0.0:ops@0", "1.0:lead@10", "1.0:pager@10"]),
        (39.99, ["0.0:ops@0", "1.0:lead@10", "1.0:pager@10"]),
        (40, ["0.0:ops@0", "1.0:lead@10", "1.0:pager@10", "2.0:cto@40"]),
        # No repeat: the last step is told once, however long it stays unacknowledged.
        (60, ["0.0:ops@0", "1.0:lead@10", "1.0:pager@10", "2.0:cto@40"]),
        (10_000, ["0.0:ops@0", "1.0:lead@10", "1.0:pager@10", "2.0:cto@40"]),
    ],
)
def test_steps_fall_due_after_their_waits(minutes: float, expected: list[str]) -> None:
    assert due(THREE, minutes) == expected


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        (4, ["0.0:ops@0"]),
        (5, ["0.0:ops@0", "1.0:pager@5"]),
        (19, ["0.0:ops@0", "1.0:pager@5"]),
        # The last step's wait, then every repeat_minutes: 20, 30, 40...
        (20, ["0.0:ops@0", "1.1:pager@20"]),
        (29, ["0.0:ops@0", "1.1:pager@20"]),
        (30, ["0.0:ops@0", "1.2:pager@30"]),
        # Only the latest repeat: after a long outage one message, not a burst.
        (125, ["0.0:ops@0", "1.11:pager@120"]),
    ],
)
def test_the_last_step_repeats_when_asked(minutes: float, expected: list[str]) -> None:
    assert due(REPEATING, minutes) == expected


@pytest.mark.parametrize("status", [Status.ACKNOWLEDGED, Status.RESOLVED])
def test_acknowledgement_or_resolution_stops_it(status: Status) -> None:
    assert due(THREE, 45, status) == []
    assert due(REPEATING, 45, status) == []
    assert next_due(THREE, triggered_at=T0, status=status, now=T0) is None


@pytest.mark.parametrize(
    ("policy", "minutes", "expected"),
    [
        (THREE, 0, 10),
        (THREE, 10, 40),
        (THREE, 40, None),
        (REPEATING, 0, 5),
        (REPEATING, 5, 20),
        (REPEATING, 20, 30),
        (REPEATING, 31, 40),
    ],
)
def test_next_due(policy: EscalationPolicy, minutes: int, expected: int | None) -> None:
    found = next_due(
        policy, triggered_at=T0, status=Status.ACTIVE, now=T0 + timedelta(minutes=minutes)
    )
    assert found == (None if expected is None else T0 + timedelta(minutes=expected))


def test_keys_are_stable_and_distinct() -> None:
    first = due_notices(
        THREE,
        incident_id=INCIDENT,
        triggered_at=T0,
        status=Status.ACTIVE,
        now=T0 + timedelta(hours=1),
    )
    again = due_notices(
        THREE,
        incident_id=INCIDENT,
        triggered_at=T0,
        status=Status.ACTIVE,
        now=T0 + timedelta(hours=2),
    )
    assert [n.key for n in first] == [n.key for n in again]
    assert len({n.key for n in first}) == len(first) == 4
    other = due_notices(
        THREE,
        incident_id=uuid.uuid4(),
        triggered_at=T0,
        status=Status.ACTIVE,
        now=T0 + timedelta(hours=1),
    )
    assert not {n.key for n in first} & {n.key for n in other}
    assert [n.ordinal for n in first] == [0, 1, 1, 2]


@pytest.mark.untraced
@given(st.lists(st.integers(min_value=0, max_value=24 * 60), min_size=1, max_size=20))
def test_a_notice_once_due_stays_due_under_its_key(minutes: list[int]) -> None:
    """Rounds at any times: a key always stands for the same notice (so keyed writes send it
    at most once), every notice is due by its round, and each step reached by the last round
    was answered in some round (so it is sent at least once)."""
    seen: dict[str, tuple[int, int, str, datetime]] = {}
    for now in sorted(minutes):
        for notice in due_notices(
            REPEATING,
            incident_id=INCIDENT,
            triggered_at=T0,
            status=Status.ACTIVE,
            now=T0 + timedelta(minutes=now),
        ):
            assert notice.due_at <= T0 + timedelta(minutes=now)
            what = (notice.step, notice.repeat, notice.channel, notice.due_at)
            assert seen.setdefault(notice.key, what) == what
    steps = {step for step, _, _, _ in seen.values()}
    assert steps == ({0, 1} if max(minutes) >= 5 else {0})


def incident(rule: str, severity: Severity) -> Incident:
    return Incident(
        id=INCIDENT,
        metric="gateway_latency",
        severity=severity,
        status=Status.ACTIVE,
        triggered_at=T0,
        threshold=200.0,
        value=250.0,
        peak_value=250.0,
        last_value=250.0,
        message="m",
        rule=rule,
    )


def test_a_rule_policy_wins_over_a_severity_default() -> None:
    by_rule = EscalationPolicy(
        name="latency", steps=(Step(channels=("a",)),), rules=frozenset({"gateway_latency"})
    )
    by_severity = EscalationPolicy(
        name="crit", steps=(Step(channels=("b",)),), severities=frozenset({Severity.CRITICAL})
    )
    policies = [by_severity, by_rule]
    assert policy_for(incident("gateway_latency", Severity.CRITICAL), policies) is by_rule
    assert policy_for(incident("error_rate", Severity.CRITICAL), policies) is by_severity
    assert policy_for(incident("error_rate", Severity.WARNING), policies) is None


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"name": "Bad Name", "steps": [{"channels": ["a"]}]}, "name", "1-50 characters"),
        ({"name": "p"}, "steps", "is required"),
        ({"name": "p", "steps": []}, "steps", "1 to 10"),
        ({"name": "p", "steps": "ops"}, "steps", "list of steps"),
        ({"name": "p", "steps": [{"channels": []}]}, "steps[0].channels", "1 to 20"),
        ({"name": "p", "steps": [{"channels": ["a", "a"]}]}, "steps[0].channels", "twice"),
        (
            {"name": "p", "steps": [{"channels": ["a"], "wait_minutes": 0}]},
            "steps[0].wait_minutes",
            "between 1",
        ),
        (
            {"name": "p", "steps": [{"channels": ["a"], "wait_minutes": 1.5}]},
            "steps[0].wait_minutes",
            "whole minutes",
        ),
        ({"name": "p", "steps": [{"channels": ["a"], "after": 3}]}, "after", "not a step"),
        ({"name": "p", "steps": [{"channels": ["A"]}]}, "steps[0].channels[0]", "1-50"),
        (
            {"name": "p", "steps": [{"channels": ["a"]}], "repeat_minutes": 0},
            "repeat_minutes",
            "between 1",
        ),
        (
            {"name": "p", "steps": [{"channels": ["a"]}], "severities": ["huge"]},
            "severities[0]",
            "one of",
        ),
        (
            {"name": "p", "steps": [{"channels": ["a"]}], "rules": ["Bad!"]},
            "rules[0]",
            "characters",
        ),
        (
            {"name": "p", "steps": [{"channels": ["a"]}], "colour": "red"},
            "colour",
            "not an escalation",
        ),
    ],
)
def test_bad_policies_name_the_field(data: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(ValidationError) as raised:
        EscalationPolicy.from_dict(data)
    assert raised.value.field == field
    assert words in str(raised.value)


def test_round_trip_and_uniqueness() -> None:
    data = REPEATING.to_dict() | {"rules": ["error_rate"], "severities": ["critical"]}
    policy = EscalationPolicy.from_dict(data)
    assert EscalationPolicy.from_dict(policy.to_dict()) == policy
    clash = EscalationPolicy.from_dict({**data, "name": "other", "rules": []})
    with pytest.raises(ValidationError) as raised:
        check_unique([policy, clash])
    assert raised.value.field == "severities"
    check_unique(
        [policy, EscalationPolicy.from_dict({**data, "name": "x", "severities": [], "rules": []})]
    )
