"""Delivery through apprise to real local receivers, and to Discord captured at apprise's HTTP
layer (the webhook host cannot be reached from here)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from vigil.core import VigilError
from vigil.notify import Channel, DeliveryError, Tone, format_event, send, send_test

from .receiver import MailReceiver, WebhookReceiver
from .support import INCIDENT_ID, RULE, lifecycle

BASE_URL = "https://vigil.example.com"
DISCORD_ID, DISCORD_TOKEN = "417429632418316298", "JHZ7lQml277CDHmQKMHI8qBe7bk2ZwO5UKjCiOAF7711"
DISCORD_API = f"https://discord.com/api/webhooks/{DISCORD_ID}/{DISCORD_TOKEN}"


@pytest.fixture
def discord_api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as captured:
        yield captured


def discord_embed(captured: responses.RequestsMock, index: int = 0) -> dict[str, Any]:
    body = captured.calls[index].request.body
    assert isinstance(body, str | bytes)
    payload = json.loads(body)
    assert isinstance(payload, dict) and len(payload["embeds"]) == 1
    embed = payload["embeds"][0]
    assert isinstance(embed, dict)
    return embed


# -- generic JSON webhook: a real HTTP receiver ------------------------------------------------


async def test_json_webhook_receives_the_incident(webhook: WebhookReceiver) -> None:
    channel = Channel(name="ops-hook", url=webhook.url("/vigil"))
    opened = lifecycle()["opened"]
    message = format_event(opened, channel, base_url=BASE_URL, rule=RULE)

    await send(channel, message)

    got = await webhook.next()
    assert got.path == "/vigil"
    assert got.body["title"] == "[WARNING] Gateway Latency: incident opened"
    assert got.body["type"] == "warning"
    text = got.body["message"]
    assert text.startswith("Gateway Latency exceeded warning threshold: 160.00 ms >= 100.00 ms")
    assert "Value: 160.00 ms" in text and "Threshold: 100.00 ms" in text
    assert f"Incident: {BASE_URL}/incidents/{INCIDENT_ID}" in text
    assert got.headers["Idempotency-Key"] == message.idempotency_key
    assert got.headers["User-Agent"] == "Vigil"


async def test_a_retry_carries_the_same_idempotency_key(webhook: WebhookReceiver) -> None:
    channel = Channel(name="ops-hook", url=webhook.url())
    other = Channel(name="other-hook", url=webhook.url())
    resolved = lifecycle()["resolved"]

    await send(channel, format_event(resolved, channel))
    await send(channel, format_event(resolved, channel))  # the dispatcher retrying after a crash
    await send(other, format_event(resolved, other))

    keys = [(await webhook.next()).headers["Idempotency-Key"] for _ in range(3)]
    assert keys[0] == keys[1] != keys[2]


async def test_a_webhook_with_its_own_headers_keeps_them(webhook: WebhookReceiver) -> None:
    channel = Channel(name="ops-hook", url=webhook.url() + "?+Authorization=Bearer%20s3cret")
    await send(channel, format_event(lifecycle()["acknowledged"], channel))
    got = await webhook.next()
    assert got.headers["Authorization"] == "Bearer s3cret"
    assert "Idempotency-Key" in got.headers
    assert got.body["title"] == "[CRITICAL] Gateway Latency: acknowledged by alice"


async def test_a_failing_receiver_is_a_delivery_error_with_the_reason(
    webhook: WebhookReceiver,
) -> None:
    webhook.status = 500
    channel = Channel(name="ops-hook", url=webhook.url())
    with pytest.raises(DeliveryError) as caught:
        await send(channel, format_event(lifecycle()["opened"], channel))
    assert isinstance(caught.value, VigilError)
    assert caught.value.channel == "ops-hook"
    assert "error=500" in caught.value.reason
    assert (await webhook.next()).body["type"] == "warning"  # it did reach the receiver


async def test_a_receiver_that_is_not_listening_is_a_delivery_error() -> None:
    # A bound socket that never listens: connecting to it is refused at once.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        channel = Channel(name="gone", url=f"json://127.0.0.1:{port}/hook")
        with pytest.raises(DeliveryError) as caught:
            await send(channel, format_event(lifecycle()["opened"], channel))
    assert "connection error" in caught.value.reason.lower()


async def test_sending_does_not_block_the_event_loop(webhook: WebhookReceiver) -> None:
    channel = Channel(name="ops-hook", url=webhook.url())
    message = format_event(lifecycle()["opened"], channel)
    # The receiver runs on this very loop: if send blocked it, no request could be answered.
    await asyncio.gather(*(send(channel, message) for _ in range(5)))
    assert len({(await webhook.next()).headers["Idempotency-Key"] for _ in range(5)}) == 1


async def test_send_test_reaches_the_channel(webhook: WebhookReceiver) -> None:
    channel = Channel(name="ops-hook", url=webhook.url(), enabled=False)
    await send_test(channel, base_url=BASE_URL)
    got = await webhook.next()
    assert got.body["title"] == "Vigil test message"
    assert "'ops-hook'" in got.body["message"] and got.body["type"] == "info"


# -- e-mail: a real SMTP server ------------------------------------------------------------------


async def test_email_arrives_with_subject_and_body(smtp: MailReceiver) -> None:
    channel = Channel(name="oncall-mail", url=smtp.url())
    escalated = lifecycle()["escalated"]
    message = format_event(escalated, channel, base_url=BASE_URL, rule=RULE)

    await send(channel, message)

    envelope, mail = await smtp.next()
    assert envelope.mail_from == "vigil@example.com"
    assert envelope.rcpt_tos == ["oncall@example.com"]
    assert mail["Subject"] == "[CRITICAL] Gateway Latency: escalated from warning"
    # E-mail renders Markdown: apprise sends it as HTML.
    html = mail.get_body(preferencelist=("html",))
    assert html is not None
    content = html.get_content()
    assert "Gateway Latency exceeded critical threshold: 250.00 ms &gt;= 200.00 ms" in content
    assert "<strong>Peak:</strong> 250.00 ms" in content
    link = f"{BASE_URL}/incidents/{INCIDENT_ID}"
    assert f'Open incident: <a href="{link}">{link}</a>' in content


async def test_a_refusing_mail_server_is_a_delivery_error(smtp: MailReceiver) -> None:
    smtp.reply = "554 Transaction failed: mailbox unavailable"
    channel = Channel(name="oncall-mail", url=smtp.url())
    with pytest.raises(DeliveryError) as caught:
        await send(channel, format_event(lifecycle()["opened"], channel))
    assert "oncall@example.com" in caught.value.reason


# -- Discord: the request apprise makes, captured ------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "colour", "title"),
    [
        ("opened", Tone.WARNING.colour, "[WARNING] Gateway Latency: incident opened"),
        ("escalated", Tone.CRITICAL.colour, "[CRITICAL] Gateway Latency: escalated from warning"),
        ("acknowledged", Tone.CRITICAL.colour, "[CRITICAL] Gateway Latency: acknowledged by alice"),
        (
            "resolved",
            Tone.RESOLVED.colour,
            "[RESOLVED] Gateway Latency: resolved automatically after 5m 30s",
        ),
    ],
)
async def test_discord_gets_an_embed_coloured_by_severity(
    discord_api: responses.RequestsMock, kind: str, colour: int, title: str
) -> None:
    discord_api.post(DISCORD_API, status=204)
    channel = Channel(name="discord", url=f"discord://{DISCORD_ID}/{DISCORD_TOKEN}")
    event = lifecycle()[kind]
    await send(channel, format_event(event, channel, base_url=BASE_URL, rule=RULE))

    embed = discord_embed(discord_api)
    assert embed["color"] == colour
    assert embed["title"] == title
    assert embed["url"] == f"{BASE_URL}/incidents/{INCIDENT_ID}"
    assert embed["author"] == {"name": "Vigil", "url": BASE_URL}
    assert f"[Open incident]({BASE_URL}/incidents/{INCIDENT_ID})" in embed["description"]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert list(fields)[:6] == ["Metric", "Value", "Threshold", "Peak", "Duration", "Status"]
    assert event.incident is not None
    assert "gateway_latency" in fields["Metric"]
    assert f"{event.incident.peak_value:.2f} ms" in fields["Peak"]


async def test_discord_fields_carry_the_incident_facts(
    discord_api: responses.RequestsMock,
) -> None:
    discord_api.post(DISCORD_API, status=204)
    # Discord's own webhook address is accepted too.
    channel = Channel(name="discord", url=DISCORD_API)
    await send(channel, format_event(lifecycle()["acknowledged"], channel, rule=RULE))

    embed = discord_embed(discord_api)
    fields = {f["name"]: f["value"].strip("`").removeprefix("md").strip() for f in embed["fields"]}
    assert fields == {
        "Metric": "gateway_latency",
        "Value": "250.00 ms",
        "Threshold": "100.00 ms",
        "Peak": "250.00 ms",
        "Duration": "2m 30s",
        "Status": "acknowledged by alice",
        "Notes": "looking at the gateway",
    }
    assert "url" not in embed  # no base URL configured: no link
    assert embed["description"].startswith("Gateway Latency exceeded critical threshold")


async def test_discord_refusing_the_message_is_a_delivery_error(
    discord_api: responses.RequestsMock,
) -> None:
    discord_api.post(DISCORD_API, status=400, json={"message": "Invalid Form Body"})
    channel = Channel(name="discord", url=f"discord://{DISCORD_ID}/{DISCORD_TOKEN}")
    with pytest.raises(DeliveryError) as caught:
        await send(channel, format_event(lifecycle()["opened"], channel))
    assert "error=400" in caught.value.reason
    assert DISCORD_TOKEN not in str(caught.value)


async def test_discord_keeps_the_channel_options(discord_api: responses.RequestsMock) -> None:
    discord_api.post(DISCORD_API, status=204)
    channel = Channel(
        name="discord", url=f"discord://Vigil%20Bot@{DISCORD_ID}/{DISCORD_TOKEN}?avatar=no"
    )
    await send(channel, format_event(lifecycle()["opened"], channel))
    body = discord_api.calls[0].request.body
    assert isinstance(body, str | bytes)
    payload = json.loads(body)
    assert payload["username"] == "Vigil Bot" and "avatar_url" not in payload
    assert payload["embeds"][0]["color"] == Tone.WARNING.colour


async def test_mentions_in_a_note_or_a_name_ping_no_one(
    discord_api: responses.RequestsMock,
) -> None:
    discord_api.post(DISCORD_API, status=204)
    channel = Channel(name="discord", url=f"discord://{DISCORD_ID}/{DISCORD_TOKEN}")
    acknowledged = lifecycle()["acknowledged"]
    assert acknowledged.incident is not None
    loud = dataclasses.replace(
        acknowledged,
        incident=dataclasses.replace(
            acknowledged.incident,
            acknowledged_by="<@123456789>",
            notes="@everyone @here <@&987654321> look at this",
        ),
    )
    await send(channel, format_event(loud, channel, rule=RULE))
    body = discord_api.calls[0].request.body
    assert isinstance(body, str | bytes)
    payload = json.loads(body)
    assert "content" not in payload  # apprise puts the pings it finds in the content
    assert "allow_mentions" not in payload and "allowed_mentions" not in payload
    embed = payload["embeds"][0]
    notes = next(f["value"] for f in embed["fields"] if f["name"] == "Notes")
    assert "@\u200beveryone @\u200bhere <@\u200b&987654321>" in notes  # shown, harmless
    assert "<@\u200b123456789>" in embed["title"]


async def test_a_channel_that_asks_for_a_ping_gets_that_ping_only(
    discord_api: responses.RequestsMock,
) -> None:
    discord_api.post(DISCORD_API, status=204)
    url = f"discord://{DISCORD_ID}/{DISCORD_TOKEN}?ping=%3C%40%26555%3E"  # ping=<@&555>
    channel = Channel(name="discord", url=url)
    opened = lifecycle()["opened"]
    assert opened.incident is not None
    noisy = dataclasses.replace(
        opened, incident=dataclasses.replace(opened.incident, message="@everyone down")
    )
    await send(channel, format_event(noisy, channel, rule=RULE))
    body = discord_api.calls[0].request.body
    assert isinstance(body, str | bytes)
    payload = json.loads(body)
    assert payload["content"] == "👉 <@&555>"  # the role the channel names, not everyone


# In an interpreter of its own, the sender's import stops at aiohttp (after the sender module
# is in sys.modules, half made) until a second load has begun; the second load must wait for
# the finished module, not take the half-made one.
LOADS_DURING_AN_IMPORT = """
import asyncio, json, sys, threading
from importlib.abc import MetaPathFinder

importing, go_on = threading.Event(), threading.Event()

class Gate(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "aiohttp":
            importing.set()
            go_on.wait()
        return None

sys.meta_path.insert(0, Gate())
from vigil.notify import load_sender

async def load():
    return hasattr(await load_sender(), "Transport")

async def main():
    first = asyncio.create_task(load())
    await asyncio.to_thread(importing.wait)
    second = asyncio.create_task(load())
    await asyncio.sleep(0)  # one step: the second load has looked, and is waiting or done
    go_on.set()
    return await asyncio.gather(first, second)

print(json.dumps(asyncio.run(main())))
"""


def test_a_load_during_the_first_load_waits_for_the_whole_sender() -> None:
    """The notifier's start-up load and its first message can overlap: each must get the
    finished module (taking the half-made one broke a first send with an AttributeError)."""
    result = subprocess.run(
        [sys.executable, "-c", LOADS_DURING_AN_IMPORT], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [True, True]
