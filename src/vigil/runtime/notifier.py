"""The dispatcher: delivers the notification outbox, on the leader only.

The store writes one outbox row per (incident event, channel) in the transaction that stores
the event. The dispatcher claims the rows that are due, sends each once per attempt through
a ``vigil.notify.Transport`` of its own (its connections stay open while it runs) and records
the outcome:

- sent: never sent again (a sent row is never made pending);
- failed attempt: due again after an exponential backoff (``DeliveryPolicy.retry_delay``),
  until ``max_attempts`` attempts, then failed for good (visible in ``Store.outbox_counts``,
  ``Store.list_notifications(status="failed")`` and ``Vigil.health()``);
- the process died mid-attempt: the claim expires after ``lease`` and the row is due again.
  The lease is short (30 s by default, ``VIGIL_DELIVERY_LEASE``) and renewed every third of
  it while the row's send is under way or waiting its turn, so a slow send keeps its row and
  a crash delays the message by about one lease.

The monitor's cycle claims its own rows for the dispatcher of its process in the transaction
that writes them (``take``, the ``Handoff`` port): they are sent at once, without a claim
transaction to wait for, and leased, renewed and settled like any claimed row.

Delivery is therefore at least once: a crash after the message left and before it was marked
sent sends it again, under the same idempotency key. The dispatcher wakes when events are
published (from this process, or read from the log: another process's rows come with their
events) and checks every ``check_every`` seconds while there is something that can fall due
(pending rows, open incidents to remind of or escalate, digest channels). At rest - nothing
pending, nothing open, no digest channel - it only beats its heartbeat, and looks at the
database every ``IDLE_RECHECKS`` times ``check_every`` in case a wake-up was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from vigil.core import Event, EventKind, Incident, Rule, Severity, Status, ValidationError
from vigil.core.digest import Digest
from vigil.core.escalation import EscalationPolicy, policy_for
from vigil.metrics import HealthRegistry
from vigil.notify import (
    Channel,
    DeliveryError,
    Message,
    format_event,
    load_sender,
    renotify_due,
)
from vigil.notify.digest import format_digest
from vigil.notify.grouped import format_group
from vigil.runtime.followups import write_digests, write_escalations
from vigil.runtime.ports import DigestStore, EscalationStore, Leadership, NotifierStore
from vigil.store import Claim, Delivery, LastNotification, OutboxCounts, VigilStorageError

if TYPE_CHECKING:
    from vigil.notify.sender import Transport

logger = logging.getLogger(__name__)

NOTIFIER_TASK = "vigil.notifier"
MIN_LEASE = 1.0
IDLE_RECHECKS = 20  # at rest, the outbox is looked at every this many check_every (10 min)
Sender = Callable[[Channel, Message], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryPolicy:
    """How hard the dispatcher tries. Times in seconds.

    Attempt n (n >= 1) that fails is retried ``backoff * 2 ** (n - 1)`` seconds later (at most
    ``max_backoff``); the ``max_attempts``-th failure is final. With the defaults: 10 s, 20 s,
    40 s ... about 21 minutes from the first attempt to the eighth.
    """

    max_attempts: int = 8
    backoff: float = 10.0
    max_backoff: float = 3600.0
    send_timeout: float = 30.0  # one attempt; apprise bounds its own network waits too
    lease: float = 30.0  # a claimed row is due again after this if its attempt never settled;
    # renewed every lease / 3 while the attempt lasts
    concurrency: int = 8  # deliveries in flight at once
    batch: int = 32  # rows claimed at a time
    check_every: float = 30.0  # the periodic look for due rows and reminders

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not 1 <= self.max_attempts <= 100:
            raise ValidationError("max_attempts", "must be between 1 and 100")
        for name in ("backoff", "max_backoff", "send_timeout", "lease", "check_every"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ValidationError(name, f"must be a positive number of seconds, got {value!r}")
        for name in ("concurrency", "batch"):
            if not 1 <= getattr(self, name) <= 1000:
                raise ValidationError(name, "must be between 1 and 1000")
        # Renewed every third of it: a shorter lease would be mostly renewal writes.
        if self.lease < MIN_LEASE:
            raise ValidationError("lease", f"must be at least {MIN_LEASE:g} s, got {self.lease!r}")

    def retry_delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        return float(min(self.backoff * 2 ** max(0, attempts - 1), self.max_backoff))


@dataclass(frozen=True, slots=True)
class NotifierStatus:
    dispatching: bool  # this instance is the leader, so it delivers
    pending: int  # outbox rows still to deliver (as of last_check_at)
    failed: int  # rows given up on, all time (until cleanup)
    sent: int
    delivered: int  # messages this process delivered since it started
    failed_attempts: int  # attempts that failed in this process (each retried or given up)
    given_up: int  # rows this process marked failed
    last_error: str | None  # the last failed attempt: "channel: reason"
    last_error_at: datetime | None
    last_check_at: datetime | None
    database_ok: bool


class Notifier:
    """Runs as one of Vigil's tasks (``run``); ``run_once`` is one round, for tests and tools.

    ``sender`` is the transport: a ``vigil.notify.Transport`` of the notifier's own, made
    when the first message goes out (``_send``), unless replaced (a test double, or a gate
    that holds a delivery to crash the process in the middle of it). Its session is closed
    when ``run`` ends, or after each ``run_once`` outside ``run``.
    """

    def __init__(
        self,
        *,
        store: NotifierStore,
        leadership: Leadership,
        health: HealthRegistry,
        clock: Callable[[], datetime],
        rules: Callable[[], Mapping[str, Rule]] = dict,
        open_incidents: Callable[[], Iterable[Incident]] = tuple,
        base_url: str | None = None,
        policy: DeliveryPolicy | None = None,
        sender: Sender | None = None,
        escalations: EscalationStore | None = None,
        digests: DigestStore | None = None,
    ) -> None:
        self.store = store
        self.escalations = escalations
        self.digests = digests
        self._digested: dict[str, datetime] = {}  # per channel, the last period known written
        self._policies: list[EscalationPolicy] = []
        self.leadership = leadership
        self.health = health
        self.clock = clock
        self.rules = rules
        self.open_incidents = open_incidents
        self.base_url = base_url
        self.policy = policy if policy is not None else DeliveryPolicy()
        self._transport: Transport | None = None
        self.sender = sender if sender is not None else self._send
        self._running = False  # inside ``run``: the transport stays open between rounds
        self._wake = asyncio.Event()
        self._counts = OutboxCounts()
        self._delivered = 0
        self._failed_attempts = 0
        self._given_up = 0
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None
        self._last_check_at: datetime | None = None
        self._database_ok = True
        self._next_reminder_check: datetime | None = None
        self._idle = False  # the last round found nothing that can fall due by itself
        self._digest_channels = False  # the last look at the channels found a digest one
        self._rounds = 0
        self._last_round: float | None = None  # monotonic time of the last round
        # Outcomes are written one transaction at a time, deliveries that finished meanwhile
        # together (group commit): concurrent writers would only queue on SQLite's lock.
        self._writing = asyncio.Lock()
        self._unrecorded: dict[int, asyncio.Future[None]] = {}
        self._handed: list[Claim] = []  # claimed by the monitor's cycles for us (``take``)
        self._stop = asyncio.Event()  # ``run``'s

    def follow(self, event: Event) -> None:
        """An event listener: a stored incident event may have outbox rows, a new leader
        (maybe this instance) takes over what the last one left, a channel or a policy may
        have become one with a schedule; go and look."""
        self._wake.set()

    def claim(self) -> Claim | None:
        """``Handoff``: while this instance dispatches (running, the leader), the monitor's
        cycle claims its own notifications for it in its transaction, a batch at most."""
        if not self._running or self._stop.is_set() or not self.leadership.is_leader:
            return None  # the rows wait for whoever dispatches
        return Claim(timedelta(seconds=self.policy.lease), limit=self.policy.batch)

    def take(self, claim: Claim) -> None:
        """``Handoff``: the deliveries a cycle claimed for us, sent in the next round (at
        once) to the channels as the cycle read them, with no transaction of our own first."""
        self._handed.append(claim)
        self._wake.set()

    @property
    def rounds(self) -> int:
        """Rounds that looked at the database since start (for tests and health)."""
        return self._rounds

    def status(self) -> NotifierStatus:
        return NotifierStatus(
            dispatching=self.leadership.is_leader,
            pending=self._counts.pending,
            failed=self._counts.failed,
            sent=self._counts.sent,
            delivered=self._delivered,
            failed_attempts=self._failed_attempts,
            given_up=self._given_up,
            last_error=self._last_error,
            last_error_at=self._last_error_at,
            last_check_at=self._last_check_at,
            database_ok=self._database_ok,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Round after round until ``stop`` is set; a round in progress finishes first (its
        attempts are bounded by ``send_timeout``), and so do the deliveries cycles claimed for
        it before the stop, so a clean stop leaves nothing claimed."""
        policy = self.policy
        self.health.register(NOTIFIER_TASK, stale_after=max(3 * policy.check_every, 60.0))
        self._running = True
        self._stop = stop
        preload = asyncio.create_task(self._preload()) if self.sender == self._send else None
        try:
            await self._run(stop, policy)
            while self._handed and self.leadership.is_leader:
                claim = self._handed.pop(0)
                await self._deliver_all(claim.deliveries, claim.channels)
        finally:
            self._running = False
            self._handed.clear()  # (not sent: due again when their lease ends)
            if preload is not None:
                preload.cancel()
                await asyncio.gather(preload, return_exceptions=True)
            await self._close_transport()

    async def _preload(self) -> None:
        """With a channel to send to, the sender loads as the notifier starts (in a thread):
        the first alert then does not wait for it. Without one it loads with the first
        message (``_send``), if ever."""
        try:
            if await self.store.delivery_channels():
                await load_sender()
        except VigilStorageError:
            pass  # the rounds report the database; the first message loads the sender

    async def _send(self, channel: Channel, message: Message) -> None:
        """The default sender: this notifier's own ``Transport``, made (and aiohttp and
        apprise loaded, off the event loop) when the first message goes out."""
        if self._transport is None:
            sender = await load_sender()
            if self._transport is None:  # another send may have made it meanwhile
                self._transport = sender.Transport()
        await self._transport.send(channel, message)

    async def _close_transport(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()

    async def _run(self, stop: asyncio.Event, policy: DeliveryPolicy) -> None:
        woken = True  # the first round looks at once
        while not stop.is_set():
            woken = woken or self._wake.is_set()
            self._wake.clear()
            wait = policy.check_every
            if self.leadership.is_leader and (woken or not self._resting()):
                wait = await self._guarded_round(stop)
            else:
                self._handed.clear()  # no longer ours to send: due again when their lease ends
                self.health.beat(NOTIFIER_TASK)
            woken = False
            wakers = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            try:
                await asyncio.wait(wakers, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in wakers:
                    waiter.cancel()
                await asyncio.gather(*wakers, return_exceptions=True)

    def _resting(self) -> bool:
        """Nothing can fall due by itself (as of the last round), and that round was recent:
        this periodic wake-up need not look at the database."""
        if not self._idle or self._last_round is None:
            return False
        if any(True for _ in self.open_incidents()):
            return False  # opened since (its event woke a round; this is a second guard)
        return time.monotonic() - self._last_round < IDLE_RECHECKS * self.policy.check_every

    async def _guarded_round(self, stop: asyncio.Event) -> float:
        """One round that never raises; returns how long to sleep before the next."""
        policy = self.policy
        self._rounds += 1
        self._last_round = time.monotonic()
        self._idle = False
        try:
            await self.run_once(stop)
            self._counts = await self.store.outbox_counts()
        except VigilStorageError as exc:
            self._database_ok = False
            self.health.report_error(NOTIFIER_TASK, f"database unavailable: {exc}")
            logger.warning("Vigil notifier: database unavailable: %s", exc)
            return min(policy.check_every, 5.0)
        except Exception as exc:  # a bug must not end delivery for good: report, go on
            logger.exception("Vigil notifier round failed")
            self.health.report_error(NOTIFIER_TASK, exc)
            return policy.check_every
        self._database_ok = True
        self.health.beat(NOTIFIER_TASK)
        self._idle = (
            self._counts.pending == 0
            and not self._digest_channels
            and not any(True for _ in self.open_incidents())
        )
        now = self._last_check_at = self.clock()
        due = self._counts.next_attempt_at
        if due is None:
            return policy.check_every
        return min(policy.check_every, max(0.0, (due - now).total_seconds()))

    async def run_once(self, stop: asyncio.Event | None = None) -> int:
        """Deliver every row due now, then write the reminders that are due (and deliver
        them). Returns how many messages were delivered."""
        try:
            return await self._deliver_due(stop)
        finally:
            if not self._running:
                await self._close_transport()

    async def _deliver_due(self, stop: asyncio.Event | None) -> int:
        delivered = 0
        while stop is None or not stop.is_set():
            if self._handed:  # claimed already, by the cycle that wrote them
                claim = self._handed.pop(0)
                delivered += await self._deliver_all(claim.deliveries, claim.channels)
                continue
            claimed = await self.store.claim_notifications(
                now=self.clock(),
                lease=timedelta(seconds=self.policy.lease),
                limit=self.policy.batch,
            )
            if not claimed:
                now = self.clock()
                if self._next_reminder_check is not None and now < self._next_reminder_check:
                    break
                self._next_reminder_check = now + timedelta(seconds=self.policy.check_every)
                written = await self.escalate(now) + await self.remind(now)
                if not written + await self.digest(now):
                    break
                continue
            delivered += await self._deliver_all(claimed)
        return delivered

    async def _deliver_all(
        self,
        claimed: list[Delivery],
        channels: Mapping[str, Channel | ValidationError] | None = None,
    ) -> int:
        """Claimed rows hold at most one per incident and channel, so none waits for another:
        they go out together, ``concurrency`` at a time. ``channels``: as read with the claim
        (read now if not given)."""
        if channels is None:
            channels = await self.store.delivery_channels()
        limit = asyncio.Semaphore(self.policy.concurrency)
        unsettled = {delivery.item.id for delivery in claimed}

        async def one(delivery: Delivery) -> bool:
            try:
                async with limit:
                    return await self._deliver(delivery, channels)
            finally:
                unsettled.discard(delivery.item.id)

        # Every attempt runs to its end (each bounded by send_timeout) before a failure to
        # record one (the database went away) is raised: nothing is left running behind.
        over = asyncio.Event()  # set: every attempt is over
        holding = asyncio.get_running_loop().create_task(self._hold(unsettled, over))
        try:
            results = await asyncio.gather(*(one(d) for d in claimed), return_exceptions=True)
        finally:
            over.set()
            holding.cancel()
            await asyncio.gather(holding, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return sum(1 for result in results if result is True)

    async def _hold(self, unsettled: set[int], over: asyncio.Event) -> None:
        """Renew the claim on the rows still being sent (or waiting their turn), every third
        of the lease, until ``over`` is set. (It is cancelled too, but a cancellation that
        lands in a renewal can come out of the driver as a storage error, which is only
        logged here: ``over`` still ends it.)"""
        lease = timedelta(seconds=self.policy.lease)
        while not over.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.policy.lease / 3):
                    await over.wait()
            if over.is_set() or not unsettled:
                continue
            try:
                await self.store.renew_claims(list(unsettled), now=self.clock(), lease=lease)
            except VigilStorageError as exc:  # the attempt goes on; its row may come back
                logger.warning("Vigil notifier could not renew its claims: %s", exc)

    async def escalate(self, now: datetime) -> int:
        """Write the due steps of escalation policies (``followups.write_escalations``).
        The policies read here also keep ``remind`` off the incidents they govern."""
        if self.escalations is None:
            return 0
        self._policies = await self.escalations.list_policies()
        if not self._policies:
            return 0
        return await write_escalations(
            self.escalations,
            policies=self._policies,
            incidents=self.open_incidents(),
            channels=await self.store.delivery_channels(),
            now=now,
        )

    async def digest(self, now: datetime) -> int:
        """Write the digests that are due (``followups.write_digests``)."""
        if self.digests is None:
            return 0
        channels = await self.store.list_channels()
        self._digest_channels = any(
            item.channel.enabled and not item.channel.realtime for item in channels
        )
        return await write_digests(self.digests, channels=channels, known=self._digested, now=now)

    async def remind(self, now: datetime) -> int:
        """Write a reminder for each open, unacknowledged critical incident whose last message
        to a channel with ``renotify_minutes`` is that old. Returns how many were written.
        Incidents under an escalation policy are reminded by its repeats instead."""
        incidents = [
            incident
            for incident in self.open_incidents()
            if incident.status is Status.ACTIVE
            and incident.severity is Severity.CRITICAL
            and policy_for(incident, self._policies) is None
        ]
        if not incidents:
            return 0
        channels = [
            channel
            for channel in (await self.store.delivery_channels()).values()
            if isinstance(channel, Channel) and channel.renotify_minutes is not None
        ]
        if not channels:
            return 0
        last = {
            (item.incident_id, item.channel): item
            for item in await self.store.last_notifications([i.id for i in incidents])
        }
        added = {stored.name: stored.created_at for stored in await self.store.list_channels()}
        written = 0
        for incident in incidents:
            for channel in channels:
                previous = last.get((incident.id, channel.name))
                if previous is None and incident.group is not None:
                    previous = await self._told_in_group(incident, channel, added)
                if previous is None:
                    previous = await self._since_added(incident, channel, added)
                if previous is None or previous.pending:
                    continue  # never told of it, or still being told
                if renotify_due(channel, incident, last_sent_at=previous.at, now=now):
                    if await self.store.enqueue_reminder(previous, now=now) is not None:
                        written += 1
        return written

    async def _told_in_group(
        self, incident: Incident, channel: Channel, added: Mapping[str, datetime]
    ) -> LastNotification | None:
        """For a member of an incident group whose opening was told in the group's message
        (so it has no message of its own): reminders run from when it opened."""
        created_at = added.get(channel.name)
        if created_at is None or created_at > incident.triggered_at:
            return None  # added later: ``_since_added`` covers it
        if not renotify_due(
            channel, incident, last_sent_at=incident.triggered_at, now=self.clock()
        ):
            return None
        events = await self.store.incident_events(incident.id, limit=1)
        if not events or events[0].id is None:
            return None
        return LastNotification(
            incident_id=incident.id,
            channel=channel.name,
            event_id=events[0].id,
            at=incident.triggered_at,
            repeats=0,
            pending=False,
        )

    async def _since_added(
        self, incident: Incident, channel: Channel, added: Mapping[str, datetime]
    ) -> LastNotification | None:
        """For a channel added while ``incident`` was open (so never told of its opening):
        reminders run from when it was added, about the incident's first event."""
        created_at = added.get(channel.name)
        if created_at is None or created_at <= incident.triggered_at:
            return None  # it was there when the incident opened, and chose not to hear of it
        if not renotify_due(channel, incident, last_sent_at=created_at, now=self.clock()):
            return None  # not yet: no need to read the log
        events = await self.store.incident_events(incident.id, limit=1)
        if not events or events[0].id is None:
            return None  # the event log was pruned: nothing to remind about
        return LastNotification(
            incident_id=incident.id,
            channel=channel.name,
            event_id=events[0].id,
            at=created_at,
            repeats=0,
            pending=False,
        )

    async def _deliver(
        self, delivery: Delivery, channels: Mapping[str, Channel | ValidationError]
    ) -> bool:
        item, event = delivery.item, delivery.event
        channel = channels.get(item.channel)
        final = True
        if channel is None:
            error: str | None = f"there is no channel named {item.channel!r}"
        elif isinstance(channel, ValidationError):
            error = f"the stored channel is no longer valid: {channel}"
        elif not channel.enabled:
            error = "the channel was disabled before delivery"
        else:
            error, final = await self._attempt(delivery, channel)
        if error is None:
            await self._record_sent(item.id)
            self._delivered += 1
            return True
        now = self.clock()
        self._failed_attempts += 1
        self._last_error, self._last_error_at = f"{item.channel}: {error}", now
        if final or item.attempts >= self.policy.max_attempts:
            async with self._writing:
                await self.store.settle_notification(item.id, now=now, error=error)
            self._given_up += 1
            logger.warning(
                "Vigil gave up notifying %r of event %s after %d attempt(s): %s",
                item.channel,
                event.id,
                item.attempts,
                error,
            )
        else:
            delay = timedelta(seconds=self.policy.retry_delay(item.attempts))
            async with self._writing:
                await self.store.settle_notification(
                    item.id, now=now, error=error, retry_at=now + delay
                )
            logger.info(
                "Vigil could not notify %r (attempt %d), retrying in %s: %s",
                item.channel,
                item.attempts,
                delay,
                error,
            )
        return False

    async def _record_sent(self, item_id: int) -> None:
        """Mark a row sent; returns once that is committed. Whoever gets to write takes every
        delivery waiting to be recorded into the same transaction."""
        recorded = asyncio.get_running_loop().create_future()
        self._unrecorded[item_id] = recorded
        async with self._writing:
            if not recorded.done():
                batch, self._unrecorded = self._unrecorded, {}
                try:
                    await self.store.settle_sent(list(batch), now=self.clock())
                except BaseException as exc:
                    for waiting in batch.values():
                        waiting.set_exception(exc)
                else:
                    for waiting in batch.values():
                        waiting.set_result(None)
        await recorded

    async def _attempt(self, delivery: Delivery, channel: Channel) -> tuple[str | None, bool]:
        """One attempt: the reason it failed (None if it did not) and whether trying again
        is pointless."""
        item, event = delivery.item, delivery.event
        try:
            if event.kind is EventKind.DIGEST_WRITTEN:
                digest = Digest.from_dict(event.data["digest"])
                message = format_digest(digest, channel, base_url=self.base_url)
            elif delivery.group is not None and delivery.group.size > 1:
                message = format_group(delivery.group, event, channel, base_url=self.base_url)
            else:
                message = format_event(
                    event,
                    channel,
                    base_url=self.base_url,
                    rule=self.rules().get(event.rule or ""),
                    repeat=item.repeat,
                    now=item.created_at if item.repeat else None,
                )
        except (ValidationError, KeyError, ValueError) as exc:
            return f"cannot format the message: {exc}", True
        try:
            async with asyncio.timeout(self.policy.send_timeout):
                await self.sender(channel, message)
        except DeliveryError as exc:
            return exc.reason, False
        except TimeoutError:
            return f"no answer within {self.policy.send_timeout:g} s", False
        except Exception as exc:  # the transport's bug is this row's failure, not the loop's
            logger.exception("Vigil notifier: sending to %r raised", channel.name)
            return f"{type(exc).__name__}: {exc}", False
        return None, False
