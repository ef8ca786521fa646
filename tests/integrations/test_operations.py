"""Operating Vigil from Discord: real discord.py bots, connected over the gateway to the fake
Discord, post and edit incident messages and answer buttons, forms and slash commands."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import pytest

from vigil.core import EventKind, Resolution, Status
from vigil.integrations import _operations
from vigil.integrations.discord import DiscordOperator

from .fake_discord import (
    ADMIN,
    ADMIN_ROLE,
    OPS_CHANNEL,
    SECOND_ADMIN,
    STRANGER,
    VIEWER,
    VIEWER_ROLE,
    FakeDiscordAPI,
)
from .operations_support import (
    CRITICAL,
    NORMAL,
    TOKEN,
    WARNING,
    Ops,
    custom_ids,
    eventually,
    modal_submission,
    operations,
    point_discord_py_at,
    rendered,
    running_ops,
    start_ops,
)
from .teardown import ended


@pytest.fixture
async def api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscordAPI]:
    async with FakeDiscordAPI(token=TOKEN, limit=1000) as fake:
        point_discord_py_at(fake, monkeypatch)
        yield fake


@pytest.fixture
async def ops(api: FakeDiscordAPI, migrated_sqlite_url: str) -> AsyncIterator[Ops]:
    async with running_ops(api, migrated_sqlite_url) as running:
        yield running


async def test_one_message_follows_the_incident_from_open_to_resolved(ops: Ops) -> None:
    await ops.start_bot()
    incident = await ops.open_incident(WARNING)
    message = await ops.shown(incident, "Active for")
    assert "WARNING" in rendered(message)
    assert f"vigil:ack:{incident.id}" in custom_ids(message)

    await ops.cycle(CRITICAL, 2)  # escalated
    await ops.shown(incident, "CRITICAL")

    ack = await ops.press(message, f"vigil:ack:{incident.id}", user=ADMIN, roles=(ADMIN_ROLE,))
    answer = await ops.submit(ack, ["restarting the shard"], user=ADMIN, roles=(ADMIN_ROLE,))
    assert answer.ephemeral and "Acknowledged" in answer.text
    shown = await ops.shown(incident, "Acknowledged by alice [discord:3001]")
    assert "restarting the shard" in rendered(shown)

    await ops.cycle(NORMAL, 3)  # recovered
    resolved = await ops.shown(incident, "Resolved automatically")
    assert custom_ids(resolved) == []  # nothing left to press
    assert len(ops.messages()) == 1  # one message, edited in place


async def test_a_member_without_a_mapped_role_is_refused_privately(ops: Ops) -> None:
    await ops.start_bot()
    incident = await ops.open_incident()
    message = await ops.posted(incident)

    refused = await ops.press(message, f"vigil:ack:{incident.id}", user=STRANGER)
    assert refused.type == 4 and refused.ephemeral
    assert "none of your Discord roles is mapped" in refused.text
    viewer = await ops.press(
        message, f"vigil:resolve:{incident.id}", user=VIEWER, roles=(VIEWER_ROLE,)
    )
    assert viewer.ephemeral and "viewer access only" in viewer.text
    slash = await ops.slash("status", user=STRANGER)
    assert slash.ephemeral and "You may not read Vigil here" in slash.text

    assert (await ops.vigil.store.get_incident(incident.id)).status is Status.ACTIVE
    kinds = [e.kind for e in await ops.vigil.store.incident_events(incident.id)]
    assert kinds == [EventKind.INCIDENT_OPENED]


async def test_two_people_acknowledging_at_once_make_one_acknowledgement(ops: Ops) -> None:
    await ops.start_bot()
    incident = await ops.open_incident()
    message = await ops.posted(incident)
    custom_id = f"vigil:ack:{incident.id}"
    forms = [
        await ops.press(message, custom_id, user=person, roles=(ADMIN_ROLE,))
        for person in (ADMIN, SECOND_ADMIN)
    ]
    # Both forms submitted before either is answered.
    payloads = [
        ops.api.interaction(
            5, modal_submission(form, [note]), user=person, roles=[ADMIN_ROLE], message=message
        )
        for form, person, note in zip(
            forms, (ADMIN, SECOND_ADMIN), ("mine", "no, mine"), strict=True
        )
    ]
    ids = [await ops.api.press(payload) for payload in payloads]
    await eventually(lambda: all(ops.api.answers_to(i) for i in ids), what="both answered")
    answers = sorted((ops.api.answers_to(i)[0].text for i in ids), key=len)
    assert sum("Acknowledged" in a for a in answers) == 1
    [late] = [a for a in answers if "Already acknowledged by" in a]

    stored = await ops.vigil.store.get_incident(incident.id)
    assert stored.acknowledged_by is not None
    assert stored.acknowledged_by in late  # the one who lost is told who won
    assert stored.acknowledged_by in {"alice [discord:3001]", "bob [discord:3004]"}
    events = await ops.vigil.store.incident_events(incident.id)
    acknowledged = [e for e in events if e.kind is EventKind.INCIDENT_ACKNOWLEDGED]
    assert [e.by for e in acknowledged] == [stored.acknowledged_by]
    await ops.shown(incident, f"Acknowledged by {stored.acknowledged_by}")


async def test_resolve_and_snooze_from_the_message(ops: Ops) -> None:
    await ops.start_bot()
    incident = await ops.open_incident()
    message = await ops.posted(incident)

    form = await ops.press(
        message, f"vigil:snooze:{incident.id}", user=ADMIN, roles=(ADMIN_ROLE,), values=["3600"]
    )
    assert form.type == 9 and "1 hour" in form.data["title"]
    done = await ops.submit(form, ["deploy in progress"], user=ADMIN, roles=(ADMIN_ROLE,))
    assert done.ephemeral and "Snoozed **memory_usage** for 1 hour" in done.text
    [snooze] = await ops.vigil.store.active_snoozes(now=ops.clock())
    assert (snooze.metric, snooze.by, snooze.reason) == (
        "memory_usage",
        "alice [discord:3001]",
        "deploy in progress",
    )
    await ops.shown(incident, "deploy in progress")

    seen_by_bob = copy.deepcopy(message)  # his screen still shows the buttons
    resolved = await ops.press(
        message, f"vigil:resolve:{incident.id}", user=ADMIN, roles=(ADMIN_ROLE,)
    )
    assert resolved.ephemeral and "Resolved" in resolved.text
    await ops.shown(incident, "Resolved by alice [discord:3001] after")
    stored = await ops.vigil.store.get_incident(incident.id)
    assert (stored.resolution, stored.resolved_by) == (Resolution.MANUAL, "alice [discord:3001]")
    again = await ops.press(
        seen_by_bob, f"vigil:resolve:{incident.id}", user=SECOND_ADMIN, roles=(ADMIN_ROLE,)
    )
    assert "already resolved by alice [discord:3001]" in again.text


async def test_a_restarted_bot_edits_the_same_message_and_old_buttons_still_work(
    ops: Ops,
) -> None:
    first = await ops.start_bot()
    incident = await ops.open_incident()
    message = await ops.posted(incident)
    await ops.stop_bot(first)

    await ops.cycle(CRITICAL, 2)  # escalated while the bot was away
    await ops.start_bot()
    await ops.shown(incident, "CRITICAL")
    assert len(ops.messages()) == 1

    # The button of the message posted by the first bot, pressed on the second.
    form = await ops.press(message, f"vigil:ack:{incident.id}", user=ADMIN, roles=(ADMIN_ROLE,))
    answer = await ops.submit(form, [""], user=ADMIN, roles=(ADMIN_ROLE,))
    assert "Acknowledged" in answer.text
    await ops.shown(incident, "Acknowledged by alice [discord:3001]")
    assert len(ops.messages()) == 1
    assert ops.message_of(incident)["id"] == message["id"]


async def test_messages_catch_up_when_the_bot_reconnects(ops: Ops) -> None:
    # Retries an hour apart: only the reconnection can bring the message up to date in time.
    await ops.start_bot(operations(retry_after=3600, max_retry=3600))
    incident = await ops.open_incident()
    await ops.posted(incident)

    ops.api.refuse_messages = True  # Discord unreachable for the bot's messages
    await ops.vigil.acknowledge(incident.id, by="carol", notes="from the dashboard")
    await eventually(lambda: ops.api.refused > 0, what="the edit refused")
    ops.api.refuse_messages = False
    resumed = ops.api.resumed
    await ops.api.drop_connections()
    await eventually(lambda: ops.api.resumed > resumed, what="the session resumed")
    await ops.shown(incident, "Acknowledged by carol")


async def test_a_deleted_message_is_posted_again_once(ops: Ops) -> None:
    await ops.start_bot()
    incident = await ops.open_incident()
    message = await ops.posted(incident)
    ops.api.channels[OPS_CHANNEL].remove(message)
    await ops.cycle(CRITICAL, 2)
    reposted = await ops.shown(incident, "CRITICAL")
    assert reposted["id"] != message["id"]
    assert len(ops.messages()) == 1


async def test_severity_channels_and_the_link_to_the_incident(ops: Ops) -> None:
    critical_channel = "6001"
    await ops.start_bot(
        operations(
            severity_channels={"critical": int(critical_channel)},
            base_url="https://vigil.example.com/",
        )
    )
    incident = await ops.open_incident(CRITICAL)
    message = await ops.posted(incident, channel=critical_channel)
    assert ops.messages() == []
    link = f"https://vigil.example.com/incidents/{incident.id}"
    assert link in custom_ids(message)


async def test_a_poster_stopped_just_as_it_wakes_ends(ops: Ops) -> None:
    """On Python 3.11 ``asyncio.wait_for`` swallows a cancellation that arrives just as what
    it waits for is done: a poster stopped right after a wake-up kept running, and Vigil's
    ``aclose`` waited for it for ever. Stopped 0 to 3 loop steps after a wake-up, it ends."""
    for steps in range(4):
        # No periodic look: a poster that missed its cancellation would wait an hour.
        bot = await ops.start_bot(operations(check_every=3600.0))
        poster = DiscordOperator.of(bot).poster
        # Its first round done, it waits for its next wake-up.
        await eventually(partial(round_done, poster), what="the first round")
        poster.wake()
        for _ in range(steps):
            await asyncio.sleep(0)
        await ended(poster.stop(), f"stopping the poster {steps} steps after a wake-up")
        await ops.stop_bot(bot)


def round_done(poster: Any) -> bool:
    return bool(poster._catch_ups_done == poster._catch_ups_asked)


def tasks_named(name: str) -> list[asyncio.Task[Any]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == name]


async def test_a_bot_detached_while_registering_its_commands_does_not_start_posting(
    ops: Ops,
) -> None:
    # on_ready registers the commands, then starts the poster; detached meanwhile, the
    # operator's on_ready must not start it again (it would post for a detached bot).
    ops.api.hold_registration = asyncio.Event()
    await ops.start_bot()
    await eventually(lambda: ops.api.registering == 1, what="the commands being registered")
    [(_, _, wired)] = ops.bots
    wired.detach()
    ops.api.hold_registration.set()
    await eventually(lambda: not tasks_named("discord.py: on_ready"), what="on_ready to end")
    assert None in ops.api.commands  # on_ready did go on after its registration
    assert not tasks_named("vigil-discord-poster")


async def test_the_vigil_commands_are_registered_when_the_bot_connects(ops: Ops) -> None:
    await ops.start_bot()
    await eventually(lambda: None in ops.api.commands, what="commands registered")
    [group] = [c for c in ops.api.commands[None] if c["name"] == "vigil"]
    assert {o["name"] for o in group["options"]} == {
        "status",
        "incidents",
        "ack",
        "resolve",
        "snooze",
        "rules",
    }


async def test_slash_commands_read_and_act_as_the_discord_user(ops: Ops) -> None:
    await ops.start_bot()
    incident = await ops.open_incident(CRITICAL)
    await ops.posted(incident)
    viewer: dict[str, Any] = {"user": VIEWER, "roles": (VIEWER_ROLE,)}
    admin: dict[str, Any] = {"user": ADMIN, "roles": (ADMIN_ROLE,)}

    status = await ops.slash("status", **viewer)
    assert status.ephemeral and "1 open incident" in status.text
    assert "critical: 1" in status.text and "Memory Usage" in status.text
    rules = await ops.slash("rules", **viewer)
    assert "**memory_usage**: warning 400 MB, critical 480 MB" in rules.text
    listed = await ops.slash("incidents", {"page": 1}, **viewer)
    assert str(incident.id) in listed.text and "Page 1 of 1" in listed.text

    # Autocomplete offers the open incident (by its rule) and rule names.
    choices = await ops.slash("ack", {"incident": "memory"}, autocomplete="incident", **admin)
    assert choices.type == 8
    assert [c["value"] for c in choices.data["choices"]] == [str(incident.id)]
    rule_names = await ops.slash(
        "snooze", {"rule": "gateway", "duration": 900}, autocomplete="rule", **admin
    )
    assert [c["value"] for c in rule_names.data["choices"]] == ["gateway_latency"]
    # ... and nothing to a member Vigil does not know
    for field, options in (("incident", {"incident": "memory"}), ("rule", {"rule": "gateway"})):
        command = "ack" if field == "incident" else "snooze"
        hidden = await ops.slash(command, options, autocomplete=field, user=STRANGER)
        assert hidden.type == 8 and hidden.data["choices"] == []

    refused = await ops.slash("ack", {"incident": str(incident.id)}, **viewer)
    assert refused.ephemeral and "viewer access only" in refused.text
    acked = await ops.slash("ack", {"incident": str(incident.id), "note": "on it"}, **admin)
    assert acked.ephemeral and "Acknowledged" in acked.text
    await ops.shown(incident, "Acknowledged by alice [discord:3001]")

    snoozed = await ops.slash(
        "snooze", {"rule": "memory_usage", "duration": 14400, "reason": "load test"}, **admin
    )
    assert "Snoozed **memory_usage** for 4 hours" in snoozed.text
    unknown = await ops.slash("snooze", {"rule": "nope", "duration": 900}, **admin)
    assert unknown.ephemeral and "Nothing changed" in unknown.text

    resolved = await ops.slash("resolve", {"incident": str(incident.id)}, **admin)
    assert "Resolved" in resolved.text
    await ops.shown(incident, "Resolved by alice [discord:3001]")
    missing = await ops.slash("resolve", {"incident": "not-an-id"}, **admin)
    assert missing.ephemeral and "Nothing changed: incident not-an-id not found" in missing.text
    events = await ops.vigil.store.incident_events(incident.id)
    assert [e.by for e in events if e.by is not None] == [
        "alice [discord:3001]",
        "alice [discord:3001]",
    ]
    stored = await ops.vigil.store.get_incident(incident.id)  # what the pages and API show
    assert stored.acknowledged_by == stored.resolved_by == "alice [discord:3001]"


@pytest.mark.postgres
async def test_only_the_leader_posts_and_a_follower_takes_over(
    api: FakeDiscordAPI, migrated_postgres_url: str
) -> None:
    first = await start_ops(api, migrated_postgres_url, instance="first")
    second = await start_ops(api, migrated_postgres_url, instance="second")
    try:
        leader_bot = await first.start_bot()
        # The follower's periodic look is out of reach: it wakes only for events.
        follower_bot = await second.start_bot(operations(check_every=3600.0))
        assert first.vigil.monitor.leadership.is_leader
        assert not second.vigil.monitor.leadership.is_leader
        follower = DiscordOperator.of(follower_bot).poster
        await eventually(lambda: follower.idle_rounds >= 1, what="the follower's first round")
        idle = follower.idle_rounds

        incident = await first.open_incident()
        message = await first.posted(incident)
        # The follower hears of the incident (through the log) and posts nothing. (Counted
        # from before the incident: it may hear of it before the message is posted.)
        await eventually(lambda: follower.idle_rounds > idle, what="the follower woken")
        assert (follower.posted, follower.edited) == (0, 0)
        assert DiscordOperator.of(leader_bot).poster.posted == 1

        await first.close()  # the leader goes away; the follower's next cycle takes over
        await second.vigil.monitor.cycle()
        assert second.vigil.monitor.leadership.is_leader
        form = await second.press(
            message, f"vigil:ack:{incident.id}", user=ADMIN, roles=(ADMIN_ROLE,)
        )
        await second.submit(form, ["taken over"], user=ADMIN, roles=(ADMIN_ROLE,))
        await second.shown(incident, "Acknowledged by alice [discord:3001]")
        await eventually(lambda: follower.edited >= 1, what="the new leader's edit counted")
        assert follower.posted == 0
        assert len(api.messages_in(OPS_CHANNEL)) == 1
    finally:
        await second.close()
        await first.close()


async def test_a_slow_action_is_deferred_and_answered_by_a_follow_up(
    ops: Ops, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if the database took longer than Discord waits for an answer (3 s).
    monkeypatch.setattr(_operations, "DEFER_AFTER", 0.0)
    await ops.start_bot()
    incident = await ops.open_incident()
    await ops.posted(incident)
    deferred = await ops.slash(
        "ack", {"incident": str(incident.id)}, user=ADMIN, roles=(ADMIN_ROLE,)
    )
    assert deferred.type == 5 and deferred.ephemeral  # "thinking…", seen by the admin only
    await eventually(
        lambda: any(token == deferred.token for token, _ in ops.api.followups),
        what="the follow-up",
    )
    [answer] = [m for token, m in ops.api.followups if token == deferred.token]
    assert "Acknowledged" in rendered(answer) and answer["flags"] & 64
    await ops.shown(incident, "Acknowledged by alice [discord:3001]")
