"""Notifications from a real Vigil to real receivers on 127.0.0.1: the scripted source opens
an incident, the monitor commits it with its outbox rows, the dispatcher delivers them."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.runtime.support import Clock, Script, Started, cycle, settings, wait_until
from vigil.core import EventKind, Rule, Severity, ValidationError
from vigil.notify import Channel, idempotency_key
from vigil.runtime import Vigil
from vigil.runtime.notifier import DeliveryPolicy
from vigil.runtime.ports import Handoff
from vigil.runtime.vigil import utcnow
from vigil.store import Claim, Delivery, OutboxStatus

from ..notify.receiver import MailReceiver, Receiver, serving

LATENCY = "gateway_latency"
PUBLIC = "http://127.0.0.1:8000"  # Settings' public_url by default


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving() as found:
        yield found


def started(
    url: str, script: Script, clock: Clock | None = None, *, policy: DeliveryPolicy | None = None
) -> Started:
    """A Vigil whose cycles the test runs; on the real clock unless given a ``Clock``."""
    vigil = Vigil(
        settings(url),
        sources=[script],
        process_metrics=False,
        clock=clock if clock is not None else utcnow,
        delivery=policy,
    )
    return Started(vigil)


async def add_channel(vigil: Vigil, name: str, url: str, **fields: object) -> None:
    await vigil.store.add_channel({"name": name, "url": url, **fields}, now=vigil.clock())


async def breach(vigil: Vigil, clock: Clock, script: Script, *values: float) -> list[EventKind]:
    kinds = []
    for value in values:
        kinds += [event.kind for event in await cycle(vigil, clock, {LATENCY: value}, script)]
    return kinds


async def test_an_incident_reaches_the_webhook_with_its_content(
    migrated_url: str, receiver: Receiver
) -> None:
    script, clock = Script(), Clock()
    async with started(migrated_url, script, clock) as vigil:
        await add_channel(vigil, "ops", receiver.url("/vigil"))
        assert await breach(vigil, clock, script, 150, 150) == [EventKind.INCIDENT_OPENED]
        [incident] = vigil.view.active()
        await receiver.wait_for(lambda: len(receiver.hits) == 1)

        [hit] = receiver.hits
        assert hit.path == "/vigil"
        assert hit.body["title"] == "[WARNING] Gateway Latency: incident opened"
        assert hit.body["type"] == "warning"
        text = hit.body["message"]
        assert text.startswith("Gateway Latency exceeded warning threshold: 150.00 ms >= 100.00 ms")
        assert "Value: 150.00 ms" in text and "Threshold: 100.00 ms" in text
        assert f"Incident: {PUBLIC}/incidents/{incident.id}" in text
        [opened] = [e for e in await vigil.store.events_after(0) if e.incident is not None]
        assert hit.key == idempotency_key(incident.id, opened.id or 0, "ops")

        await vigil.acknowledge(incident.id, by="ana", notes="on it")
        await vigil.resolve(incident.id, by="ana")
        await receiver.wait_for(lambda: len(receiver.hits) == 3)
        titles = [h.body["title"] for h in receiver.hits]
        assert titles[1:] == [
            "[WARNING] Gateway Latency: acknowledged by ana",
            "[RESOLVED] Gateway Latency: resolved by ana after 0s",
        ]
        assert "Notes: on it" in receiver.hits[1].body["message"]

        await wait_until(lambda: vigil.notifier.status().delivered == 3)
        rows = await vigil.store.list_notifications()
        assert {row.status for row in rows} == {OutboxStatus.SENT}
        assert sorted(receiver.copies().values()) == [1, 1, 1]
        assert set(receiver.copies()) == {row.idempotency_key for row in rows}


async def test_the_cycle_hands_its_notifications_to_the_dispatcher_without_a_claim(
    migrated_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leader's dispatcher runs in the monitor's process: the cycle's transaction claims
    the rows for it, and it sends them at once, with no claim transaction to wait for."""
    script, clock = Script(), Clock()
    async with started(migrated_url, script, clock) as vigil:
        await add_channel(vigil, "ops", receiver.url("/vigil"))
        claims: list[int] = []
        claim_notifications = vigil.store.claim_notifications

        async def counted(**options: Any) -> list[Delivery]:
            found = await claim_notifications(**options)
            claims.extend(d.item.id for d in found)
            return found

        reads: list[int] = []
        delivery_channels = vigil.store.delivery_channels

        async def read_channels() -> dict[str, Channel | ValidationError]:
            reads.append(1)
            return await delivery_channels()

        monkeypatch.setattr(vigil.store, "claim_notifications", counted)
        monkeypatch.setattr(vigil.store, "delivery_channels", read_channels)
        assert await breach(vigil, clock, script, 150, 150) == [EventKind.INCIDENT_OPENED]
        await receiver.wait_for(lambda: len(receiver.hits) == 1)
        await wait_until(lambda: vigil.notifier.status().delivered == 1)
        [row] = await vigil.store.list_notifications()
        assert (row.status, row.attempts) == (OutboxStatus.SENT, 1)
        assert claims == []  # claimed by the cycle, not by a claim of the dispatcher's
        assert reads == []  # to the channel as the cycle read it


async def test_what_the_cycle_claimed_and_nobody_sent_goes_out_after_the_lease(
    migrated_url: str, receiver: Receiver
) -> None:
    """The process died between the cycle's commit and the send: the row, claimed by the
    cycle, comes back when its lease ends, as any claimed row whose attempt never settled."""
    script, clock = Script(), Clock()
    policy = DeliveryPolicy(lease=30.0)
    async with started(migrated_url, script, clock, policy=policy) as vigil:
        await add_channel(vigil, "ops", receiver.url("/vigil"))
        lost: list[Delivery] = []
        vigil.monitor.handoff = Dropping(vigil.notifier, lost)
        assert await breach(vigil, clock, script, 150, 150) == [EventKind.INCIDENT_OPENED]
        [claimed] = lost
        assert claimed.item.attempts == 1
        assert await vigil.notifier.run_once() == 0  # still leased: nobody sends it
        clock.advance(policy.lease)
        await vigil.notifier.run_once()  # (or the dispatcher's own round, whichever looks first)
        await receiver.wait_for(lambda: len(receiver.hits) == 1)
        await wait_until(lambda: vigil.notifier.status().delivered == 1)
        [row] = await vigil.store.list_notifications()
        assert (row.id, row.status, row.attempts) == (claimed.item.id, OutboxStatus.SENT, 2)
        assert receiver.hits[0].key == row.idempotency_key


class Dropping:
    """The notifier's ``Handoff``, whose deliveries never reach it (the process died)."""

    def __init__(self, notifier: Handoff, lost: list[Delivery]) -> None:
        self.notifier = notifier
        self.lost = lost

    def claim(self) -> Claim | None:
        return self.notifier.claim()

    def take(self, claim: Claim) -> None:
        self.lost.extend(claim.deliveries)


async def test_each_channel_hears_what_it_subscribes_to(
    migrated_url: str, receiver: Receiver
) -> None:
    script, clock = Script(), Clock()
    async with started(migrated_url, script, clock) as vigil:
        await add_channel(vigil, "pager", receiver.url("/pager"), min_severity="critical")
        await add_channel(vigil, "log", receiver.url("/log"), events=["resolved"])
        await add_channel(vigil, "off", receiver.url("/off"), enabled=False)
        kinds = await breach(vigil, clock, script, 150, 150, 250, 250, 50, 50, 50)
        assert kinds == [
            EventKind.INCIDENT_OPENED,
            EventKind.INCIDENT_ESCALATED,
            EventKind.INCIDENT_RESOLVED,
        ]
        await receiver.wait_for(lambda: len(receiver.hits) == 3)
        await wait_until(lambda: vigil.notifier.status().delivered == 3)
        assert [h.body["title"] for h in receiver.on("/pager")] == [
            "[CRITICAL] Gateway Latency: escalated from warning",
            "[RESOLVED] Gateway Latency: resolved automatically after 2m 30s",
        ]
        assert [h.body["type"] for h in receiver.on("/log")] == ["success"]
        assert receiver.on("/off") == []


async def test_an_email_arrives_from_a_real_vigil(migrated_url: str, smtp: MailReceiver) -> None:
    script, clock = Script(), Clock()
    async with started(migrated_url, script, clock) as vigil:
        await add_channel(vigil, "oncall", smtp.url())
        await breach(vigil, clock, script, 250, 250)
        envelope, mail = await smtp.next()
        assert envelope.rcpt_tos == ["oncall@example.com"]
        assert mail["Subject"] == "[CRITICAL] Gateway Latency: incident opened"
        html = mail.get_body(preferencelist=("html",))
        assert html is not None
        assert "Gateway Latency exceeded critical threshold: 250.00 ms &gt;= 200.00 ms" in (
            html.get_content()
        )


# -- retries ------------------------------------------------------------------------------------


async def test_a_receiver_failing_at_first_is_retried_with_growing_pauses(
    migrated_url: str, receiver: Receiver
) -> None:
    receiver.fail_first["/flaky"] = 3
    script = Script()
    policy = DeliveryPolicy(backoff=0.2, max_attempts=5, check_every=0.5)
    async with started(migrated_url, script, policy=policy) as vigil:
        await add_channel(vigil, "flaky", receiver.url("/flaky"))
        script.values = {LATENCY: 150.0}
        for _ in range(2):
            await vigil.monitor.cycle()
        await receiver.wait_for(lambda: len(receiver.hits) == 4)
        await wait_until(lambda: vigil.notifier.status().delivered == 1)

        times = [hit.at for hit in receiver.hits]
        pauses = [later - earlier for earlier, later in itertools.pairwise(times)]
        expected = [policy.retry_delay(n) for n in (1, 2, 3)]
        assert expected == [0.2, 0.4, 0.8]
        # A retry is never due before its backoff (a little slack for two clocks' rounding).
        assert all(p >= e - 0.01 for p, e in zip(pauses, expected, strict=True)), pauses
        assert len(receiver.copies()) == 1  # the same message every time

        [row] = await vigil.store.list_notifications()
        assert (row.status, row.attempts) == (OutboxStatus.SENT, 4)
        assert row.last_error is not None and "500" in row.last_error
        status = vigil.health().notifications
        assert (status.delivered, status.failed_attempts, status.given_up) == (1, 3, 0)


async def test_a_receiver_that_always_fails_ends_failed_and_visible(
    migrated_url: str, receiver: Receiver
) -> None:
    receiver.always_fail.add("/down")
    script = Script()
    policy = DeliveryPolicy(backoff=0.1, max_attempts=3, check_every=0.5)
    async with started(migrated_url, script, policy=policy) as vigil:
        await add_channel(vigil, "down", receiver.url("/down"))
        await add_channel(vigil, "up", receiver.url("/up"))
        script.values = {LATENCY: 250.0}
        for _ in range(2):
            await vigil.monitor.cycle()
        await wait_until(lambda: vigil.health().notifications.failed == 1)

        assert len(receiver.on("/down")) == 3  # max_attempts, then no more
        assert len(receiver.on("/up")) == 1  # one bad channel holds up no other
        times = [hit.at for hit in receiver.on("/down")]
        assert times[2] - times[1] >= 0.2 - 0.01 and times[1] - times[0] >= 0.1 - 0.01
        [failed] = await vigil.store.list_notifications(status="failed")
        assert (failed.channel, failed.attempts) == ("down", 3)
        assert failed.last_error is not None and "500" in failed.last_error
        status = vigil.health().notifications
        assert (status.failed, status.pending, status.given_up, status.delivered) == (1, 0, 1, 1)
        assert status.last_error is not None and status.last_error.startswith("down: ")
        counts = await vigil.store.outbox_counts()
        assert (counts.failed, counts.sent, counts.pending) == (1, 1, 0)


# -- re-notification ----------------------------------------------------------------------------


async def test_an_unacknowledged_critical_incident_is_sent_again(
    migrated_url: str, receiver: Receiver
) -> None:
    script, clock = Script(), Clock()
    # Reminders come due on Vigil's clock, which the test moves; the dispatcher's periodic
    # check (every 0.2 s here) finds them.
    policy = DeliveryPolicy(check_every=0.2)
    async with started(migrated_url, script, clock, policy=policy) as vigil:
        await add_channel(vigil, "pager", receiver.url("/pager"), renotify_minutes=1)
        await add_channel(vigil, "chat", receiver.url("/chat"))
        await breach(vigil, clock, script, 250, 250)
        [incident] = vigil.view.active()
        assert incident.severity is Severity.CRITICAL
        await wait_until(lambda: vigil.notifier.status().delivered == 2)

        for reminders in (1, 2):
            clock.advance(61)
            await receiver.wait_for(lambda n=reminders: len(receiver.on("/pager")) == 1 + n)  # type: ignore[misc]
            await wait_until(lambda n=reminders: vigil.notifier.status().delivered == 2 + n)  # type: ignore[misc]
        titles = [hit.body["title"] for hit in receiver.on("/pager")]
        assert titles[1:] == ["[CRITICAL] Reminder: Gateway Latency is still unacknowledged"] * 2
        assert "Duration: 2m 02s" in receiver.on("/pager")[2].body["message"]
        assert len(set(receiver.copies())) == 4  # each reminder its own key

        await vigil.acknowledge(incident.id, by="ana")
        await receiver.wait_for(lambda: len(receiver.on("/chat")) == 2)
        clock.advance(600)
        assert await vigil.notifier.remind(clock()) == 0  # acknowledged: no more reminders
        assert [h.body["title"] for h in receiver.on("/chat")] == [
            "[CRITICAL] Gateway Latency: incident opened",
            "[CRITICAL] Gateway Latency: acknowledged by ana",
        ]


async def test_a_rule_named_apart_from_its_metric_names_its_messages(
    migrated_url: str, receiver: Receiver
) -> None:
    """The rule is found by its name, not its metric: two rules on one metric each title
    their own messages with their own name and unit, and none is given up (grouping off:
    each incident is told of in its own message)."""
    script, clock = Script(), Clock()
    ungrouped = settings(migrated_url).model_copy(update={"group_window": 0})
    vigil = Vigil(ungrouped, sources=[script], process_metrics=False, clock=clock)
    async with Started(vigil):
        await add_channel(vigil, "ops", receiver.url("/vigil"))
        await vigil.add_rule(
            Rule(name="slow_gateway", metric=LATENCY, unit="ms", critical=120), by="ana"
        )
        await breach(vigil, clock, script, 150, 150)
        await receiver.wait_for(lambda: len(receiver.hits) == 2)
        assert sorted(h.body["title"] for h in receiver.hits) == [
            "[CRITICAL] Slow Gateway: incident opened",
            "[WARNING] Gateway Latency: incident opened",
        ]
        [slow] = [h for h in receiver.hits if "Slow Gateway" in h.body["title"]]
        assert "Threshold: 120.00 ms" in slow.body["message"]
        await wait_until(lambda: vigil.notifier.status().delivered == 2)
        assert {row.status for row in await vigil.store.list_notifications()} == {OutboxStatus.SENT}
