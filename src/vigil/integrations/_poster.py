"""The poster: one Discord message per incident, or per incident group when incident grouping
is on, posted once and then edited in place.

It follows the event log from a cursor kept in the database (the log commits with each
incident change, so nothing is lost between the change and the message), on the leader only.
Each incident an event touched is shown by its *subject*: its group when it has one (grouping
on), else itself. A group already shown incident by incident (posted before group messages
existed) goes on that way, so that no incident is ever in two messages. For each subject it
renders the incident or group as it is now and:

- edits its message when one is recorded;
- otherwise records a claim (channel, nonce) before posting, posts with that nonce, then
  records the message id. A claim found without a message id means a process died between
  the two: the channel is searched for the message first, and it is posted only if absent.

A failed round (Discord or the database unreachable) moves nothing forward and is tried again
with a doubling delay; each reconnection of the bot catches up the messages that fell behind.
A round cancelled (the bot detached, Vigil closing) stops between steps, never inside one of
its database writes (``whole``): each write commits or rolls back before the round ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Collection, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import discord

from vigil.core import Event, EventKind, Incident, NotFoundError, Severity
from vigil.integrations._buttons import incident_view
from vigil.integrations._embeds import footer, group_embed, group_footers, incident_embed, rule_name
from vigil.integrations._group_buttons import group_view
from vigil.store._discord import MAX_GROUPS_ASKED, DiscordMessage, group_nonce, incident_nonce

if TYPE_CHECKING:
    from vigil.core.silences import Snooze
    from vigil.integrations._operations import DiscordOperator

_log = logging.getLogger(__name__)

CURSOR = "discord"
TASK = "vigil.discord"
BATCH = 500
SEARCH_LIMIT = 100
T = TypeVar("T")


class Subject(NamedTuple):
    """What one message shows: an incident, or an incident group (``grouped``)."""

    id: uuid.UUID
    grouped: bool = False


class IncidentPoster:
    def __init__(self, operator: DiscordOperator) -> None:
        self.operator = operator
        self._wake = asyncio.Event()
        # Catch-ups asked for (a connection, a resumed session) and done: one asked for while
        # a round runs is done by the next round.
        self._catch_ups_asked = 1
        self._catch_ups_done = 0
        self._cursor: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._cancelled: asyncio.Task[None] | None = None  # until ``stop`` sees it end
        self._ended = False  # cancelled for good: the bot detached, or Vigil closed
        self._listening: Any = None
        self.posted = 0
        self.edited = 0
        self.idle_rounds = 0  # wake-ups with nothing to do here (not the leader, not connected)
        self.last_error: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, *, catch_up: bool = False) -> None:
        """Run (once started, a no-op but for the wake-up); ``catch_up`` also re-renders every
        message that fell behind, as after a reconnection. Once cancelled, a no-op: an
        ``on_ready`` still under way when the bot detached does not start it again."""
        if self._ended:
            return
        if catch_up:
            self._catch_ups_asked += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="vigil-discord-poster"
            )
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def cancel(self) -> None:
        """Stop posting for good (a round under way is cut short: it is safe to, see the
        module)."""
        self._ended = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            self._cancelled = task
        if self._listening is not None:
            self.operator.vigil.health_registry.unregister(TASK)

    async def stop(self) -> None:
        """Cancel, and wait until the task has ended (cancelled earlier, too): a round cut
        short still returns its database connection, which it must do before the store
        closes."""
        self.cancel()
        task, self._cancelled = self._cancelled, None
        if task is not None:
            # Waited for, not awaited: the task's cancellation is its own, and this one's,
            # should it come (a teardown's deadline), still reaches the caller.
            await asyncio.wait([task])

    def follow(self, event: Event) -> None:
        """An event-bus listener: incidents and snoozes change messages."""
        if event.incident is not None or event.kind in _SNOOZES or event.kind is _LEADER:
            self._wake.set()

    def _listen(self) -> None:
        vigil = self.operator.vigil
        bus = vigil.bus
        if self._listening is not bus:  # a bus keeps its listeners: add one once per bus
            bus.add_listener(self._follow_while_running)
            self._listening = bus
        if vigil.health_registry.get(TASK) is None:
            vigil.health_registry.register(TASK, stale_after=max(3 * self._every, 60.0))

    def _follow_while_running(self, event: Event) -> None:
        if self._task is not None:
            self.follow(event)

    @property
    def _every(self) -> float:
        return self.operator.config.check_every

    async def _run(self) -> None:
        config = self.operator.config
        delay = config.check_every
        failures = 0
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
            # that arrives just as the wake-up does, and the poster would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
            delay = config.check_every
            if not self._ready():
                self._cursor = None  # another instance may move it meanwhile
                self.idle_rounds += 1
                if not self.operator.bot.is_closed():
                    self._health(None)  # idle (a follower, not yet connected), not stale
                continue
            try:
                await self.sync_round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Discord or the database: say so, try again later
                if self.operator.bot.is_closed() or not self.operator.vigil.running:
                    continue  # shut down under the round: nothing to report
                failures += 1
                self._cursor = None
                delay = min(config.retry_after * 2 ** (failures - 1), config.max_retry)
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._health(self.last_error)
                _log.warning(
                    "Vigil could not update its Discord messages (retrying in %.0f s): %s",
                    delay,
                    self.last_error,
                )
            else:
                failures = 0
                self._health(None)

    def _health(self, error: str | None) -> None:
        registry = self.operator.vigil.health_registry
        if registry.get(TASK) is None:
            return  # not registered yet (Vigil not running), or unregistered on the way out
        if error is None:
            registry.beat(TASK)
        else:
            registry.report_error(TASK, error)

    def _ready(self) -> bool:
        vigil, bot = self.operator.vigil, self.operator.bot
        if not vigil.running or bot.user is None or bot.is_closed():
            return False
        self._listen()  # a follower follows the log too, to wake when it becomes the leader
        return bool(vigil.monitor.leadership.is_leader)  # only the leader posts

    # -- one round ---------------------------------------------------------------------------

    async def sync_round(self) -> int:
        """Bring every message the log says is out of date up to date; returns how many
        messages (incidents' and groups') were synced."""
        store = self.operator.vigil.store
        clock = self.operator.vigil.clock
        touched: dict[uuid.UUID, uuid.UUID | None] = {}  # incident -> its group
        targets: dict[Subject, None] = {}
        asked = self._catch_ups_asked
        catching_up = self._catch_ups_done < asked
        # The cursor is read once per spell as leader (only the leader moves it).
        cursor = self._cursor if not catching_up else None
        if cursor is None:
            cursor = await store.discord_cursor(CURSOR)
        if cursor is None:  # the first run on this database: post what is open now
            cursor = await store.last_event_id()
            touched.update((i.id, i.group) for i in await store.active_incidents())
            await whole(store.set_discord_cursor(CURSOR, cursor, now=clock()))
        if catching_up:
            targets.update(dict.fromkeys(map(Subject, await store.discord_messages_behind())))
            behind = await store.discord_messages_behind(group=True)
            targets.update(dict.fromkeys(Subject(g, grouped=True) for g in behind))
        synced = 0
        while True:
            events = await store.events_after(cursor, limit=BATCH)
            mark = events[-1].id if events else cursor
            assert mark is not None
            touched.update((i.id, i.group) for i in self._touched(events))
            targets.update(dict.fromkeys(await self._subjects(touched)))
            touched.clear()
            if targets:
                snoozes = await self._snoozes()
                for subject in targets:
                    if subject.grouped:
                        await self.sync_group(subject.id, mark=mark, snoozes=snoozes)
                    else:
                        await self.sync(subject.id, mark=mark, snoozes=snoozes)
                    synced += 1
                targets.clear()
            if events:
                await whole(store.set_discord_cursor(CURSOR, mark, now=clock()))
            cursor = self._cursor = mark
            if len(events) < BATCH:
                break
        self._catch_ups_done = asked
        return synced

    async def _subjects(self, touched: dict[uuid.UUID, uuid.UUID | None]) -> list[Subject]:
        """The message showing each incident: its group's, unless the group was posted
        incident by incident before group messages existed; its own without a group."""
        groups = sorted({group for group in touched.values() if group is not None})
        one_by_one: set[uuid.UUID] = set()
        for start in range(0, len(groups), MAX_GROUPS_ASKED):
            chunk = groups[start : start + MAX_GROUPS_ASKED]
            one_by_one |= await self.operator.vigil.store.discord_groups_posted_one_by_one(chunk)
        return [
            Subject(incident)
            if group is None or group in one_by_one
            else Subject(group, grouped=True)
            for incident, group in touched.items()
        ]

    async def _snoozes(self) -> dict[str, Snooze]:
        """The live snoozes by rule, from the runtime's cache (reloaded when one changed)."""
        silences = self.operator.vigil.silences
        await silences.load()
        return {s.metric: s for s in silences.active_snoozes(self.operator.vigil.clock())}

    def _touched(self, events: Iterable[Event]) -> Iterable[Incident]:
        for event in events:
            if event.incident is not None:
                yield event.incident
            elif event.kind in _SNOOZES and event.metric is not None:
                yield from (
                    incident
                    for incident in self.operator.vigil.view.active()
                    if rule_name(incident) == event.metric
                )

    async def sync(
        self, incident_id: uuid.UUID, *, mark: int, snoozes: dict[str, Snooze] | None = None
    ) -> None:
        """Make the incident's own message show it as it is now (``mark``: an event id no
        older than the state read)."""
        vigil = self.operator.vigil
        try:
            incident = await vigil.store.get_incident(incident_id)
        except NotFoundError:
            return  # deleted by retention since
        if snoozes is None:
            snoozes = await self._snoozes()
        embed = incident_embed(
            incident,
            rule=vigil.view.rules.get(rule_name(incident)),
            snooze=snoozes.get(rule_name(incident)),
            now=vigil.clock(),
        )
        view = incident_view(incident, link=self.operator.incident_url(incident.id))
        await self._deliver(
            Subject(incident.id),
            embed,
            view,
            severity=incident.severity,
            footers=frozenset({footer(incident)}),
            mark=mark,
        )

    async def sync_group(
        self, group_id: uuid.UUID, *, mark: int, snoozes: dict[str, Snooze] | None = None
    ) -> None:
        """Make the group's message show it, with each member, as it is now."""
        vigil = self.operator.vigil
        try:
            group = await vigil.store.get_group(group_id)
        except NotFoundError:
            return  # its members deleted by retention since
        if snoozes is None:
            snoozes = await self._snoozes()
        embed = group_embed(group, rules=vigil.view.rules, snoozes=snoozes, now=vigil.clock())
        view = group_view(
            group,
            link=self.operator.group_url(group.id),
            incident_link=self.operator.incident_url(group.members[0].id),
        )
        await self._deliver(
            Subject(group.id, grouped=True),
            embed,
            view,
            severity=group.severity,
            footers=group_footers(group),
            mark=mark,
        )

    async def _deliver(
        self,
        subject: Subject,
        embed: discord.Embed,
        view: discord.ui.View,
        *,
        severity: Severity,
        footers: Collection[str],
        mark: int,
    ) -> None:
        """Edit the subject's message, or post it exactly once (see the module)."""
        vigil = self.operator.vigil
        store = vigil.store
        grouped = subject.grouped
        row = await store.discord_message(subject.id, group=grouped)
        if row is not None and row.message_id is not None:
            try:
                await self._edit(row, embed, view)
            except discord.NotFound:  # someone deleted it: the subject gets a new one
                _log.info("Vigil's Discord message for %s was deleted", _described(subject))
                await whole(
                    store.forget_discord_post(
                        subject.id, nonce=_next_nonce(row), now=vigil.clock(), group=grouped
                    )
                )
                row = await store.discord_message(subject.id, group=grouped)
            else:
                self.edited += 1
                await whole(
                    store.record_discord_edit(
                        subject.id, event_id=mark, now=vigil.clock(), group=grouped
                    )
                )
                return
        found: discord.Message | None = None
        if row is None:
            nonce = group_nonce(subject.id) if grouped else incident_nonce(subject.id)
            row = await whole(
                store.claim_discord_post(
                    subject.id,
                    channel_id=self.operator.config.channel_for(severity),
                    nonce=nonce,
                    now=vigil.clock(),
                    group=grouped,
                )
            )
        else:  # claimed before, never recorded: the post may have happened
            found = await self._find_posted(row, footers)
            row = await whole(
                store.claim_discord_post(
                    subject.id,
                    channel_id=row.channel_id,
                    nonce=row.nonce,
                    now=vigil.clock(),
                    group=grouped,
                )
            )
        if row.message_id is not None:  # recorded meanwhile by another round
            await self._edit(row, embed, view)
            return
        if found is None:
            message_id = await self._send(row, embed, view)
            self.posted += 1
        else:
            message_id = found.id
            await self._edit(replace(row, message_id=message_id), embed, view)
        await whole(
            store.record_discord_post(
                subject.id, message_id=message_id, event_id=mark, now=vigil.clock(), group=grouped
            )
        )

    async def _send(self, row: DiscordMessage, embed: discord.Embed, view: discord.ui.View) -> int:
        """Post the message under the claim's nonce (Discord answers a repeat of the nonce
        within a few minutes with the first message); returns its id."""
        channel = self.operator.bot.get_partial_messageable(row.channel_id)
        message = await channel.send(embed=embed, view=view, nonce=row.nonce)
        return message.id

    async def _edit(self, row: DiscordMessage, embed: discord.Embed, view: discord.ui.View) -> None:
        assert row.message_id is not None
        channel = self.operator.bot.get_partial_messageable(row.channel_id)
        await channel.get_partial_message(row.message_id).edit(embed=embed, view=view)

    async def _find_posted(
        self, row: DiscordMessage, footers: Collection[str]
    ) -> discord.Message | None:
        """The bot's message with one of ``footers`` among the channel's latest
        ``SEARCH_LIMIT``, if any: a post whose id was never recorded is found there."""
        bot = self.operator.bot
        me = bot.user
        channel = bot.get_partial_messageable(row.channel_id)
        async for message in channel.history(limit=SEARCH_LIMIT):
            if me is not None and message.author.id != me.id:
                continue
            if any(embed.footer.text in footers for embed in message.embeds):
                return message
        return None


_SNOOZES = frozenset({EventKind.SNOOZE_STARTED, EventKind.SNOOZE_ENDED})
_LEADER = EventKind.LEADER_CHANGED


async def whole(write: Awaitable[T]) -> T:
    """A database write run to its end even when the round is cancelled meanwhile (the bot
    detached, Vigil closing), then the cancellation: a SQLite write transaction cut short can
    leave its connection holding the database's lock, and every other writer waiting on it."""
    task = asyncio.ensure_future(write)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return task.result()


def _next_nonce(row: DiscordMessage) -> str:
    _, _, generation = row.nonce.partition("-")
    nonce = group_nonce if row.grouped else incident_nonce
    return nonce(row.subject, int(generation or 0) + 1)


def _described(subject: Subject) -> str:
    return f"incident group {subject.id}" if subject.grouped else f"incident {subject.id}"
