"""What an incident group's Discord message shows, and which controls it carries, for each
state of its members (table tests), and for any group (hypothesis): no connection needed."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.core import Incident, Resolution, Severity, Status
from vigil.core.grouping import GroupSummary, summarize
from vigil.integrations._embeds import MAX_MEMBERS, group_embed, group_status_line, incident_embed
from vigil.integrations._group_buttons import group_view, open_rules

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=10)
GROUP = uuid.UUID(int=99)
RULES = ("gateway_latency", "error_rate", "command_p95_latency", "memory_usage")


def member(n: int, status: Status = Status.ACTIVE, **changes: Any) -> Incident:
    rule = RULES[n % len(RULES)]
    base = Incident(
        id=uuid.UUID(int=n + 1),
        metric=rule,
        severity=Severity.WARNING,
        status=status,
        triggered_at=T0 + timedelta(seconds=n),
        threshold=100.0,
        value=150.0,
        peak_value=160.0,
        last_value=155.0,
        message=f"{rule} exceeded warning threshold",
        group=GROUP,
        instance=f"shard-{n}" if n >= len(RULES) else None,
    )
    if status is Status.ACKNOWLEDGED:
        base = dataclasses.replace(base, acknowledged_by="alice", acknowledged_at=T0)
    if status is Status.RESOLVED:
        base = dataclasses.replace(
            base, resolved_at=T0 + timedelta(minutes=5), resolution=Resolution.AUTO
        )
    return dataclasses.replace(base, **changes)


def group(*members: Incident) -> GroupSummary:
    return summarize(GROUP, list(members))


def controls(view: Any) -> list[tuple[str, bool]]:
    """(custom_id or url, disabled) of each control, as sent to Discord."""
    return [
        (component.get("custom_id", component.get("url", "")), component.get("disabled", False))
        for row in view.to_components()
        for component in row["components"]
    ]


A, K, R = Status.ACTIVE, Status.ACKNOWLEDGED, Status.RESOLVED


@pytest.mark.parametrize(
    ("statuses", "line"),
    [
        ((A, A, A), "3 of 3 open, none acknowledged"),
        ((A, K, A), "3 of 3 open, 1 acknowledged"),
        ((K, R, K), "2 of 3 open, all acknowledged"),
        ((A, R, R), "1 of 3 open, none acknowledged"),
        ((R, R, R), "All 3 resolved automatically after 5m 00s"),
    ],
)
def test_the_groups_status_line(statuses: tuple[Status, ...], line: str) -> None:
    summary = group(*(member(n, s) for n, s in enumerate(statuses)))
    assert group_status_line(summary, now=NOW) == line


def test_a_group_resolved_partly_by_hand_says_how_many() -> None:
    summary = group(
        member(0, R),
        member(1, R, resolution=Resolution.MANUAL, resolved_by="bob"),
        member(2, R, resolution=Resolution.MANUAL, resolved_by="bob"),
    )
    assert group_status_line(summary, now=NOW).startswith("All 3 resolved (2 by hand) after")


def test_a_group_of_one_is_shown_as_its_incident() -> None:
    only = member(0)
    summary = group(only)
    shown = group_embed(summary, rules={}, snoozes={}, now=NOW)
    assert shown.to_dict() == incident_embed(only, rule=None, snooze=None, now=NOW).to_dict()
    view = group_view(summary, link=None, incident_link=None)
    assert [key for key, _ in controls(view)] == [
        f"vigil:ack:{only.id}",
        f"vigil:resolve:{only.id}",
        f"vigil:snooze:{only.id}",
    ]


@pytest.mark.parametrize(
    ("statuses", "enabled"),
    [
        ((A, A), {"vigil:group-ack", "vigil:group-resolve", "vigil:group-snooze"}),
        ((K, A), {"vigil:group-ack", "vigil:group-resolve", "vigil:group-snooze"}),
        ((K, R), {"vigil:group-resolve", "vigil:group-snooze"}),  # nothing to acknowledge
        ((R, R), set()),  # only the link is left
    ],
)
def test_the_group_controls_that_still_make_sense_are_enabled(
    statuses: tuple[Status, ...], enabled: set[str]
) -> None:
    summary = group(*(member(n, s) for n, s in enumerate(statuses)))
    link = "https://vigil.example.com/alerts#group-x"
    shown = controls(group_view(summary, link=link, incident_link=None))
    found = {key.rpartition(":")[0] for key, disabled in shown if key != link and not disabled}
    assert found == enabled
    assert [key for key, _ in shown if key.startswith("https:")] == [link]


def test_the_snooze_covers_each_open_rule_once() -> None:
    summary = group(member(0), member(4), member(1, R), member(2, K))  # 0 and 4: same rule
    assert open_rules(summary) == ["gateway_latency", "command_p95_latency"]


STATUSES = st.sampled_from([Status.ACTIVE, Status.ACKNOWLEDGED, Status.RESOLVED])
SEVERITIES = st.sampled_from(list(Severity))


@pytest.mark.untraced
@given(st.lists(st.tuples(STATUSES, SEVERITIES), min_size=2, max_size=40))
def test_any_group_fits_discord_and_shows_each_member_once(
    states: list[tuple[Status, Severity]],
) -> None:
    summary = group(*(member(n, s, severity=v) for n, (s, v) in enumerate(states)))
    embed = group_embed(summary, rules={}, snoozes={}, now=NOW)
    assert embed.title is not None and len(embed.title) <= 256
    assert embed.description is not None and len(embed.description) <= 4096
    assert embed.footer.text == f"Incident group {GROUP}"
    lines = embed.description.splitlines()
    shown = min(summary.size, MAX_MEMBERS)
    assert len(lines) == shown + (summary.size > MAX_MEMBERS)
    for line, incident in zip(lines[:shown], summary.members, strict=False):
        assert incident.severity.value.upper() in line
    if summary.size > MAX_MEMBERS:
        assert lines[-1] == f"… and {summary.size - MAX_MEMBERS} more"
    assert sum(len(f.value or "") > 1024 for f in embed.fields) == 0
    assert f"{summary.size} incidents" in embed.title
