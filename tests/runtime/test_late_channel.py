"""A channel added while incidents are open: it was never told of their opening, so reminders
(its ``renotify_minutes``) run from when it was added."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.notify.receiver import Receiver, serving
from vigil.core import Severity
from vigil.runtime.notifier import DeliveryPolicy

from .support import Clock, Script, wait_until
from .test_dispatch import add_channel, breach, started


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving() as found:
        yield found


async def test_a_channel_added_while_an_incident_is_open_is_reminded_of_it(
    migrated_url: str, receiver: Receiver
) -> None:
    script, clock = Script(), Clock()
    policy = DeliveryPolicy(check_every=0.2)
    async with started(migrated_url, script, clock, policy=policy) as vigil:
        await breach(vigil, clock, script, 250, 250)  # no channel yet: nobody is told
        [incident] = vigil.view.active()
        assert incident.severity is Severity.CRITICAL
        clock.advance(600)
        await add_channel(vigil, "pager", receiver.url("/pager"), renotify_minutes=5)
        await add_channel(vigil, "quiet", receiver.url("/quiet"))  # no reminders asked for
        clock.advance(299)
        assert await vigil.notifier.remind(clock()) == 0  # not yet: 5 minutes after it was added
        clock.advance(2)
        await receiver.wait_for(lambda: len(receiver.on("/pager")) == 1)
        [hit] = receiver.on("/pager")
        assert hit.body["title"] == "[CRITICAL] Reminder: Gateway Latency is still unacknowledged"
        # Recorded as sent (on this clock) before the clock moves on.
        await wait_until(lambda: vigil.notifier.status().delivered == 1)
        clock.advance(301)
        await receiver.wait_for(lambda: len(receiver.on("/pager")) == 2)  # and on, as usual
        await wait_until(lambda: vigil.notifier.status().delivered == 2)
        assert receiver.on("/quiet") == []

        await vigil.acknowledge(incident.id, by="ana")
        clock.advance(600)
        assert await vigil.notifier.remind(clock()) == 0  # acknowledged: no more reminders


async def test_a_channel_that_was_there_when_it_opened_is_not_reminded_of_it(
    migrated_url: str, receiver: Receiver
) -> None:
    script, clock = Script(), Clock()
    async with started(migrated_url, script, clock) as vigil:
        # It wants only resolutions: it chose not to hear of openings, nor of reminders.
        await add_channel(
            vigil, "pager", receiver.url("/pager"), renotify_minutes=5, events=["resolved"]
        )
        await breach(vigil, clock, script, 250, 250)
        clock.advance(3600)
        assert await vigil.notifier.remind(clock()) == 0
