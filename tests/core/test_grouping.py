"""Incident grouping: which group each incident joins (tables of windows) and the
invariants over random openings and resolutions (hypothesis)."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.core import IllegalTransitionError, Incident, Severity, Status, ValidationError
from vigil.core.grouping import (
    OpenGroup,
    acknowledge_group,
    assign,
    check_window,
    summarize,
)
from vigil.core.incidents import resolve

from .support import T0, counter_ids

WINDOW = timedelta(seconds=60)


def incident(
    n: int, at_s: float, *, rule: str | None = None, severity: str = "warning"
) -> Incident:
    return Incident(
        id=uuid.UUID(int=1000 + n),
        rule=rule or f"rule{n}",
        metric=f"metric{n}",
        severity=Severity(severity),
        status=Status.ACTIVE,
        triggered_at=T0 + timedelta(seconds=at_s),
        threshold=1.0,
        value=2.0,
        peak_value=2.0,
        last_value=2.0,
        message=f"rule{n} is high",
    )


def groups_of(times: list[float], window: timedelta = WINDOW) -> list[list[int]]:
    """The groups (as lists of incident numbers) that incidents opening at ``times`` form
    when each cycle's openings are assigned in turn, as the store does."""
    open_groups: dict[uuid.UUID, OpenGroup] = {}
    members: dict[uuid.UUID, list[int]] = {}
    new_id = counter_ids()
    for n, at_s in enumerate(times):
        outcome = assign([incident(n, at_s)], open_groups.values(), window=window, new_id=new_id)
        for group in outcome.created + outcome.updated:
            open_groups[group.id] = group
        for ident in outcome.members.values():
            members.setdefault(ident, []).append(n)
    return list(members.values())


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ([0, 0, 0], [[0, 1, 2]]),  # three rules breaching together: one group
        ([0, 30, 60], [[0, 1, 2]]),  # each within the window of the one before
        ([0, 60], [[0, 1]]),  # exactly the window apart: still together
        ([0, 61], [[0], [1]]),  # just past it: apart
        ([0, 50, 100, 150], [[0, 1, 2, 3]]),  # chained: each near the last member
        ([0, 10, 200, 230], [[0, 1], [2, 3]]),  # two bursts, two groups
        ([0], [[0]]),  # a lone incident is a group of one
    ],
)
def test_incidents_within_the_window_of_each_other_form_one_group(
    times: list[float], expected: list[list[int]]
) -> None:
    assert groups_of(times) == expected


def test_a_window_of_zero_turns_grouping_off() -> None:
    assert groups_of([0, 0, 0], timedelta(0)) == []
    assert assign([incident(0, 0)], [], window=timedelta(0)).members == {}


def test_one_cycle_opening_several_incidents_makes_one_group_of_them() -> None:
    outcome = assign([incident(n, 0) for n in range(3)], [], window=WINDOW, new_id=counter_ids())
    [group] = outcome.created
    assert set(outcome.members.values()) == {group.id}
    assert len(outcome.members) == 3


def test_an_incident_joins_the_most_recent_of_the_groups_in_its_window() -> None:
    older = OpenGroup(id=uuid.UUID(int=1), opened_at=T0, last_opened_at=T0)
    newer = OpenGroup(id=uuid.UUID(int=2), opened_at=T0, last_opened_at=T0 + timedelta(seconds=20))
    outcome = assign([incident(0, 40)], [older, newer], window=WINDOW)
    assert outcome.members == {uuid.UUID(int=1000): newer.id}
    [updated] = outcome.updated
    assert updated.last_opened_at == T0 + timedelta(seconds=40)


def test_rules_declared_related_join_their_label_s_group_outside_the_window() -> None:
    labelled = OpenGroup(id=uuid.UUID(int=99), opened_at=T0, last_opened_at=T0, label="discord")
    late = incident(0, 3600, rule="error_rate")
    outcome = assign([late], [labelled], window=WINDOW, labels={"error_rate": "discord"})
    assert outcome.members == {late.id: labelled.id}
    # An unrelated rule that late starts a group of its own.
    other = assign([incident(1, 3600)], [labelled], window=WINDOW, new_id=counter_ids())
    assert other.members[uuid.UUID(int=1001)] != labelled.id


def test_a_labelled_rule_with_no_open_group_of_its_label_starts_one() -> None:
    outcome = assign(
        [incident(0, 0, rule="error_rate")],
        [],
        window=WINDOW,
        labels={"error_rate": "discord"},
        new_id=counter_ids(),
    )
    [group] = outcome.created
    assert group.label == "discord"


@pytest.mark.parametrize("bad", [-1, float("nan"), 86_401, "60", True])
def test_a_window_that_is_not_a_number_of_seconds_in_range_is_refused(bad: object) -> None:
    with pytest.raises(ValidationError, match="group_window"):
        check_window("group_window", bad)


def test_a_summary_reports_count_worst_severity_and_status_from_its_members() -> None:
    gid = uuid.UUID(int=7)
    members = [
        dataclasses.replace(incident(0, 0, rule="gateway_latency"), group=gid),
        dataclasses.replace(incident(1, 5, rule="error_rate", severity="critical"), group=gid),
        dataclasses.replace(incident(2, 9, rule="command_p95_latency"), group=gid),
    ]
    summary = summarize(gid, members)
    assert summary.headline() == (
        "3 incidents: gateway_latency, error_rate, command_p95_latency; most severe critical"
    )
    assert (summary.size, summary.status, summary.open_count) == (3, Status.ACTIVE, 3)
    resolved = [resolve(m, now=T0 + timedelta(minutes=5))[0] for m in members]
    assert summarize(gid, resolved[:2] + members[2:]).status is Status.ACTIVE
    done = summarize(gid, resolved)
    assert (done.status, done.resolved_at) == (Status.RESOLVED, T0 + timedelta(minutes=5))


def test_acknowledging_a_group_acknowledges_its_active_members_only() -> None:
    gid = uuid.UUID(int=7)
    members = [dataclasses.replace(incident(n, n), group=gid) for n in range(3)]
    members[2] = resolve(members[2], now=T0)[0]
    changes = acknowledge_group(summarize(gid, members), by="ana", now=T0)
    assert [(i.id, i.status) for i, _ in changes] == [
        (members[0].id, Status.ACKNOWLEDGED),
        (members[1].id, Status.ACKNOWLEDGED),
    ]
    assert all(event.data["group"] == str(gid) for _, event in changes)
    again = summarize(gid, [i for i, _ in changes] + [members[2]])
    assert again.status is Status.ACKNOWLEDGED
    with pytest.raises(IllegalTransitionError):
        acknowledge_group(again, by="ana", now=T0)


# -- invariants ----------------------------------------------------------------------------

# One step: open an incident some seconds after the last step, or resolve an open one.
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("open"), st.integers(0, 200)),
        st.tuples(st.just("resolve"), st.integers(0, 50)),
    ),
    max_size=60,
)


@pytest.mark.untraced
@settings(deadline=None, max_examples=300)
@given(steps=STEPS, window_s=st.sampled_from([0, 10, 60, 120]), batch=st.booleans())
def test_grouping_never_loses_or_duplicates_an_incident_and_resolved_groups_are_resolved(
    steps: list[tuple[str, int]], window_s: int, batch: bool
) -> None:
    window = timedelta(seconds=window_s)
    incidents: dict[uuid.UUID, Incident] = {}
    groups: dict[uuid.UUID, OpenGroup] = {}
    new_id = counter_ids()
    clock = 0.0
    waiting: list[Incident] = []  # opened this "cycle", assigned together

    def flush() -> None:
        open_groups = [
            g
            for g in groups.values()
            if any(i.group == g.id and i.is_open for i in incidents.values())
        ]
        outcome = assign(waiting, open_groups, window=window, new_id=new_id)
        if window_s:
            assert set(outcome.members) == {i.id for i in waiting}  # each assigned, once
        for group in outcome.created + outcome.updated:
            groups[group.id] = group
        for item in waiting:
            incidents[item.id] = dataclasses.replace(item, group=outcome.members.get(item.id))
        waiting.clear()

    for n, (action, amount) in enumerate(steps):
        if action == "open":
            clock += amount
            waiting.append(incident(n, clock))
            if not batch or amount:
                flush()
        else:
            flush()
            open_ones = sorted((i for i in incidents.values() if i.is_open), key=lambda i: i.id)
            if open_ones:
                chosen = open_ones[amount % len(open_ones)]
                incidents[chosen.id] = resolve(chosen, now=T0 + timedelta(seconds=clock))[0]
    flush()

    grouped = [i for i in incidents.values() if i.group is not None]
    if window_s == 0:
        assert grouped == []
        return
    assert len(grouped) == len(incidents)  # none lost
    members: dict[uuid.UUID, list[Incident]] = {}
    for item in incidents.values():
        assert item.group is not None
        members.setdefault(item.group, []).append(item)
    assert sum(len(m) for m in members.values()) == len(incidents)  # none in two groups
    assert set(members) == set(groups)  # no empty group
    for gid, group_members in members.items():
        summary = summarize(gid, group_members)
        if summary.status is Status.RESOLVED:
            assert all(not m.is_open for m in group_members)
        else:
            assert any(m.is_open for m in group_members)
        # Members opened in order, each within the window of the one before.
        times = [m.triggered_at for m in summary.members]
        assert all(b - a <= window for a, b in itertools.pairwise(times))
