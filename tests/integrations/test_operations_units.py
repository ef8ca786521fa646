"""The parts of Discord operations that need no connection: settings checks, who may do what,
how actors are written, and what the message shows for each state (table tests)."""

from __future__ import annotations

import dataclasses
import math
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.core import Incident, Resolution, Rule, Severity, Status
from vigil.core.errors import ValidationError
from vigil.core.silences import Snooze
from vigil.integrations._buttons import incident_view
from vigil.integrations._embeds import incident_embed, status_line
from vigil.integrations._slash import PAGE_SIZE, incidents_embed
from vigil.integrations.discord import DiscordOperations, actor, parse_actor
from vigil.store.records import Role

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def an_incident(**changes: Any) -> Incident:
    base = Incident(
        id=uuid.UUID(int=7),
        metric="memory_usage",
        severity=Severity.WARNING,
        status=Status.ACTIVE,
        triggered_at=T0,
        threshold=400.0,
        value=450.0,
        peak_value=470.0,
        last_value=455.0,
        message="Memory Usage exceeded warning threshold: 450.00 MB >= 400.00 MB",
    )
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"channel_id": 0}, "channel_id"),
        ({"channel_id": True}, "channel_id"),
        ({"channel_id": "123"}, "channel_id"),
        ({"severity_channels": {"urgent": 1}}, "severity_channels"),
        ({"severity_channels": {"critical": -1}}, "severity_channels"),
        ({"admin_roles": "123"}, "admin_roles"),
        ({"viewer_users": [1, 2.5]}, "viewer_users"),
        ({"guild_id": 2**63}, "guild_id"),
        ({"base_url": "vigil.example.com"}, "base_url"),
        ({"check_every": 0}, "check_every"),
        ({"retry_after": math.nan}, "retry_after"),
        ({"max_retry": -1.0}, "max_retry"),
    ],
)
def test_bad_settings_name_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        DiscordOperations(**({"channel_id": 1} | changes))
    assert caught.value.field == field


def member(user_id: int, *roles: int) -> Any:
    return SimpleNamespace(id=user_id, roles=[SimpleNamespace(id=r) for r in roles])


CONFIG = DiscordOperations(
    channel_id=1, admin_roles=[10], admin_users=[100], viewer_roles=[20], viewer_users=[200]
)


@pytest.mark.parametrize(
    ("user", "role"),
    [
        (member(1, 10), Role.ADMIN),
        (member(1, 20, 10), Role.ADMIN),
        (member(1, 20), Role.VIEWER),
        (member(100), Role.ADMIN),
        (member(100, 20), Role.ADMIN),
        (member(200), Role.VIEWER),
        (member(200, 10), Role.VIEWER),  # a user id mapped to viewer wins over an admin role
        (member(1), None),
        (member(1, 30), None),
        (SimpleNamespace(id=200), Role.VIEWER),  # a user outside a guild has no roles
        (SimpleNamespace(id=1), None),
    ],
)
def test_who_may_do_what(user: Any, role: Role | None) -> None:
    assert CONFIG.role_of(user) is role


def test_severity_channels_choose_where_an_incident_goes() -> None:
    config = DiscordOperations(channel_id=1, severity_channels={"critical": 2})
    assert config.channel_for(Severity.CRITICAL) == 2
    assert config.channel_for(Severity.WARNING) == 1


@pytest.mark.untraced
@given(
    name=st.text(min_size=1, max_size=32).filter(lambda s: "\n" not in s),
    user_id=st.integers(min_value=1, max_value=2**63 - 1),
)
def test_an_actor_reads_back_as_the_discord_user(name: str, user_id: int) -> None:
    written = actor(SimpleNamespace(name=name, id=user_id))
    assert parse_actor(written) == (name, user_id)


@pytest.mark.parametrize("by", [None, "", "alice", "alice [discord:]", "alice [slack:12]"])
def test_other_actors_are_not_discord_users(by: str | None) -> None:
    assert parse_actor(by) is None


LATER = T0 + timedelta(minutes=9, seconds=30)


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        ({}, "Active for 9m 30s, not acknowledged"),
        (
            {
                "status": Status.ACKNOWLEDGED,
                "acknowledged_by": "alice [discord:1]",
                "acknowledged_at": T0 + timedelta(minutes=2),
            },
            f"Acknowledged by alice [discord:1] <t:{int(T0.timestamp()) + 120}:R>",
        ),
        (
            {"status": Status.RESOLVED, "resolution": Resolution.AUTO, "resolved_at": LATER},
            "Resolved automatically (the metric recovered) after 9m 30s",
        ),
        (
            {
                "status": Status.RESOLVED,
                "resolution": Resolution.MANUAL,
                "resolved_by": "bob",
                "resolved_at": T0 + timedelta(hours=1, minutes=2),
            },
            "Resolved by bob after 1h 02m",
        ),
    ],
)
def test_the_status_line_of_each_state(changes: dict[str, Any], line: str) -> None:
    assert status_line(an_incident(**changes), now=LATER) == line


def test_the_embed_shows_the_numbers_the_note_and_the_snooze() -> None:
    rule = Rule(metric="memory_usage", unit="MB", warning=400.0, critical=480.0)
    snooze = Snooze(
        metric="memory_usage",
        until=T0 + timedelta(hours=1),
        reason="deploy",
        by="alice [discord:1]",
        created_at=T0,
    )
    embed = incident_embed(an_incident(notes="on *it*"), rule=rule, snooze=snooze, now=LATER)
    fields = {field.name: field.value for field in embed.fields}
    assert embed.title is not None and "WARNING · Memory Usage" in embed.title
    assert fields["Value"] == "455.00 MB" and fields["Peak"] == "470.00 MB"
    assert fields["Threshold"] == "400.00 MB"
    assert fields["Note"] == "on \\*it\\*"  # Markdown shown as typed
    assert "deploy" in str(fields["Snoozed"]) and "alice" in str(fields["Snoozed"])
    assert embed.footer.text == f"Incident {uuid.UUID(int=7)}"
    assert "Flapping" not in fields


def test_a_flapping_incident_says_it_is_held_open() -> None:
    embed = incident_embed(an_incident(flapping=True), rule=None, snooze=None, now=LATER)
    fields = {field.name: field.value for field in embed.fields}
    assert fields["Flapping"] == "Held open: its changes are not notified until it settles."


@pytest.mark.parametrize(
    ("status", "link", "expected"),
    [
        (
            Status.ACTIVE,
            None,
            [("vigil:ack:", False), ("vigil:resolve:", False), ("vigil:snooze:", False)],
        ),
        (
            Status.ACKNOWLEDGED,
            None,
            [("vigil:ack:", True), ("vigil:resolve:", False), ("vigil:snooze:", False)],
        ),
        (Status.RESOLVED, None, []),
        (
            Status.RESOLVED,
            "https://v.example/incidents/x",
            [("https://v.example/incidents/x", False)],
        ),
    ],
)
def test_the_controls_that_still_make_sense(
    status: Status, link: str | None, expected: list[tuple[str, bool]]
) -> None:
    view = incident_view(an_incident(status=status), link=link)
    shown = [
        (component.get("custom_id", component.get("url", "")), component.get("disabled", False))
        for row in view.to_components()
        for component in row["components"]
    ]
    assert [(key.split("0000")[0], disabled) for key, disabled in shown] == expected


@pytest.mark.parametrize(
    ("count", "page", "fields", "footer", "description"),
    [
        (25, 1, 10, "Page 1 of 3 · 25 incidents", None),
        (25, 3, 5, "Page 3 of 3 · 25 incidents", None),
        (25, 4, 0, "Page 4 of 3 · 25 incidents", "No incident on this page."),
        (0, 1, 0, "Page 1 of 1 · 0 incidents", "No incident yet."),
    ],
)
def test_the_incidents_answer_is_paged(
    count: int, page: int, fields: int, footer: str, description: str | None
) -> None:
    """``/vigil incidents page:N``: ten a page, as ``incident_history`` pages them."""
    everyone = [an_incident(id=uuid.UUID(int=i + 1)) for i in range(count)]
    shown = everyone[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    pages = math.ceil(count / PAGE_SIZE)
    embed = incidents_embed(shown, page=page, pages=pages, total=count, now=T0)
    assert len(embed.fields) == fields
    assert all(str(i.id) in (f.value or "") for i, f in zip(shown, embed.fields, strict=True))
    assert embed.footer.text is not None and embed.footer.text.startswith(footer)
    assert embed.description == description
