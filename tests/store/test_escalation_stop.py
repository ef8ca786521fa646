"""Acknowledgement stops an escalation, also for the step already written and not yet sent:
the acknowledgement (or resolution) cancels it in its own transaction, and a step written from
a view that has not seen the acknowledgement yet is not written at all. The acknowledgement's
own messages still go. Times are explicit (a fake clock): the store never reads the time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import pytest

from vigil.core.escalation import EscalationPolicy, Notice, due_notices
from vigil.core.incidents import Incident, Severity, Status
from vigil.store import Store
from vigil.store.records import LastNotification, OutboxItem, OutboxStatus

from .conftest import T0, add_channel, auto_resolve, make_incident, open_incident

POLICY = {
    "name": "night",
    "steps": [
        {"channels": ["ops"], "wait_minutes": 10},
        {"channels": ["pager"], "wait_minutes": 30},
    ],
    "repeat_minutes": 15,
    "severities": ["critical"],
}
LEASE = timedelta(seconds=30)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def later_steps(policy: EscalationPolicy, incident: Incident, minutes: float) -> list[Notice]:
    """What the dispatcher writes at ``minutes``, as a view still showing ``incident`` active
    would: every due step but the first (told with the opening)."""
    return [
        notice
        for notice in due_notices(
            policy,
            incident_id=incident.id,
            triggered_at=incident.triggered_at,
            status=Status.ACTIVE,
            now=at(minutes),
        )
        if (notice.step, notice.repeat) != (0, 0)
    ]


async def escalating(store: Store) -> tuple[EscalationPolicy, Incident]:
    for name in ("ops", "pager"):
        await add_channel(store, name)
    policy = await store.add_policy(POLICY, now=T0)
    incident = await open_incident(
        store, make_incident(metric="error_rate", severity=Severity.CRITICAL)
    )
    return policy, incident


async def deliver_everything(store: Store, *, now: datetime) -> list[tuple[str, int, str]]:
    """Claim and send what is due until nothing is: (channel, repeat, event kind) in order."""
    sent: list[tuple[str, int, str]] = []
    while claimed := await store.claim_notifications(now=now, lease=LEASE):
        for delivery in claimed:
            sent.append((delivery.item.channel, delivery.item.repeat, delivery.event.kind.value))
        await store.settle_sent([d.item.id for d in claimed], now=now)
    return sent


async def acknowledge(store: Store, incident: Incident, minutes: float) -> None:
    await store.acknowledge_incident(incident.id, by="ana", now=at(minutes))


async def resolve_by_hand(store: Store, incident: Incident, minutes: float) -> None:
    await store.resolve_incident(incident.id, by="ana", now=at(minutes))


async def recover(store: Store, incident: Incident, minutes: float) -> None:
    await auto_resolve(store, await store.get_incident(incident.id), at=at(minutes))


Stop = Callable[[Store, Incident, float], Awaitable[None]]
STOPS = [
    pytest.param(acknowledge, "incident.acknowledged", id="acknowledged"),
    pytest.param(resolve_by_hand, "incident.resolved", id="resolved-by-hand"),
    pytest.param(recover, "incident.resolved", id="auto-resolved"),
]


@pytest.mark.parametrize(("stop", "kind"), STOPS)
async def test_a_step_written_but_not_sent_is_cancelled_by_the_stop(
    store: Store, stop: Stop, kind: str
) -> None:
    policy, incident = await escalating(store)
    assert [c for c, _, _ in await deliver_everything(store, now=at(1))] == ["ops"]
    # Step 2 falls due and is written; the pager's delivery fails and waits for its retry.
    assert await store.enqueue_escalations(later_steps(policy, incident, 10), now=at(10)) == 1
    [claimed] = await store.claim_notifications(now=at(10), lease=LEASE)
    assert (claimed.item.channel, claimed.item.repeat) == ("pager", 1)
    await store.settle_notification(
        claimed.item.id, now=at(10), error="503 from the pager", retry_at=at(12)
    )

    await stop(store, incident, 11)

    # The pager was reached (step 2 fell due), so it hears of the stop, and of nothing else.
    sent = await deliver_everything(store, now=at(60))
    assert sorted(sent) == [("ops", 0, kind), ("pager", 0, kind)]
    [step] = [r for r in await store.list_notifications() if r.id == claimed.item.id]
    assert step.status is OutboxStatus.CANCELLED and step.sent_at is None
    counts = await store.outbox_counts()
    assert (counts.pending, counts.failed) == (0, 0)  # cancelled is neither


async def test_a_step_due_before_the_acknowledgement_but_written_after_it_is_not_written(
    store: Store,
) -> None:
    policy, incident = await escalating(store)
    await acknowledge(store, incident, 9)
    # A dispatcher whose view has not yet seen the acknowledgement writes nothing.
    assert await store.enqueue_escalations(later_steps(policy, incident, 10), now=at(10)) == 0
    assert [c for c, _, _ in await deliver_everything(store, now=at(10))] == ["ops", "ops"]
    assert not any(r.channel == "pager" for r in await store.list_notifications())


async def test_a_reminder_is_cancelled_and_not_written_after_the_acknowledgement(
    store: Store,
) -> None:
    await add_channel(store, "ops", renotify_minutes=5)
    incident = await open_incident(
        store, make_incident(metric="error_rate", severity=Severity.CRITICAL)
    )
    await deliver_everything(store, now=at(1))
    [opening] = await store.list_notifications()
    last = LastNotification(
        incident_id=incident.id,
        channel="ops",
        event_id=opening.event_id,
        at=at(1),
        repeats=0,
        pending=False,
    )
    reminder = await store.enqueue_reminder(last, now=at(6))
    assert isinstance(reminder, OutboxItem)
    await acknowledge(store, incident, 6.5)
    assert await deliver_everything(store, now=at(7)) == [("ops", 0, "incident.acknowledged")]
    # The next reminder, from a stale view: not written.
    assert await store.enqueue_reminder(last, now=at(11)) is None


async def test_a_step_under_way_when_cancelled_is_recorded_as_sent(store: Store) -> None:
    """The message may already have left: if its attempt succeeds, the row says so (and a
    failed attempt is not retried)."""
    policy, incident = await escalating(store)
    await deliver_everything(store, now=at(1))
    await store.enqueue_escalations(later_steps(policy, incident, 10), now=at(10))
    await store.enqueue_escalations(later_steps(policy, incident, 40), now=at(40))
    # One row per incident and channel at a time: step 2 first, its repeat waits behind it.
    claimed = await store.claim_notifications(now=at(40), lease=LEASE)
    assert sorted((d.item.channel, d.item.repeat) for d in claimed) == [("pager", 1)]
    await acknowledge(store, incident, 40.1)
    assert await store.settle_sent([claimed[0].item.id], now=at(40.2)) == 1
    rows = {r.id: r for r in await store.list_notifications()}
    assert rows[claimed[0].item.id].status is OutboxStatus.SENT
    # The repeat written with it was cancelled, never claimed: it stays cancelled.
    assert [r.repeat for r in rows.values() if r.status is OutboxStatus.CANCELLED] == [2]

    failing = await store.settle_notification(
        next(r for r in rows.values() if r.repeat == 2).id,
        now=at(41),
        error="too late",
        retry_at=at(42),
    )
    assert failing.status is OutboxStatus.CANCELLED


async def test_other_incidents_keep_their_steps(store: Store) -> None:
    policy, incident = await escalating(store)
    other = await open_incident(
        store,
        make_incident(metric="gateway_latency", severity=Severity.CRITICAL, value=250.0),
    )
    await deliver_everything(store, now=at(1))
    notices = later_steps(policy, incident, 10) + later_steps(policy, other, 10)
    assert await store.enqueue_escalations(notices, now=at(10)) == 2
    await acknowledge(store, incident, 10)
    sent = await deliver_everything(store, now=at(10))
    assert sorted(sent) == [
        ("ops", 0, "incident.acknowledged"),
        ("pager", 0, "incident.acknowledged"),
        ("pager", 1, "incident.opened"),
    ]
    assert {r.incident_id for r in await store.list_notifications(status="cancelled")} == {
        incident.id
    }
