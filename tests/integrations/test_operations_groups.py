"""Incident groups in Discord: with grouping on, real discord.py bots connected to the fake
Discord keep one message per incident group, edited as members join, are acknowledged and
resolve, with buttons that act on the whole group. With grouping off, one message per incident,
as before grouping."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from vigil.core import EventKind, Incident, Resolution, Status
from vigil.integrations.discord import DiscordOperator

from .fake_discord import ADMIN, ADMIN_ROLE, OPS_CHANNEL, SECOND_ADMIN, STRANGER, FakeDiscordAPI
from .operations_support import (
    DEADLINE,
    TOKEN,
    Ops,
    custom_ids,
    eventually,
    modal_submission,
    operations,
    point_discord_py_at,
    rendered,
    running_ops,
    shows,
)

WINDOW = 120.0  # four of the tests' 30-second cycles
RULES = ("memory_usage", "event_loop_lag", "database_query_time")
# memory_usage critical (480 MB), the others warning (100 ms, 50 ms).
BREACHING: dict[str, float | None] = {
    "memory_usage": 500.0,
    "event_loop_lag": 150.0,
    "database_query_time": 60.0,
}
NORMAL: dict[str, float | None] = {
    "memory_usage": 100.0,
    "event_loop_lag": 10.0,
    "database_query_time": 5.0,
}
ADMIN_ONLY: dict[str, Any] = {"user": ADMIN, "roles": (ADMIN_ROLE,)}


@pytest.fixture
async def api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscordAPI]:
    async with FakeDiscordAPI(token=TOKEN, limit=1000) as fake:
        point_discord_py_at(fake, monkeypatch)
        yield fake


@pytest.fixture
async def ops(api: FakeDiscordAPI, migrated_sqlite_url: str) -> AsyncIterator[Ops]:
    async with running_ops(api, migrated_sqlite_url, group_window=WINDOW) as running:
        yield running


@pytest.fixture
async def ops_on_each_database(api: FakeDiscordAPI, migrated_url: str) -> AsyncIterator[Ops]:
    """As ``ops``, on SQLite and on PostgreSQL."""
    async with running_ops(api, migrated_url, group_window=WINDOW) as running:
        yield running


def group_footer(group_id: uuid.UUID) -> str:
    return f"Incident group {group_id}"


def footers(message: Mapping[str, Any]) -> list[str]:
    return [(e.get("footer") or {}).get("text") or "" for e in message.get("embeds") or []]


def components(message: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        c.get("custom_id", c.get("url", "")): c
        for row in message.get("components") or []
        for c in row.get("components") or []
    }


async def open_together(ops: Ops) -> tuple[uuid.UUID, list[Incident]]:
    """Three rules breach in the same cycles: three incidents, one group."""
    events = await ops.cycle_values(BREACHING, 2)
    opened = [e.incident for e in events if e.incident is not None]
    assert sorted(i.rule for i in opened) == sorted(RULES)
    groups = {i.group for i in opened}
    assert len(groups) == 1 and None not in groups
    [group] = groups
    assert group is not None
    return group, opened


async def group_shown(ops: Ops, group_id: uuid.UUID, text: str) -> dict[str, Any]:
    """Wait until the group's message shows ``text``; return it."""

    def showing() -> list[dict[str, Any]]:
        return [
            m
            for m in ops.messages()
            if group_footer(group_id) in footers(m) and text in rendered(m)
        ]

    await eventually(lambda: bool(showing()), what=f"the group's message showing {text!r}")
    [message] = showing()
    return message


def poster(ops: Ops) -> Any:
    [(bot, _, _)] = ops.bots
    return DiscordOperator.of(bot).poster


async def test_three_rules_breaching_together_make_one_message_kept_current(
    ops_on_each_database: Ops,
) -> None:
    ops = ops_on_each_database
    await ops.start_bot()
    group_id, incidents = await open_together(ops)
    message = await group_shown(ops, group_id, "3 incidents:")
    text = rendered(message)
    assert "most severe critical" in text and "3 of 3 open, none acknowledged" in text
    for rule in RULES:
        assert rule in text
    assert text.count("not acknowledged") == 3  # each member with its own state
    assert {f"vigil:group-{verb}:{group_id}" for verb in ("ack", "resolve", "snooze")} <= set(
        custom_ids(message)
    )
    assert not any(shows(m, i) for m in ops.messages() for i in incidents)
    assert len(ops.messages()) == 1
    assert rendered(message).count("**CRITICAL**") == 1

    # A member escalates (event_loop_lag past 500 ms): its line says so.
    await ops.cycle_values({**BREACHING, "event_loop_lag": 600.0}, 2)
    await eventually(
        lambda: rendered(ops.messages()[0]).count("**CRITICAL**") == 2,
        what="the escalated member shown critical",
    )

    # One member recovers; the others stay.
    await ops.cycle_values({**BREACHING, "event_loop_lag": 10.0}, 3)
    message = await group_shown(ops, group_id, "2 of 3 open")
    assert "Resolved automatically (the metric recovered)" in rendered(message)

    # The group acknowledged from its button: every open member is.
    form = await ops.press(message, f"vigil:group-ack:{group_id}", **ADMIN_ONLY)
    assert form.type == 9
    answer = await ops.submit(form, ["failing over the database"], **ADMIN_ONLY)
    assert answer.ephemeral and "Acknowledged 2 incidents" in answer.text
    for incident in incidents:
        stored = await ops.vigil.store.get_incident(incident.id)
        if incident.rule == "event_loop_lag":
            assert stored.status is Status.RESOLVED
        else:
            assert stored.status is Status.ACKNOWLEDGED
            assert stored.acknowledged_by == "alice [discord:3001]"
            assert stored.notes == "failing over the database"
    message = await group_shown(ops, group_id, "2 of 3 open, all acknowledged")
    assert rendered(message).count("Acknowledged by alice [discord:3001]") == 2
    assert "failing over the database" in rendered(message)
    assert components(message)[f"vigil:group-ack:{group_id}"].get("disabled") is True

    # The rest recover: the group is resolved, and its message says so.
    await ops.cycle_values(NORMAL, 3)
    message = await group_shown(ops, group_id, "All 3 resolved automatically")
    assert custom_ids(message) == []  # nothing left to press
    assert len(ops.messages()) == 1  # one message all along, edited in place
    assert poster(ops).posted == 1


async def test_the_group_buttons_resolve_and_snooze_every_open_member(ops: Ops) -> None:
    await ops.start_bot()
    group_id, incidents = await open_together(ops)
    message = await group_shown(ops, group_id, "3 incidents:")

    refused = await ops.press(message, f"vigil:group-resolve:{group_id}", user=STRANGER)
    assert refused.ephemeral and "none of your Discord roles is mapped" in refused.text

    form = await ops.press(message, f"vigil:group-snooze:{group_id}", values=["3600"], **ADMIN_ONLY)
    assert form.type == 9 and form.data["title"] == "Snooze 3 rules for 1 hour"
    done = await ops.submit(form, ["maintenance"], **ADMIN_ONLY)
    assert "for 1 hour" in done.text
    snoozes = {s.metric: s for s in await ops.vigil.store.active_snoozes(now=ops.clock())}
    assert set(snoozes) == set(RULES)
    assert {(s.by, s.reason) for s in snoozes.values()} == {("alice [discord:3001]", "maintenance")}
    await group_shown(ops, group_id, "Snoozed")

    seen_by_bob = copy.deepcopy(message)  # his screen still shows the buttons
    resolved = await ops.press(message, f"vigil:group-resolve:{group_id}", **ADMIN_ONLY)
    assert resolved.ephemeral and "Resolved 3 incidents" in resolved.text
    for incident in incidents:
        stored = await ops.vigil.store.get_incident(incident.id)
        assert (stored.resolution, stored.resolved_by) == (
            Resolution.MANUAL,
            "alice [discord:3001]",
        )
    await group_shown(ops, group_id, "All 3 resolved (3 by hand)")
    again = await ops.press(
        seen_by_bob, f"vigil:group-resolve:{group_id}", user=SECOND_ADMIN, roles=(ADMIN_ROLE,)
    )
    assert "Too late to resolve: all 3 incidents were already resolved" in again.text
    assert len(ops.messages()) == 1


async def test_two_people_acknowledging_a_group_at_once_make_one_acknowledgement(
    ops: Ops,
) -> None:
    await ops.start_bot()
    group_id, incidents = await open_together(ops)
    message = await group_shown(ops, group_id, "3 incidents:")
    custom_id = f"vigil:group-ack:{group_id}"
    people = (ADMIN, SECOND_ADMIN)
    forms = [await ops.press(message, custom_id, user=p, roles=(ADMIN_ROLE,)) for p in people]
    # Both forms submitted before either is answered.
    payloads = [
        ops.api.interaction(
            5, modal_submission(form, [""]), user=person, roles=[ADMIN_ROLE], message=message
        )
        for form, person in zip(forms, people, strict=True)
    ]
    ids = [await ops.api.press(payload) for payload in payloads]
    await eventually(lambda: all(ops.api.answers_to(i) for i in ids), what="both answered")
    answers = [ops.api.answers_to(i)[0].text for i in ids]
    assert sum("Acknowledged 3 incidents" in a for a in answers) == 1
    [late] = [a for a in answers if "Acknowledged 3" not in a]
    stored = [await ops.vigil.store.get_incident(i.id) for i in incidents]
    [winner] = {s.acknowledged_by for s in stored}
    assert winner is not None and winner in late  # the one who lost is told who won
    for incident in incidents:
        acks = [
            e
            for e in await ops.vigil.store.incident_events(incident.id)
            if e.kind is EventKind.INCIDENT_ACKNOWLEDGED
        ]
        assert [e.by for e in acks] == [winner]


async def test_a_group_of_one_is_shown_as_its_incident_until_a_second_joins(ops: Ops) -> None:
    await ops.start_bot()
    first = await ops.open_incident(500.0)
    message = await ops.shown(first, "Active for")  # exactly today's incident message
    assert f"vigil:ack:{first.id}" in custom_ids(message)
    assert first.group is not None

    # Within the window, another rule opens: it joins, and the same message shows both.
    events = await ops.cycle_values({"memory_usage": 500.0, "event_loop_lag": 150.0}, 2)
    [second] = [e.incident for e in events if e.incident and e.incident.rule == "event_loop_lag"]
    assert second.group == first.group
    grouped = await group_shown(ops, first.group, "2 incidents:")
    assert grouped["id"] == message["id"]
    assert f"vigil:group-ack:{first.group}" in custom_ids(grouped)
    assert len(ops.messages()) == 1
    row = await ops.vigil.store.discord_message(first.group, group=True)
    assert row is not None and row.message_id == int(message["id"])
    assert await ops.vigil.store.discord_message(first.id) is None


async def test_a_restarted_bot_edits_the_group_message_and_its_buttons_still_work(
    ops: Ops,
) -> None:
    first = await ops.start_bot()
    group_id, _ = await open_together(ops)
    message = await group_shown(ops, group_id, "3 incidents:")
    await ops.stop_bot(first)

    await ops.cycle_values({**BREACHING, "database_query_time": 5.0}, 3)  # while away
    await ops.start_bot()
    await group_shown(ops, group_id, "2 of 3 open")
    assert len(ops.messages()) == 1

    # The button of the message the first bot posted, pressed on the second.
    form = await ops.press(message, f"vigil:group-ack:{group_id}", **ADMIN_ONLY)
    answer = await ops.submit(form, [""], **ADMIN_ONLY)
    assert "Acknowledged 2 incidents" in answer.text
    shown = await group_shown(ops, group_id, "all acknowledged")
    assert shown["id"] == message["id"]
    assert len(ops.messages()) == 1
    assert poster(ops).posted == 0  # the second bot only edited


async def test_with_grouping_off_each_incident_has_its_own_message(
    api: FakeDiscordAPI, migrated_sqlite_url: str
) -> None:
    async with running_ops(api, migrated_sqlite_url, group_window=0) as ops:
        await ops.start_bot()
        events = await ops.cycle_values(BREACHING, 2)
        opened = [e.incident for e in events if e.incident is not None]
        assert len(opened) == 3 and all(i.group is None for i in opened)
        for incident in opened:
            message = await ops.shown(incident, "Active for")
            assert f"vigil:ack:{incident.id}" in custom_ids(message)
        assert len(ops.messages()) == 3
        assert not any(c.startswith("vigil:group-") for m in ops.messages() for c in custom_ids(m))


async def test_a_group_posted_incident_by_incident_before_the_upgrade_stays_so(
    api: FakeDiscordAPI, migrated_sqlite_url: str
) -> None:
    """Incidents of a group that each have their own message (posted before group messages
    existed) keep them; later members of that group get their own too: no incident is ever
    in two messages."""
    async with running_ops(api, migrated_sqlite_url, group_window=WINDOW) as ops:
        events = await ops.cycle_values({"memory_usage": 500.0, "event_loop_lag": 150.0}, 2)
        opened = [e.incident for e in events if e.incident is not None]
        store = ops.vigil.store
        for i, incident in enumerate(opened):  # as the poster before left them: one by one
            await store.claim_discord_post(
                incident.id, channel_id=int(OPS_CHANNEL), nonce=f"old-{i}", now=ops.clock()
            )
        await ops.start_bot()
        for incident in opened:
            await ops.shown(incident, "Active for")
        events = await ops.cycle_values(BREACHING, 2)  # a third member joins the group
        [third] = [e.incident for e in events if e.incident and e.incident.rule == RULES[2]]
        assert third.group == opened[0].group
        await ops.shown(third, "Active for")
        assert len(ops.messages()) == 3
        assert opened[0].group is not None
        assert await store.discord_message(opened[0].group, group=True) is None


async def test_a_deleted_group_message_is_posted_again_once(ops: Ops) -> None:
    await ops.start_bot()
    group_id, _ = await open_together(ops)
    message = await group_shown(ops, group_id, "3 incidents:")
    ops.api.channels[OPS_CHANNEL].remove(message)
    await ops.cycle_values({**BREACHING, "event_loop_lag": 600.0}, 2)  # a member escalates
    reposted = await group_shown(ops, group_id, "3 incidents:")
    assert reposted["id"] != message["id"]
    assert len(ops.messages()) == 1

    async def recorded() -> int | None:
        # The post reaches the fake just before its id is stored: poll the database.
        while True:
            row = await ops.vigil.store.discord_message(group_id, group=True)
            if row is not None and row.message_id is not None:
                return row.message_id
            await asyncio.sleep(0.01)

    assert await asyncio.wait_for(recorded(), DEADLINE) == int(reposted["id"])


async def test_a_group_goes_to_its_most_severe_members_channel_and_links_to_the_group(
    ops: Ops,
) -> None:
    critical_channel = "6001"
    await ops.start_bot(
        operations(
            severity_channels={"critical": int(critical_channel)},
            base_url="https://vigil.example.com/",
        )
    )
    group_id, _ = await open_together(ops)  # memory_usage critical, the others warning
    await eventually(lambda: len(ops.messages(critical_channel)) == 1, what="the group posted")
    assert ops.messages() == []
    [message] = ops.messages(critical_channel)
    assert f"https://vigil.example.com/alerts#group-{group_id}" in custom_ids(message)
