"""Discord operations benchmark: from an incident's commit to its message in the Discord
channel, and from the Acknowledge form's submission to the acknowledgement in the database,
each against a baseline measured in the same run.

A real Vigil (fresh SQLite file) and a real discord.py bot, connected over the gateway to the
fake Discord of the tests (REST and gateway on 127.0.0.1, in this process), post and edit one
message per incident. For each of ``--incidents`` rounds, two incidents commit together:

1. commit -> the bot's message created in the fake channel, against commit -> the same
   incident's notification received by a JSON webhook channel (the outbox's delivery);
2. the Acknowledge form submitted over the gateway -> its answer (sent after the
   acknowledgement committed), against ``Vigil.acknowledge`` called directly on the other
   incident (the store's acknowledge alone).

    python benchmarks/bench_discord.py [--incidents 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import discord
import yarl
from aiohttp import web
from discord.ext import commands

from vigil.core import CycleResult, Event, EventKind, Incident, Severity, Status
from vigil.core.incidents import resolve
from vigil.integrations.discord import DiscordOperations, instrument
from vigil.notify import idempotency_key
from vigil.runtime import Vigil
from vigil.runtime.notifier import DeliveryPolicy
from vigil.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the fake Discord lives with the tests
from tests.integrations.fake_discord import (  # noqa: E402
    ADMIN,
    ADMIN_ROLE,
    OPS_CHANNEL,
    FakeDiscordAPI,
)
from tests.integrations.operations_support import modal_submission, shows  # noqa: E402

DEADLINE = 60.0
TOKEN = "bench-token"
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class Webhook:
    """A JSON webhook receiver noting when each notification arrives, by idempotency key."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.changed = asyncio.Condition()
        self.url = ""

    async def hook(self, request: web.Request) -> web.Response:
        await request.read()
        key = request.headers.get("Idempotency-Key", "")
        self.arrived.setdefault(key, time.monotonic())
        async with self.changed:
            self.changed.notify_all()
        return web.Response(text="ok")

    async def wait(self, key: str) -> float:
        async with asyncio.timeout(DEADLINE), self.changed:
            await self.changed.wait_for(lambda: key in self.arrived)
        return self.arrived[key]


@contextlib.asynccontextmanager
async def serving(webhook: Webhook) -> AsyncIterator[None]:
    app = web.Application()
    app.router.add_post("/hook", webhook.hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    webhook.url = f"json://{host}:{port}/hook"
    try:
        yield
    finally:
        await runner.cleanup()


def incident(metric: str, at: datetime) -> Incident:
    return Incident(
        id=uuid.uuid4(),
        metric=metric,
        severity=Severity.CRITICAL,
        status=Status.ACTIVE,
        triggered_at=at,
        threshold=480.0,
        value=500.0,
        peak_value=500.0,
        last_value=500.0,
        message=f"{metric} exceeded critical threshold: 500.00 >= 480.00",
    )


async def commit(vigil: Vigil, events: list[Event], at: datetime) -> tuple[list[Event], float]:
    stored = await vigil.store.commit_cycle(samples=[], result=CycleResult(events=events), now=at)
    committed = time.monotonic()
    vigil.bus.publish(stored)
    return stored, committed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"post": [], "webhook": [], "ack": [], "direct": []}
    webhook = Webhook()
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{Path(scratch) / 'bench.db'}"
        async with FakeDiscordAPI(token=TOKEN, limit=10**9) as api, serving(webhook):
            discord.http.Route.BASE = api.base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(api.gateway_url)
            vigil = Vigil(
                Settings(database_url=url, interval=3600, instance="bench"),
                process_metrics=False,
                delivery=DeliveryPolicy(check_every=5.0),
            )
            async with vigil:
                await vigil.add_channel({"name": "bench", "url": webhook.url}, by="bench")
                bot = commands.Bot(
                    command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0
                )
                instrument(
                    bot,
                    vigil,
                    operations=DiscordOperations(
                        channel_id=int(OPS_CHANNEL),
                        admin_roles=[int(ADMIN_ROLE)],
                        sync_commands=False,
                    ),
                )
                task = asyncio.create_task(bot.start(TOKEN))
                try:
                    async with asyncio.timeout(DEADLINE):
                        while not bot.is_ready():  # noqa: ASYNC110 - discord.py has no event
                            await asyncio.sleep(0.01)
                    for n in range(args.incidents):
                        await one_round(vigil, api, webhook, timings, T0 + timedelta(minutes=n))
                finally:
                    await bot.close()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
    return timings


async def one_round(
    vigil: Vigil,
    api: FakeDiscordAPI,
    webhook: Webhook,
    timings: dict[str, list[float]],
    at: datetime,
) -> None:
    measured, other = incident("memory_usage", at), incident("gateway_latency", at)
    stored, committed = await commit(
        vigil,
        [Event.for_incident(EventKind.INCIDENT_OPENED, i, at=at) for i in (measured, other)],
        at,
    )
    opened = stored[0]
    assert opened.id is not None

    def message() -> dict[str, Any] | None:
        return next((m for m in api.messages_in(OPS_CHANNEL) if shows(m, measured)), None)

    await api.wait_for(lambda: message() is not None, deadline=DEADLINE)
    found = message()
    assert found is not None
    timings["post"].append((api.created_at[found["id"]] - committed) * 1000)
    arrived = await webhook.wait(idempotency_key(measured.id, opened.id, "bench"))
    timings["webhook"].append((arrived - committed) * 1000)
    # Both messages of the other incident too, before the next part is timed.
    await api.wait_for(
        lambda: any(shows(m, other) for m in api.messages_in(OPS_CHANNEL)), deadline=DEADLINE
    )

    # The button opens the form (not timed: a person fills it in), then the submission.
    pressed = api.interaction(
        3,
        {"custom_id": f"vigil:ack:{measured.id}", "component_type": 2},
        user=ADMIN,
        roles=[ADMIN_ROLE],
        message=found,
    )
    await api.press(pressed)
    await api.wait_for(lambda: bool(api.answers_to(pressed["id"])), deadline=DEADLINE)
    [form] = api.answers_to(pressed["id"])
    submitted = api.interaction(
        5, modal_submission(form, [""]), user=ADMIN, roles=[ADMIN_ROLE], message=found
    )
    sent = time.monotonic()
    await api.press(submitted)
    await api.wait_for(lambda: bool(api.answers_to(submitted["id"])), deadline=DEADLINE)
    [answer] = api.answers_to(submitted["id"])
    timings["ack"].append((answer.at - sent) * 1000)
    assert (await vigil.store.get_incident(measured.id)).status is Status.ACKNOWLEDGED

    began = time.perf_counter()
    await vigil.acknowledge(other.id, by="bench")
    timings["direct"].append((time.perf_counter() - began) * 1000)

    # Both resolved, and their messages settled, before the next round.
    ended = at + timedelta(seconds=30)
    current = [await vigil.store.get_incident(i.id) for i in (measured, other)]
    await commit(vigil, [resolve(i, now=ended)[1] for i in current], ended)
    await api.wait_for(
        lambda: all(
            "Resolved" in str(m.get("embeds"))
            for m in api.messages_in(OPS_CHANNEL)
            if shows(m, measured) or shows(m, other)
        ),
        deadline=DEADLINE,
    )


def main(args: argparse.Namespace) -> None:
    timings = asyncio.run(run(args))
    post, hook = timings["post"], timings["webhook"]
    ack, direct = timings["ack"], timings["direct"]

    def line(label: str, values: list[float]) -> str:
        return (
            f"{label:<58} median {statistics.median(values):6.1f} ms, "
            f"p99 {percentile(values, 0.99):6.1f} ms"
        )

    print(f"{args.incidents} incidents, one at a time; SQLite; fake Discord on 127.0.0.1")
    print(line("commit -> message in the Discord channel (the bot):", post))
    print(line("commit -> webhook channel's notification (baseline):", hook))
    print(
        f"  = {statistics.median(post) / statistics.median(hook):.2f}x the webhook's median, "
        f"{percentile(post, 0.99) / percentile(hook, 0.99):.2f}x its p99"
    )
    print(line("Acknowledge form submitted -> acknowledged (answered):", ack))
    print(line("Vigil.acknowledge() called directly (baseline):", direct))
    print(
        f"  = {statistics.median(ack) / statistics.median(direct):.2f}x the direct median, "
        f"{percentile(ack, 0.99) / percentile(direct, 0.99):.2f}x its p99"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=100)
    main(parser.parse_args())
