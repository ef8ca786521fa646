"""Channels: validation through apprise's own parser, masking, and who wants which event."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from vigil.core import EventKind, Severity, Status, ValidationError
from vigil.core.events import Event
from vigil.notify import (
    ALL_EVENTS,
    Channel,
    NotifyOn,
    inspect_url,
    redacted_url,
    renotify_due,
    wants,
)

from .support import T0, lifecycle

DISCORD = "discord://417429632418316298/JHZ7lQml277CDHmQKMHI8qBe7bk2ZwO5UKjCiOAF7711"


def channel(**overrides: Any) -> Channel:
    fields: dict[str, Any] = {"name": "ops", "url": DISCORD}
    fields.update(overrides)
    return Channel(**fields)


@pytest.mark.parametrize(
    ("url", "schema", "name", "rich"),
    [
        (DISCORD, "discord", "Discord", False),
        ("https://discord.com/api/webhooks/4174296324/JHZ7lQml277C", "discord", "Discord", False),
        (
            "mailto://127.0.0.1:2525?from=vigil@example.com&to=ops@example.com",
            "mailto",
            "E-Mail",
            True,
        ),
        ("mailtos://user:pass@smtp.example.com?to=ops@example.com", "mailtos", "E-Mail", True),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#alerts", "slack", "Slack", True),
        (
            "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7F",
            "slack",
            "Slack",
            True,
        ),
        ("tgram://123456789:AABBCCddeeffgghh/-100200300", "tgram", "Telegram", True),
        ("json://127.0.0.1:8080/hook", "json", "JSON", False),
        ("jsons://hooks.example.com/path", "jsons", "JSON", False),
    ],
)
def test_apprise_urls_are_accepted_and_recognised(
    url: str, schema: str, name: str, rich: bool
) -> None:
    service = channel(url=url).service
    assert (service.schema, service.name, service.rich) == (schema, name, rich)
    assert service.setup_url and service.setup_url.startswith("https://")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("nope://somewhere/else", "unsupported scheme nope://"),
        ("https://example.com/webhook", "use json://host/path"),
        ("discord://417429632418316298", "not a valid Discord URL"),
        ("discord://417429632418316298", "appriseit.com/services/discord"),
        ("json://", "not a valid JSON URL"),
        ("mailto://127.0.0.1?from=not-an-address", "not a valid E-Mail URL"),
        ("discord:417429632418316298/token", "must be an apprise URL"),
        ("just some words", "one URL, without spaces"),
        ("", "required"),
        ("discord://4...8/***", "masked form"),
        ("json://h/" + "x" * 2000, "at most 2000"),
    ],
)
def test_invalid_urls_are_refused_with_a_reason(url: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        channel(url=url)
    assert caught.value.field == "url"
    assert fragment in str(caught.value)


def test_apprise_reasons_do_not_quote_secrets_back() -> None:
    with pytest.raises(ValidationError) as caught:
        channel(url="discord://417429632418316298/s3cr3t-token?flags=oops")
    message = str(caught.value)
    assert "flags setting" in message  # apprise's own reason
    assert "oops" not in message and "s3cr3t-token" not in message


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"name": "Ops Team"}, "name", "a-z, 0-9"),
        ({"name": "x" * 51}, "name", "1-50"),
        ({"name": ""}, "name", "1-50"),
        ({"min_severity": "urgent"}, "min_severity", "info, warning, critical"),
        ({"min_severity": 2}, "min_severity", "info, warning, critical"),
        ({"events": ["opened", "exploded"]}, "events", "unknown event 'exploded'"),
        ({"events": []}, "events", "at least one"),
        ({"events": "opened"}, "events", "must be a list"),
        ({"enabled": "yes"}, "enabled", "true or false"),
        ({"renotify_minutes": 0}, "renotify_minutes", "between 1 and 10080"),
        ({"renotify_minutes": 10081}, "renotify_minutes", "between 1 and 10080"),
        ({"renotify_minutes": 2.5}, "renotify_minutes", "whole minutes"),
        ({"renotify_minutes": True}, "renotify_minutes", "whole minutes"),
    ],
)
def test_invalid_channels_name_the_field(fields: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        channel(**fields)
    assert caught.value.field == field
    assert fragment in str(caught.value)


def test_defaults() -> None:
    c = channel()
    assert (c.min_severity, c.events, c.enabled, c.renotify_minutes) == (
        Severity.INFO,
        ALL_EVENTS,
        True,
        None,
    )
    assert channel(min_severity="critical", events=["resolved"]).events == {NotifyOn.RESOLVED}


# -- masking -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown", "secrets"),
    [
        (DISCORD, "discord://4...8/***", ["417429632418316298", "JHZ7lQml277CDHmQ"]),
        (
            "https://discord.com/api/webhooks/417429632418316298/JHZ7lQml277CDHmQ?thread=12",
            "discord://4...8/***?***",
            ["417429632418316298", "JHZ7lQml277CDHmQ"],
        ),
        (
            "mailtos://alerts:hunter2pass@smtp.example.com?to=ops@example.com",
            "mailtos://alerts:****@smtp.example.com/***?***",
            ["hunter2pass"],
        ),
        (
            "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#alerts",
            "slack://T...2/***",
            ["T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7FQ"],
        ),
        (
            "tgram://123456789:AABBCCddeeffgghh/-100200300",
            "tgram://1...h/***",
            ["AABBCCddeeffgghh", "123456789"],
        ),
        (
            "json://hooks.example.com/catch/8812/t0k3n?+Authorization=Bearer%20abcdef",
            "json://hooks.example.com/***?***",
            ["t0k3n", "abcdef"],
        ),
        ("json://user:pw123@hooks.example.com", "json://user:****@hooks.example.com", ["pw123"]),
        ("nope://secret-thing", "nope://***", ["secret-thing"]),
        ("garbage", "***", ["garbage"]),
    ],
)
def test_redacted_url_keeps_scheme_and_host_and_masks_secrets(
    url: str, shown: str, secrets: list[str]
) -> None:
    assert redacted_url(url) == shown
    assert not any(secret in shown for secret in secrets)


def test_a_channel_shows_its_url_masked_unless_asked_for_storage() -> None:
    c = channel(renotify_minutes=30, events=["opened", "resolved"], min_severity="warning")
    assert "JHZ7" not in repr(c) and "417429632418316298" not in repr(c)
    public = c.to_dict()
    assert public == {
        "name": "ops",
        "url": "discord://4...8/***",
        "min_severity": "warning",
        "events": ["opened", "resolved"],
        "enabled": True,
        "renotify_minutes": 30,
        "delivery": "realtime",
        "digest_at": "09:00",
        "timezone": "UTC",
    }
    stored = c.to_dict(reveal_url=True)
    assert stored["url"] == DISCORD
    assert Channel.from_dict(stored) == c
    # The masked form coming back (an unchanged form field) is never stored as the URL.
    with pytest.raises(ValidationError) as caught:
        Channel.from_dict(public)
    assert caught.value.field == "url"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "ops"}, "url"),
        ({"url": DISCORD}, "name"),
        ({"name": "ops", "url": DISCORD, "colour": 1}, "colour"),
    ],
)
def test_from_dict_names_what_is_wrong(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Channel.from_dict(data)
    assert caught.value.field == field


def test_inspect_url_is_what_channels_use() -> None:
    assert inspect_url(f"  {DISCORD}  ").schema == "discord"
    with pytest.raises(ValidationError):
        inspect_url("nope://x")


# -- who is told what ----------------------------------------------------------------------------


def test_wants_matches_event_kind_severity_and_enabled() -> None:
    events = lifecycle()  # opened is warning; escalated, acknowledged, resolved are critical
    everything = channel()
    critical_only = channel(min_severity="critical")
    openings = channel(events=["opened", "escalated"])
    off = channel(enabled=False)
    assert all(wants(everything, e) for e in events.values())
    assert [k for k, e in events.items() if wants(critical_only, e)] == [
        "escalated",
        "acknowledged",
        "resolved",
    ]
    assert [k for k, e in events.items() if wants(openings, e)] == ["opened", "escalated"]
    assert not any(wants(off, e) for e in events.values())
    rule_changed = Event(kind=EventKind.RULE_CHANGED, at=T0, metric="gateway_latency")
    assert not wants(everything, rule_changed)


@pytest.mark.parametrize(
    ("channel_fields", "incident_changes", "minutes_since", "due"),
    [
        ({"renotify_minutes": 30}, {}, 30, True),
        ({"renotify_minutes": 30}, {}, 29, False),
        ({"renotify_minutes": None}, {}, 600, False),  # off by default
        ({"renotify_minutes": 30}, {"status": Status.ACKNOWLEDGED}, 600, False),
        ({"renotify_minutes": 30}, {"severity": Severity.WARNING}, 600, False),
        ({"renotify_minutes": 30, "enabled": False}, {}, 600, False),
        ({"renotify_minutes": 30, "events": ["resolved"]}, {}, 600, False),
    ],
)
def test_renotify_is_for_open_unacknowledged_critical_incidents(
    channel_fields: dict[str, Any], incident_changes: dict[str, Any], minutes_since: int, due: bool
) -> None:
    incident = lifecycle()["escalated"].incident
    assert incident is not None and incident.status is Status.ACTIVE
    incident = dataclasses.replace(incident, **incident_changes)
    now = T0 + timedelta(hours=1)
    last = now - timedelta(minutes=minutes_since)
    assert renotify_due(channel(**channel_fields), incident, last_sent_at=last, now=now) is due


def test_a_url_is_parsed_by_apprise_once_however_often_it_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every channel read from the database is checked again (the dispatcher reads them for
    every batch it delivers): the verdict on a URL already seen is kept, not parsed again."""
    import apprise

    parsed: list[str] = []
    instantiate = apprise.Apprise.instantiate

    def counting(url: str, *args: Any, **kwargs: Any) -> Any:
        parsed.append(url)
        return instantiate(url, *args, **kwargs)

    monkeypatch.setattr(apprise.Apprise, "instantiate", staticmethod(counting))
    url = "json://127.0.0.1:8080/parsed-once?+X-Team=ops"
    first = inspect_url(url)
    for _ in range(5):
        assert Channel(name="ops", url=url).service == first
    assert len(parsed) <= 2  # the URL itself, and apprise's canonical form of it (once)
    with pytest.raises(ValidationError):  # a refusal is not remembered as anything else
        inspect_url("json://127.0.0.1:99999/hook")
    with pytest.raises(ValidationError):
        inspect_url("json://127.0.0.1:99999/hook")
