"""What a notification says, for each incident event and kind of channel."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest

from vigil.core import Evaluator, Event, EventKind, Rule, ValidationError, resolve
from vigil.notify import (
    BodyFormat,
    Channel,
    Tone,
    format_event,
    format_test,
    idempotency_key,
)

from .support import INCIDENT_ID, RULE, T0, lifecycle

BASE_URL = "https://vigil.example.com/"
LINK = f"https://vigil.example.com/incidents/{INCIDENT_ID}"
DISCORD = Channel(name="discord", url="discord://4174296324/JHZ7lQml277C")
SLACK = Channel(name="slack", url="slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#alerts")
WEBHOOK = Channel(name="hook", url="json://127.0.0.1:9/hook")


@pytest.mark.parametrize(
    ("kind", "title", "tone", "status"),
    [
        ("opened", "[WARNING] Gateway Latency: incident opened", Tone.WARNING, "active"),
        (
            "escalated",
            "[CRITICAL] Gateway Latency: escalated from warning",
            Tone.CRITICAL,
            "active",
        ),
        (
            "acknowledged",
            "[CRITICAL] Gateway Latency: acknowledged by alice",
            Tone.CRITICAL,
            "acknowledged by alice",
        ),
        (
            "resolved",
            "[RESOLVED] Gateway Latency: resolved automatically after 5m 30s",
            Tone.RESOLVED,
            "resolved automatically",
        ),
    ],
)
def test_each_incident_event_has_its_title_tone_and_status(
    kind: str, title: str, tone: Tone, status: str
) -> None:
    message = format_event(lifecycle()[kind], WEBHOOK, base_url=BASE_URL, rule=RULE)
    assert (message.title, message.tone) == (title, tone)
    assert dict(message.fields)["Status"] == status
    assert message.link == LINK


def test_fields_hold_the_incident_facts_with_units() -> None:
    message = format_event(lifecycle()["acknowledged"], WEBHOOK, rule=RULE)
    assert message.fields == (
        ("Metric", "gateway_latency"),
        ("Value", "250.00 ms"),
        ("Threshold", "100.00 ms"),  # the trigger's, kept through the escalation (#5)
        ("Peak", "250.00 ms"),
        ("Duration", "2m 30s"),
        ("Status", "acknowledged by alice"),
        ("Notes", "looking at the gateway"),
    )
    assert message.lead == "Gateway Latency exceeded critical threshold: 250.00 ms >= 200.00 ms"


def test_without_the_rule_the_metric_names_itself_and_values_have_no_unit() -> None:
    message = format_event(lifecycle()["opened"], WEBHOOK)
    assert message.title == "[WARNING] Gateway Latency: incident opened"
    assert dict(message.fields)["Value"] == "160.00"
    assert message.link is None


def test_a_manual_resolution_names_who() -> None:
    acknowledged = lifecycle()["acknowledged"]
    assert acknowledged.incident is not None
    _, event = resolve(acknowledged.incident, by="bob", now=T0 + timedelta(minutes=10))
    message = format_event(dataclasses.replace(event, id=9), WEBHOOK, rule=RULE)
    assert message.title == "[RESOLVED] Gateway Latency: resolved by bob after 9m 30s"
    assert dict(message.fields)["Status"] == "resolved by bob"


def test_plain_text_body() -> None:
    message = format_event(lifecycle()["escalated"], WEBHOOK, base_url=BASE_URL, rule=RULE)
    assert message.text == "\n".join(
        [
            "Gateway Latency exceeded critical threshold: 250.00 ms >= 200.00 ms",
            "",
            "Metric: gateway_latency",
            "Value: 250.00 ms",
            "Threshold: 100.00 ms",
            "Peak: 250.00 ms",
            "Duration: 1m 00s",
            "Status: active",
            "",
            f"Incident: {LINK}",
        ]
    )
    assert message.body_for(WEBHOOK.service) == (message.text, BodyFormat.TEXT)


def test_markdown_body_escapes_what_people_typed() -> None:
    acknowledged = lifecycle()["acknowledged"]
    assert acknowledged.incident is not None
    sneaky = dataclasses.replace(
        acknowledged,
        incident=dataclasses.replace(acknowledged.incident, notes="*not* [a link](x)\n# big"),
    )
    message = format_event(sneaky, SLACK, base_url=BASE_URL, rule=RULE)
    markdown = message.markdown
    assert "- **Metric:** gateway\\_latency" in markdown
    assert "- **Notes:** \\*not\\* \\[a link\\](x) \\# big" in markdown
    assert markdown.endswith(f"Open incident: [{LINK}]({LINK})")
    assert message.body_for(SLACK.service) == (markdown, BodyFormat.MARKDOWN)


def test_discord_layout_puts_each_fact_under_its_own_heading() -> None:
    acknowledged = lifecycle()["acknowledged"]
    assert acknowledged.incident is not None
    hashtag = dataclasses.replace(
        acknowledged, incident=dataclasses.replace(acknowledged.incident, notes="#ops on it")
    )
    message = format_event(hashtag, DISCORD, base_url=BASE_URL, rule=RULE)
    body, body_format = message.body_for(DISCORD.service)
    assert body_format is BodyFormat.MARKDOWN
    lines = body.split("\n")
    assert lines[:3] == [
        "Gateway Latency exceeded critical threshold: 250.00 ms \\>= 200.00 ms",
        "",
        f"[Open incident]({LINK})",
    ]
    assert lines[3:7] == ["# Metric", "gateway_latency", "# Value", "250.00 ms"]
    # A value starting with "#" must not become a heading of its own.
    assert lines[-2:] == ["# Notes", "\u200b#ops on it"]


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (59, "59s"), (61, "1m 01s"), (3600, "1h 00m"), (7325, "2h 02m"), (90000, "1d 1h")],
)
def test_durations_read_naturally(seconds: int, shown: str) -> None:
    escalated = lifecycle()["escalated"]
    assert escalated.incident is not None
    later = escalated.incident.triggered_at + timedelta(seconds=seconds)
    message = format_event(escalated, WEBHOOK, repeat=1, now=later)
    assert dict(message.fields)["Duration"] == shown


def test_a_reminder_has_its_own_title_and_key() -> None:
    escalated = lifecycle()["escalated"]
    first = format_event(escalated, WEBHOOK, rule=RULE)
    reminder = format_event(escalated, WEBHOOK, rule=RULE, repeat=1, now=T0 + timedelta(hours=1))
    second = format_event(escalated, WEBHOOK, rule=RULE, repeat=2, now=T0 + timedelta(hours=2))
    assert reminder.title == "[CRITICAL] Reminder: Gateway Latency is still unacknowledged"
    assert len({first.idempotency_key, reminder.idempotency_key, second.idempotency_key}) == 3
    assert dict(reminder.fields)["Duration"] == "59m 30s"


def test_idempotency_key_is_stable_per_incident_event_and_channel() -> None:
    opened = lifecycle()["opened"]
    key = format_event(opened, WEBHOOK).idempotency_key
    assert key == format_event(opened, WEBHOOK, base_url=BASE_URL, rule=RULE).idempotency_key
    assert key == idempotency_key(INCIDENT_ID, 1, "hook")
    assert uuid.UUID(key).version == 5
    assert key != idempotency_key(INCIDENT_ID, 2, "hook")
    assert key != idempotency_key(INCIDENT_ID, 1, "discord")
    assert key != idempotency_key(uuid.UUID(int=8), 1, "hook")


def test_colours_by_tone_red_amber_blue_green() -> None:
    def rgb(tone: Tone) -> tuple[int, int, int]:
        return tone.colour >> 16, (tone.colour >> 8) & 0xFF, tone.colour & 0xFF

    red, green, blue = rgb(Tone.CRITICAL)
    assert red > 3 * max(green, blue)
    red, green, blue = rgb(Tone.WARNING)
    assert red > green > blue and green > 0x80  # amber: orange-yellow
    red, green, blue = rgb(Tone.INFO)
    assert blue > max(red, green)
    red, green, blue = rgb(Tone.RESOLVED)
    assert green > max(red, blue)


def test_test_message() -> None:
    message = format_test(WEBHOOK, now=T0, base_url=BASE_URL)
    assert message.title == "Vigil test message"
    assert "'hook'" in message.lead and message.tone is Tone.INFO
    assert message.link == "https://vigil.example.com"
    assert dict(message.fields) == {"Channel": "hook", "Sent": "2026-11-27T10:00:00+00:00"}


def test_bad_input_is_refused() -> None:
    opened = lifecycle()["opened"]
    resolved = lifecycle()["resolved"]
    cases: list[tuple[Event, dict[str, object], str]] = [
        (Event(kind=EventKind.RULE_CHANGED, at=T0, metric="x"), {}, "event"),
        (dataclasses.replace(opened, id=None), {}, "event"),
        (resolved, {"repeat": 1}, "repeat"),
        (opened, {"repeat": -1}, "repeat"),
        (opened, {"base_url": "vigil.example.com"}, "base_url"),
        (opened, {"rule": Rule(metric="error_rate", critical=5)}, "rule"),
    ]
    for event, options, field in cases:
        with pytest.raises(ValidationError) as caught:
            format_event(event, WEBHOOK, **options)  # type: ignore[arg-type]
        assert caught.value.field == field, options


def test_a_flapping_series_is_one_message_saying_its_changes_are_held() -> None:
    opened = lifecycle()["opened"]
    assert opened.incident is not None
    flapping = dataclasses.replace(
        opened,
        kind=EventKind.INCIDENT_FLAPPING,
        id=(opened.id or 0) + 100,
        incident=dataclasses.replace(opened.incident, flapping=True),
        data={"percent": 23.37, "series": ""},
    )
    message = format_event(flapping, WEBHOOK, base_url=BASE_URL, rule=RULE)
    assert message.title == "[WARNING] Gateway Latency: flapping"
    assert message.lead == (
        "Gateway Latency is flapping (23.4% state change): the incident stays open and its "
        "changes are not notified until it settles."
    )
    assert dict(message.fields)["Flapping"] == "23.4% state change"
    assert message.link == LINK


def test_the_end_of_flapping_is_not_notified() -> None:
    from vigil.notify import NotifyOn

    assert NotifyOn.of(EventKind.INCIDENT_FLAPPING) is NotifyOn.FLAPPING
    assert NotifyOn.of(EventKind.INCIDENT_FLAPPING_ENDED) is None


def test_the_rule_given_must_be_the_incident_s_own() -> None:
    """Found by name: another rule on the same metric would lend its name and thresholds."""
    other = dataclasses.replace(RULE, name="slow_gateway")
    with pytest.raises(ValidationError) as caught:
        format_event(lifecycle()["opened"], WEBHOOK, rule=other)
    assert caught.value.field == "rule" and "slow_gateway" in str(caught.value)


def test_counts_of_events_read_as_counts() -> None:
    """A rule whose unit is ``event`` (restarts, task deaths) counts: no decimals, a plural."""
    rule = Rule(metric="task_failures", unit="event", critical=1.0, breaches_required=1)
    evaluator = Evaluator([rule], new_id=lambda: INCIDENT_ID)
    [opened] = evaluator.evaluate({"task_failures": 3.0}, now=T0).events
    message = format_event(dataclasses.replace(opened, id=1), WEBHOOK, rule=rule)
    assert dict(message.fields)["Value"] == "3 events"
    assert dict(message.fields)["Threshold"] == "1 event"
