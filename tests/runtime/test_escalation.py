"""Escalation from a real Vigil to real receivers, on a fake clock: an unacknowledged critical
goes from the first step's channel to the second's after the step's wait, repeats as the
policy says, each step once across a restart, and stops when acknowledged."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.notify.receiver import Receiver, serving
from vigil.core import Severity
from vigil.runtime.notifier import DeliveryPolicy

from .support import Clock, Script, wait_until
from .test_dispatch import add_channel, breach, started

POLICY = {
    "name": "night",
    "steps": [
        {"channels": ["ops"], "wait_minutes": 10},
        {"channels": ["pager"], "wait_minutes": 5},
    ],
    "repeat_minutes": 5,
    "severities": ["critical"],
}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving() as found:
        yield found


async def test_an_unacknowledged_critical_escalates_once_per_step_across_a_restart(
    migrated_url: str, receiver: Receiver
) -> None:
    script, clock = Script(), Clock()
    quick = DeliveryPolicy(check_every=0.2)
    async with started(migrated_url, script, clock, policy=quick) as vigil:
        await add_channel(vigil, "ops", receiver.url("/ops"), renotify_minutes=1)
        await add_channel(vigil, "pager", receiver.url("/pager"))
        await add_channel(vigil, "bystander", receiver.url("/bystander"))
        await vigil.store.add_policy(POLICY, now=clock())
        await breach(vigil, clock, script, 250, 250)
        [incident] = vigil.view.active()
        assert incident.severity is Severity.CRITICAL
        await receiver.wait_for(lambda: len(receiver.on("/ops")) == 1)
        await receiver.wait_for(lambda: len(receiver.on("/bystander")) == 1)
        assert receiver.on("/pager") == []  # not yet: step 2 waits 10 minutes

        clock.advance(9 * 60)
        assert await vigil.notifier.escalate(clock()) == 0
        assert await vigil.notifier.remind(clock()) == 0  # the policy replaces reminders
        clock.advance(60)
        await receiver.wait_for(lambda: len(receiver.on("/pager")) == 1)
        [hit] = receiver.on("/pager")
        assert hit.body["title"] == "[CRITICAL] Reminder: Gateway Latency is still unacknowledged"
        await wait_until(lambda: vigil.notifier.status().delivered == 3)

    # A restart (another process, the same database) writes no step twice.
    async with started(migrated_url, script, clock, policy=quick) as vigil:
        assert await vigil.notifier.escalate(clock()) == 0
        clock.advance(5 * 60)  # the last step's wait: its first repeat
        await receiver.wait_for(lambda: len(receiver.on("/pager")) == 2)
        await wait_until(lambda: vigil.notifier.status().delivered == 1)
        assert len({hit.key for hit in receiver.on("/pager")}) == 2

        await vigil.acknowledge(incident.id, by="ana")
        # Everyone told of it hears of the acknowledgement.
        await receiver.wait_for(lambda: len(receiver.on("/pager")) == 3)
        await receiver.wait_for(lambda: len(receiver.on("/ops")) == 2)
        clock.advance(60 * 60)
        assert await vigil.notifier.escalate(clock()) == 0  # acknowledged: it stops
        assert await vigil.notifier.remind(clock()) == 0
    assert [h.body["title"].split(": ")[-1] for h in receiver.on("/pager")][-1] == (
        "acknowledged by ana"
    )
    assert len(receiver.on("/ops")) == 2


async def test_a_step_waiting_for_its_retry_is_not_sent_once_acknowledged(
    migrated_url: str, receiver: Receiver
) -> None:
    """The pager refuses step 2's first attempt; before its retry is due the incident is
    acknowledged: the pager hears of the acknowledgement at once, and never of the step."""
    script, clock = Script(), Clock()
    quick = DeliveryPolicy(check_every=0.2, backoff=300)
    receiver.fail_first["/pager"] = 1
    async with started(migrated_url, script, clock, policy=quick) as vigil:
        await add_channel(vigil, "ops", receiver.url("/ops"))
        await add_channel(vigil, "pager", receiver.url("/pager"))
        await vigil.store.add_policy({**POLICY, "repeat_minutes": None}, now=clock())
        await breach(vigil, clock, script, 250, 250)
        [incident] = vigil.view.active()
        await receiver.wait_for(lambda: len(receiver.on("/ops")) == 1)

        clock.advance(10 * 60)  # step 2 is due; its first attempt is refused
        await receiver.wait_for(lambda: len(receiver.on("/pager")) == 1)
        await wait_until(lambda: vigil.notifier.status().failed_attempts == 1)
        await vigil.acknowledge(incident.id, by="ana")
        await receiver.wait_for(lambda: len(receiver.on("/pager")) == 2)
        await receiver.wait_for(lambda: len(receiver.on("/ops")) == 2)
        # Recorded as delivered (the opening and both acknowledgements) before time moves on.
        await wait_until(lambda: vigil.notifier.status().delivered == 3)

        clock.advance(10 * 60)  # well past the step's retry
        assert await vigil.notifier.run_once() == 0
        assert await vigil.notifier.escalate(clock()) == 0
        [cancelled] = await vigil.store.list_notifications(status="cancelled")
        assert (cancelled.channel, cancelled.repeat, cancelled.attempts) == ("pager", 1, 1)
    titles = [hit.body["title"] for hit in receiver.on("/pager")]
    assert titles[0].endswith("is still unacknowledged")  # the refused attempt
    assert titles[1].endswith("acknowledged by ana")
    assert len(receiver.on("/pager")) == 2
