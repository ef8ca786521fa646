"""The dispatcher on its own: its policy, leadership, a clean stop, and rows it cannot send.

On an in-memory store, but for the rows a real database can hold and no store method writes
(a channel gone under a pending row, a stored URL that apprise stopped accepting)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import delete, update

from tests.notify.receiver import Receiver, serving
from tests.store.conftest import make_incident, raw
from vigil.core import CycleResult, Event, EventKind, Incident, ValidationError
from vigil.core.incidents import Severity
from vigil.metrics import HealthRegistry
from vigil.notify import Channel, Message
from vigil.runtime.notifier import IDLE_RECHECKS, NOTIFIER_TASK, DeliveryPolicy, Notifier
from vigil.runtime.vigil import utcnow
from vigil.store import OutboxStatus, Store, VigilStorageError, models
from vigil.store.memory import MemoryStore

from .support import DEADLINE, wait_until

AnyStore = Store | MemoryStore


class Switch:
    """Leadership the test hands out and takes back."""

    def __init__(self, leader: bool) -> None:
        self.is_leader = leader

    async def try_acquire(self) -> bool:
        return self.is_leader

    async def still_leader(self) -> bool:
        return self.is_leader

    async def release(self) -> None:
        self.is_leader = False


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving() as found:
        yield found


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
async def database(migrated_url: str) -> AsyncIterator[Store]:
    async with await Store.open(migrated_url) as opened:
        yield opened


def notifier(
    store: AnyStore, *, leader: bool = True, check_every: float = 0.2, **options: object
) -> Notifier:
    policy = DeliveryPolicy(backoff=0.1, check_every=check_every)
    fields: dict[str, object] = {
        "store": store,
        "leadership": Switch(leader),
        "health": HealthRegistry(),
        "clock": utcnow,
        "policy": policy,
    }
    fields.update(options)
    return Notifier(**fields)  # type: ignore[arg-type]


async def open_incident(store: AnyStore) -> None:
    """A critical incident opened the way the monitor does it (its outbox rows with it),
    stamped now."""
    incident = make_incident(severity=Severity.CRITICAL, at=utcnow())
    event = Event.for_incident(EventKind.INCIDENT_OPENED, incident, at=incident.triggered_at)
    await store.commit_cycle(samples=[], result=CycleResult(events=[event]), now=event.at)


# -- the policy ---------------------------------------------------------------------------------


def test_the_backoff_doubles_up_to_its_ceiling() -> None:
    policy = DeliveryPolicy(backoff=10, max_backoff=60)
    assert [policy.retry_delay(n) for n in range(1, 7)] == [10, 20, 40, 60, 60, 60]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"backoff": 0}, "backoff"),
        ({"backoff": float("inf")}, "backoff"),
        ({"send_timeout": -1}, "send_timeout"),
        ({"concurrency": 0}, "concurrency"),
        ({"lease": 0.5}, "lease"),
        ({"lease": float("nan")}, "lease"),
    ],
)
def test_a_policy_that_cannot_work_is_refused(options: dict[str, float], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        DeliveryPolicy(**options)  # type: ignore[arg-type]
    assert caught.value.field == field


# -- leadership and stopping ---------------------------------------------------------------------


async def test_only_the_leader_dispatches(store: MemoryStore, receiver: Receiver) -> None:
    await store.add_channel({"name": "ops", "url": receiver.url()}, now=utcnow())
    await open_incident(store)
    follower = notifier(store, leader=False, check_every=3600.0)
    stop = asyncio.Event()
    task = asyncio.create_task(follower.run(stop))
    try:
        # a follower's round ends with a heartbeat, having claimed nothing
        await wait_until(
            lambda: (
                (h := follower.health.get(NOTIFIER_TASK)) is not None
                and (h.last_heartbeat is not None)
            )
        )
        [row] = await store.list_notifications()
        assert (row.status, row.attempts) == (OutboxStatus.PENDING, 0)
        assert receiver.hits == [] and not follower.status().dispatching

        # it becomes the leader: the leader.changed event wakes it (the periodic check would
        # take check_every)
        follower.leadership.is_leader = True  # type: ignore[misc]  # the test's Switch
        follower.follow(Event(kind=EventKind.LEADER_CHANGED, at=utcnow(), id=99))
        await receiver.wait_for(lambda: len(receiver.hits) == 1)
        await wait_until(lambda: follower.status().delivered == 1)
    finally:
        stop.set()
        await task


async def test_a_cycle_claims_for_the_dispatcher_only_while_it_dispatches(
    store: MemoryStore, receiver: Receiver
) -> None:
    """``Handoff``: the monitor's cycle claims its rows for the dispatcher while it runs and
    leads; a follower's (or a stopped one's) rows wait for whoever dispatches."""
    await store.add_channel({"name": "ops", "url": receiver.url()}, now=utcnow())
    dispatcher = notifier(store, check_every=3600.0)
    assert dispatcher.claim() is None  # not running
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        await wait_until(lambda: dispatcher.rounds >= 1)
        claim = dispatcher.claim()
        assert claim is not None
        assert (claim.lease, claim.limit) == (timedelta(seconds=30), dispatcher.policy.batch)
        incident = make_incident(severity=Severity.CRITICAL, at=utcnow())
        opened = Event.for_incident(EventKind.INCIDENT_OPENED, incident, at=incident.triggered_at)
        await store.commit_cycle(
            samples=[], result=CycleResult(events=[opened]), now=opened.at, claim=claim
        )
        dispatcher.take(claim)  # as the monitor does after the commit
        await receiver.wait_for(lambda: len(receiver.hits) == 1)
        await wait_until(lambda: dispatcher.status().delivered == 1)
        [row] = await store.list_notifications()
        assert (row.status, row.attempts) == (OutboxStatus.SENT, 1)

        dispatcher.leadership.is_leader = False  # type: ignore[misc]  # the test's Switch
        assert dispatcher.claim() is None
    finally:
        stop.set()
        await task
    assert dispatcher.claim() is None  # stopped


async def test_messages_that_go_out_together_share_the_first_ones_transport(
    store: MemoryStore, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sender (aiohttp and apprise) is loaded in a thread when the first message goes out:
    the messages that go out with it wait for it too, and then share one transport (one HTTP
    session, closed after the round)."""
    from vigil.notify import load_sender, sender
    from vigil.runtime import notifier as notifier_module

    made: list[sender.Transport] = []

    class Counted(sender.Transport):
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

    async def loading() -> object:
        await asyncio.sleep(0.05)  # as an import in a thread takes: the others catch up
        return await load_sender()

    monkeypatch.setattr(sender, "Transport", Counted)
    monkeypatch.setattr(notifier_module, "load_sender", loading)
    for name in ("a", "b", "c"):
        await store.add_channel({"name": name, "url": receiver.url(f"/{name}")}, now=utcnow())
    await open_incident(store)
    assert await notifier(store).run_once() == 3
    assert sorted(hit.path for hit in receiver.hits) == ["/a", "/b", "/c"]
    assert len(made) == 1


@pytest.mark.parametrize("channels", [0, 1])
async def test_with_a_channel_the_sender_loads_as_the_notifier_starts(
    store: MemoryStore, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, channels: int
) -> None:
    """So the first alert does not wait for aiohttp and apprise: no incident is open, so
    nothing is sent and only the start can load them. Without a channel they stay unloaded
    (tests/test_public_api.py)."""
    from vigil.notify import load_sender
    from vigil.runtime import notifier as notifier_module

    loads: list[str] = []

    async def loading() -> object:
        loads.append("sender")
        return await load_sender()

    monkeypatch.setattr(notifier_module, "load_sender", loading)
    for name in ["ops"][:channels]:
        await store.add_channel({"name": name, "url": receiver.url()}, now=utcnow())
    dispatcher = notifier(store)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    await wait_until(lambda: dispatcher.rounds >= 2 and len(loads) == channels)
    stop.set()
    await task
    assert loads == ["sender"] * channels


async def test_a_clean_stop_sends_what_a_cycle_claimed_for_it_before(
    store: MemoryStore, receiver: Receiver
) -> None:
    await store.add_channel({"name": "ops", "url": receiver.url()}, now=utcnow())
    dispatcher = notifier(store, check_every=3600.0)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    await wait_until(lambda: dispatcher.rounds >= 1)
    claim = dispatcher.claim()
    assert claim is not None
    incident = make_incident(severity=Severity.CRITICAL, at=utcnow())
    opened = Event.for_incident(EventKind.INCIDENT_OPENED, incident, at=incident.triggered_at)
    await store.commit_cycle(
        samples=[], result=CycleResult(events=[opened]), now=opened.at, claim=claim
    )
    dispatcher.take(claim)
    stop.set()  # before its round could start
    assert dispatcher.claim() is None  # stopping: later cycles leave their rows pending
    await task
    [row] = await store.list_notifications()
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 1)
    assert len(receiver.hits) == 1


async def test_a_clean_stop_finishes_and_records_the_delivery_under_way(
    store: MemoryStore, receiver: Receiver
) -> None:
    receiver.hold["/slow"] = asyncio.Event()
    await store.add_channel({"name": "slow", "url": receiver.url("/slow")}, now=utcnow())
    await open_incident(store)
    dispatcher = notifier(store)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    await receiver.wait_for(lambda: len(receiver.hits) == 1)
    stop.set()  # while the request is held open
    receiver.hold["/slow"].set()
    await task
    [row] = await store.list_notifications()
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 1)


async def test_the_dispatcher_keeps_its_connection_to_a_webhook_while_it_runs(
    store: MemoryStore, receiver: Receiver
) -> None:
    """Each delivery used to open a connection of its own; the dispatcher's transport keeps
    one open from message to message while it runs, and closes it when it stops."""
    await store.add_channel({"name": "ops", "url": receiver.url()}, now=utcnow())
    dispatcher = notifier(store, check_every=3600.0)
    for _ in range(2):  # run, stop, run again: the transport opens a new session
        stop = asyncio.Event()
        task = asyncio.create_task(dispatcher.run(stop))
        try:
            for _ in range(3):
                incident = make_incident(metric=f"metric_{len(receiver.hits)}", at=utcnow())
                opened = Event.for_incident(EventKind.INCIDENT_OPENED, incident, at=utcnow())
                [stored] = await store.commit_cycle(
                    samples=[], result=CycleResult(events=[opened]), now=opened.at
                )
                dispatcher.follow(stored)
                done = len(receiver.hits) + 1
                await receiver.wait_for(lambda done=done: len(receiver.hits) == done)  # type: ignore[misc]
        finally:
            stop.set()
            await task
    first, second = receiver.hits[:3], receiver.hits[3:]
    assert len({hit.peer for hit in first}) == 1 and len({hit.peer for hit in second}) == 1
    assert first[0].peer != second[0].peer
    assert len(receiver.copies()) == 6  # six messages, none twice


# -- rows that cannot be sent ------------------------------------------------------------------


async def test_a_channel_disabled_before_delivery_fails_its_rows_at_once(
    store: MemoryStore, receiver: Receiver
) -> None:
    await store.add_channel({"name": "paused", "url": receiver.url("/paused")}, now=utcnow())
    await open_incident(store)
    await store.update_channel("paused", {"enabled": False}, now=utcnow())
    dispatcher = notifier(store)
    assert await dispatcher.run_once() == 0
    [failed] = await store.list_notifications(status="failed")
    assert failed.last_error == "the channel was disabled before delivery"
    assert failed.attempts == 1  # no retry: another attempt cannot do better
    assert receiver.hits == []
    assert dispatcher.status().given_up == 1


async def test_a_row_whose_channel_is_gone_fails_at_once(
    database: Store, receiver: Receiver, migrated_url: str
) -> None:
    await database.add_channel({"name": "gone", "url": receiver.url("/gone")}, now=utcnow())
    await open_incident(database)
    # Its row stays pending (removing a channel through the store would fail it): as if the
    # channel went in between the claim and the delivery.
    async with raw(migrated_url) as connection:
        await connection.execute(delete(models.channels).where(models.channels.c.name == "gone"))
    dispatcher = notifier(database)
    assert await dispatcher.run_once() == 0
    [failed] = await database.list_notifications(status="failed")
    assert failed.last_error == "there is no channel named 'gone'"
    assert receiver.hits == []
    assert dispatcher.status().given_up == 1


async def test_a_transport_that_raises_is_retried_not_fatal(store: MemoryStore) -> None:
    await store.add_channel({"name": "ops", "url": "json://127.0.0.1:9/hook"}, now=utcnow())
    await open_incident(store)
    calls: list[str] = []

    async def broken(channel: Channel, message: Message) -> None:
        calls.append(message.idempotency_key)
        raise RuntimeError("transport bug")

    # A backoff far longer than any slowness of the machine: one run, exactly one attempt
    # (with a short one, a slow database lets the retry fall due within the same run).
    policy = DeliveryPolicy(backoff=60.0, check_every=0.2)
    dispatcher = notifier(store, sender=broken, policy=policy)
    assert await dispatcher.run_once() == 0
    [row] = await store.list_notifications()
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)
    assert row.last_error == "RuntimeError: transport bug"
    assert row.next_attempt_at > utcnow() + timedelta(seconds=30)  # retried, after a backoff
    assert calls == [row.idempotency_key]


async def test_a_message_that_cannot_be_formatted_fails_without_retrying(
    store: MemoryStore, receiver: Receiver
) -> None:
    await store.add_channel({"name": "ops", "url": receiver.url()}, now=utcnow())
    await open_incident(store)
    dispatcher = notifier(store, base_url="ftp://not-a-dashboard")
    await dispatcher.run_once()
    [row] = await store.list_notifications()
    assert row.status is OutboxStatus.FAILED
    assert row.last_error is not None and row.last_error.startswith("cannot format the message")
    assert receiver.hits == []


async def test_a_stored_url_apprise_stopped_accepting_fails_only_its_own_rows(
    database: Store, receiver: Receiver, migrated_url: str
) -> None:
    store = database
    await store.add_channel({"name": "stale", "url": receiver.url("/stale")}, now=utcnow())
    await store.add_channel({"name": "fine", "url": receiver.url("/fine")}, now=utcnow())
    # What an apprise upgrade that drops a service looks like from here: the stored URL
    # no longer validates.
    async with raw(migrated_url) as connection:
        await connection.execute(
            update(models.channels)
            .where(models.channels.c.name == "stale")
            .values(url="gone://127.0.0.1/hook")
        )
    await open_incident(store)  # the incident is recorded, with a row for each channel
    assert sorted(row.channel for row in await store.list_notifications()) == ["fine", "stale"]

    dispatcher = notifier(store)
    assert await dispatcher.run_once() == 1
    [failed] = await store.list_notifications(status="failed")
    assert failed.channel == "stale" and failed.attempts == 1
    assert failed.last_error is not None
    assert failed.last_error.startswith("the stored channel is no longer valid: url:")
    assert [hit.path for hit in receiver.hits] == ["/fine"]


# -- the claim: short, and held while a send lasts ----------------------------------------------


async def test_a_round_ends_when_the_cancelled_renewal_comes_back_as_a_storage_error(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLAlchemy on asyncpg turned the holder's cancellation, landing in a renewal, into a
    storage error (``MissingGreenlet``), which the holder logs and goes on: the round then
    waited for it for ever. Its sends over, the round ends all the same."""
    await store.add_channel({"name": "slow", "url": "json://127.0.0.1:9/hook"}, now=utcnow())
    await open_incident(store)
    renewing, release = asyncio.Event(), asyncio.Event()

    async def renew_claims(*_: object, **__: object) -> int:
        renewing.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise VigilStorageError(
                "renewing notification claims failed: MissingGreenlet"
            ) from None
        return 0

    monkeypatch.setattr(store, "renew_claims", renew_claims)

    async def slow(channel: Channel, message: Message) -> None:
        await release.wait()

    policy = DeliveryPolicy(lease=1.0, send_timeout=60, backoff=60, check_every=0.2)
    dispatcher = notifier(store, sender=slow, policy=policy)
    round_ = asyncio.create_task(dispatcher.run_once())
    await asyncio.wait_for(renewing.wait(), DEADLINE)  # the holder is inside a renewal
    release.set()
    done, _ = await asyncio.wait([round_], timeout=DEADLINE)
    assert done, "the round did not end after its send"
    assert round_.result() == 1


async def test_a_send_longer_than_the_lease_keeps_its_claim(database: Store) -> None:
    await database.add_channel({"name": "slow", "url": "json://127.0.0.1:9/hook"}, now=utcnow())
    await open_incident(database)
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(channel: Channel, message: Message) -> None:
        started.set()
        await release.wait()

    lease = 2.0
    policy = DeliveryPolicy(lease=lease, send_timeout=60, backoff=60, check_every=0.2)
    dispatcher = notifier(database, sender=slow, policy=policy)
    task = asyncio.create_task(dispatcher.run_once())
    await asyncio.wait_for(started.wait(), 60)
    # Another dispatcher looking for due rows over three leases finds the row still held.
    loop = asyncio.get_running_loop()
    until = loop.time() + 3 * lease
    while loop.time() < until:
        taken = await database.claim_notifications(now=utcnow(), lease=timedelta(seconds=lease))
        assert taken == []
        await asyncio.sleep(0.2)
    release.set()
    assert await asyncio.wait_for(task, 60) == 1
    [row] = await database.list_notifications()
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 1)


def test_the_lease_is_short_by_default_and_a_setting() -> None:
    from vigil.runtime import Vigil
    from vigil.settings import Settings

    assert DeliveryPolicy().lease == 30.0
    vigil = Vigil(
        Settings(database_url="sqlite+aiosqlite://", delivery_lease=5), process_metrics=False
    )
    assert vigil.delivery.lease == 5.0


# -- at rest -------------------------------------------------------------------------------------


class CountingHealth(HealthRegistry):
    def __init__(self) -> None:
        super().__init__()
        self.beats = 0

    def beat(self, name: str) -> None:
        self.beats += 1
        super().beat(name)


async def test_at_rest_the_dispatcher_beats_without_looking_until_an_event_wakes_it(
    store: MemoryStore, receiver: Receiver
) -> None:
    health = CountingHealth()
    opened: list[Incident] = []  # what the live view would hold
    dispatcher = notifier(store, check_every=0.01, health=health, open_incidents=lambda: opened)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        await wait_until(lambda: health.beats >= 10)
        # Nothing pending, nothing open, no digest channel: ten heartbeats, one look (the
        # first, at start), and the look every IDLE_RECHECKS * check_every at most.
        assert 1 <= dispatcher.rounds <= 1 + health.beats // IDLE_RECHECKS
        looked = dispatcher.rounds
        # An incident opened elsewhere: its event wakes the dispatcher, which delivers.
        await store.add_channel({"name": "ops", "url": receiver.url()}, now=utcnow())
        await open_incident(store)
        opened += await store.active_incidents()
        dispatcher.follow((await store.events_after(0, limit=10))[-1])
        await receiver.wait_for(lambda: len(receiver.hits) == 1)
        assert dispatcher.rounds > looked
        # An open incident can fall due for a reminder: every check looks again.
        looked, beats = dispatcher.rounds, health.beats
        await wait_until(lambda: dispatcher.rounds >= looked + 5)
        assert health.beats - beats <= dispatcher.rounds - looked + 1
    finally:
        stop.set()
        await task


async def test_at_rest_the_dispatcher_still_looks_now_and_then(store: MemoryStore) -> None:
    """A wake-up missed (an event it never heard of): the outbox is looked at anyway."""
    dispatcher = notifier(store, check_every=0.001)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        await wait_until(lambda: dispatcher.rounds >= 3)
    finally:
        stop.set()
        await task
