"""``vigil channels``, run as a user runs it, against both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from vigil.core import EventKind
from vigil.store import Store

from ..notify.receiver import Receiver, serving
from .support import in_thread, vigil

SECRET_URL = "json://127.0.0.1:9/hook?+Authorization=Bearer%20s3cret"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving() as found:
        yield found


def test_channels_add_list_remove_with_masked_urls(migrated_url: str) -> None:
    code, output = vigil(
        migrated_url,
        "channels",
        "add",
        "ops",
        SECRET_URL,
        "--min-severity",
        "warning",
        "--events",
        "opened,resolved",
        "--renotify-minutes",
        "30",
    )
    assert code == 0, output
    assert "Added channel ops (JSON, json://127.0.0.1:9/***?***)" in output
    code, output = vigil(migrated_url, "channels", "list")
    assert code == 0
    assert "json://127.0.0.1:9/***?***" in output and "s3cret" not in output
    assert "opened,resolved" in output and "30 min" in output

    code, output = vigil(migrated_url, "channels", "remove", "ops")
    assert code == 0 and "Removed channel ops" in output
    code, output = vigil(migrated_url, "channels", "list")
    assert "No channels" in output
    code, output = vigil(migrated_url, "channels", "remove", "ops")
    assert code == 1 and "channel ops not found" in output


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("nope://somewhere", "unsupported scheme nope://"),
        ("discord://only-an-id", "is not a valid Discord URL"),
        ("https://example.com/hook", "json://"),
    ],
)
def test_a_refused_channel_is_an_error_and_stores_nothing(
    migrated_url: str, url: str, says: str
) -> None:
    code, output = vigil(migrated_url, "channels", "add", "ops", url)
    assert code == 1
    assert "error: url:" in output and says in " ".join(output.split())
    assert "No channels" in vigil(migrated_url, "channels", "list")[1]


async def test_channel_changes_are_events_naming_who(migrated_url: str) -> None:
    await in_thread(migrated_url, "channels", "add", "ops", SECRET_URL, "--by", "ana")
    await in_thread(migrated_url, "channels", "remove", "ops")  # by the OS user
    async with await Store.open(migrated_url) as store:
        added, removed = await store.events_after(0)
    assert (added.kind, added.by) == (EventKind.CHANNEL_ADDED, "ana")
    assert added.data["channel"]["url"] == "json://127.0.0.1:9/***?***"
    assert removed.kind is EventKind.CHANNEL_REMOVED and removed.by is not None
    assert removed.by.endswith("(cli)")


async def test_channels_test_sends_a_test_message(migrated_url: str, receiver: Receiver) -> None:
    code, output = await in_thread(migrated_url, "channels", "add", "ops", receiver.url("/t"))
    assert code == 0, output
    code, output = await in_thread(migrated_url, "channels", "test", "ops")
    assert code == 0 and "Test message delivered to ops" in output
    [hit] = receiver.hits
    assert hit.body["title"] == "Vigil test message"
    assert "http://127.0.0.1:8000" in hit.body["message"]  # the dashboard it links to

    receiver.always_fail.add("/t")
    code, output = await in_thread(migrated_url, "channels", "test", "ops")
    assert code == 1 and "error: channel 'ops'" in output and "500" in output


def test_a_daily_digest_channel(migrated_url: str) -> None:
    code, output = vigil(
        migrated_url,
        "channels",
        "add",
        "digest",
        SECRET_URL,
        "--delivery",
        "daily",
        "--digest-at",
        "08:30",
        "--timezone",
        "Europe/Berlin",
    )
    assert code == 0, output
    code, output = vigil(migrated_url, "channels", "list")
    assert code == 0 and "daily at 08:30 Europe/Berlin" in output
    code, output = vigil(migrated_url, "channels", "add", "bad", SECRET_URL, "--delivery", "weekly")
    assert code == 1 and "delivery" in output
