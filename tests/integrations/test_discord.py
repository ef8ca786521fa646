"""instrument() on real discord.py bots.

The Discord gateway is the one thing that cannot run here. Everything else is real: a
``commands.Bot`` logs in against a local server answering like Discord's REST API (through
discord.py's own ``HTTPClient``), and gateway payloads (MESSAGE_CREATE, INTERACTION_CREATE)
go to the same parser table discord.py's websocket hands them to, so commands run, reply over
HTTP and dispatch their events exactly as in production. Connection events are dispatched
with ``bot.dispatch``, as discord.py's gateway code does.
"""

from __future__ import annotations

import asyncio
import datetime
import inspect
import itertools
import logging
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands, tasks

from vigil.integrations.discord import (
    counts_as_failure,
    instrument,
    track_loop,
    vigil_trace_config,
)
from vigil.metrics import HealthRegistry, Metrics, Recorder, TaskStatus

from ..metrics.support import FakeClock, wait_until
from .fake_discord import HUMAN, FakeDiscordAPI, message_payload

OUTCOMES = "command_failed"  # one sample per finished command


@dataclass
class Harness:
    api: FakeDiscordAPI
    clock: FakeClock
    metrics: Metrics
    bots: list[commands.Bot] = field(default_factory=list)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(10_000))

    def bot(self, cls: type[Any] = commands.Bot, **options: Any) -> commands.Bot:
        """A bot with prefix, application and hybrid commands whose durations the test knows:
        each yields once (so discord.py's listeners run), then moves the fake clock."""
        intents = discord.Intents.default()
        intents.message_content = True
        bot: commands.Bot = cls(command_prefix="!", intents=intents, **options)
        clock = self.clock

        @bot.command()
        async def ping(ctx: commands.Context[Any]) -> None:
            await asyncio.sleep(0)
            clock.advance(0.120)
            await ctx.send("pong")

        @bot.command()
        async def boom(ctx: commands.Context[Any]) -> None:
            await asyncio.sleep(0)
            clock.advance(0.400)
            raise RuntimeError("the command's own bug")

        @bot.command()
        async def add(ctx: commands.Context[Any], a: int, b: int) -> None:
            await ctx.send(str(a + b))

        @bot.hybrid_command()
        async def hybrid(ctx: commands.Context[Any]) -> None:
            await asyncio.sleep(0)
            clock.advance(0.050)
            await ctx.send("both ways")

        @bot.tree.command()
        async def hello(interaction: discord.Interaction[Any]) -> None:
            await asyncio.sleep(0)
            clock.advance(0.200)
            await interaction.response.send_message("hi")

        @bot.tree.command()
        async def explode(interaction: discord.Interaction[Any]) -> None:
            await asyncio.sleep(0)
            clock.advance(0.300)
            raise RuntimeError("slash command bug")

        @bot.tree.command()
        @app_commands.check(lambda interaction: False)
        async def guarded(interaction: discord.Interaction[Any]) -> None:
            raise AssertionError("the check keeps everyone out")

        self.bots.append(bot)
        return bot

    def message(self, bot: commands.Bot, content: str) -> None:
        payload = message_payload(str(next(self.ids)), "77", content, HUMAN)
        bot._connection.parsers["MESSAGE_CREATE"](payload)

    def slash(self, bot: commands.Bot, name: str) -> None:
        bot._connection.parsers["INTERACTION_CREATE"](
            {
                "id": str(next(self.ids)),
                "application_id": "2000",
                "type": 2,
                "data": {"id": "1", "name": name, "type": 1},
                "channel_id": "77",
                "channel": {"id": "77", "type": 1, "recipients": [HUMAN]},
                "user": HUMAN,
                "token": "interaction-token",
                "version": 1,
                "locale": "en-US",
                "app_permissions": "0",
                "entitlements": [],
                "attachment_size_limit": 8 * 1024 * 1024,
                "authorizing_integration_owners": {},
            }
        )

    async def finished(self, count: int) -> None:
        await wait_until(lambda: self.metrics.recorder.total(OUTCOMES) >= count)


@pytest.fixture
async def harness(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    async with FakeDiscordAPI() as api:
        monkeypatch.setattr(discord.http.Route, "BASE", api.base)
        clock = FakeClock()
        state = Harness(api, clock, Metrics(recorder=Recorder(clock=clock)))
        try:
            yield state
        finally:
            for bot in state.bots:
                await bot.close()


async def test_prefix_commands_give_latency_and_error_rate(harness: Harness) -> None:
    bot = harness.bot()
    instrument(bot, harness.metrics)
    await bot.login("token")
    # One at a time: running together, they would all move the one fake clock.
    steps = (("!ping", 1), ("!boom", 2), ("!add 1 x", 3), ("!nonexistent", 3), ("!ping", 4))
    for content, finished in steps:
        harness.message(bot, content)
        await harness.finished(finished)
    await wait_until(lambda: len(harness.api.requests) >= 4)  # login, application, 2 pongs

    timings = harness.metrics.recorder.values("command_latency", 30)
    assert sorted(timings) == pytest.approx([0.0, 120.0, 120.0, 400.0])
    readings = await harness.metrics.read()
    # ping, ping, boom (its own bug) and add (bad input: the user's mistake, not a failure);
    # an unknown command is not a command at all.
    assert readings["error_rate"] == pytest.approx(25.0)
    assert readings["command_p95_latency"] == pytest.approx(358.0)  # 120 + 0.85 * (400 - 120)
    assert harness.api.requests.count(("POST", "/channels/77/messages")) == 2
    assert harness.metrics.recorder.total(OUTCOMES) == 4


async def test_application_commands_give_latency_and_error_rate(harness: Harness) -> None:
    bot = harness.bot()
    instrument(bot, harness.metrics)
    await bot.login("token")
    for done, name in enumerate(("hello", "explode", "guarded", "hello"), start=1):
        harness.slash(bot, name)
        await harness.finished(done)

    assert sorted(harness.metrics.recorder.values("command_latency", 30)) == pytest.approx(
        [200.0, 200.0, 300.0]  # the check failed before any timing could start
    )
    readings = await harness.metrics.read()
    assert readings["error_rate"] == pytest.approx(25.0)  # explode; guarded is a user error
    callbacks = [path for method, path in harness.api.requests if path.endswith("/callback")]
    assert len(callbacks) == 2  # both hellos answered through discord.py's HTTP client


async def test_a_hybrid_command_counts_once_either_way(harness: Harness) -> None:
    bot = harness.bot()
    instrument(bot, harness.metrics)
    await bot.login("token")
    harness.slash(bot, "hybrid")
    await harness.finished(1)
    harness.message(bot, "!hybrid")
    await harness.finished(2)
    assert harness.metrics.recorder.values("command_latency", 30) == pytest.approx([50.0, 50.0])
    assert harness.metrics.recorder.total(OUTCOMES) == 2


async def test_the_bots_own_handlers_keep_running(harness: Harness) -> None:
    bot = harness.bot()
    seen: list[str] = []

    @bot.event
    async def on_command_error(ctx: commands.Context[Any], error: Exception) -> None:
        seen.append(f"on_command_error:{type(error).__name__}")

    @bot.tree.error
    async def before(interaction: discord.Interaction[Any], error: Exception) -> None:
        seen.append(f"tree before:{type(error).__name__}")

    instrument(bot, harness.metrics)
    await bot.login("token")
    harness.message(bot, "!boom")
    await harness.finished(1)
    harness.slash(bot, "explode")
    await harness.finished(2)
    await wait_until(lambda: len(seen) >= 2)

    @bot.tree.error  # replaced after instrument(): the wrapper follows it
    async def after(interaction: discord.Interaction[Any], error: Exception) -> None:
        seen.append(f"tree after:{type(error).__name__}")

    harness.slash(bot, "hello")
    await harness.finished(3)
    harness.slash(bot, "explode")
    await harness.finished(4)
    await wait_until(lambda: len(seen) >= 3)
    assert sorted(seen) == [
        "on_command_error:CommandInvokeError",
        "tree after:CommandInvokeError",
        "tree before:CommandInvokeError",
    ]
    assert (await harness.metrics.read())["error_rate"] == pytest.approx(75.0)


def _logged(records: list[logging.LogRecord]) -> list[tuple[str, int, str, str | None]]:
    """What a reader of the log sees: who logged, how severe, the message, the exception."""
    return [
        (
            record.name,
            record.levelno,
            record.getMessage(),
            None if record.exc_info is None else repr(record.exc_info[1]),
        )
        for record in records
    ]


async def test_a_failing_prefix_command_is_logged_as_without_vigil(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """discord.py logs a prefix command's exception only while no extra on_command_error
    listener exists: instrumenting a bot must not silence it."""

    async def run_boom(bot: commands.Bot) -> list[tuple[str, int, str, str | None]]:
        caplog.clear()
        sent = len(harness.api.requests)
        with caplog.at_level(logging.INFO):  # every logger; DEBUG has nonces and ports
            harness.message(bot, "!boom")
            await wait_until(lambda: any(r.levelno >= logging.ERROR for r in caplog.records))
            harness.message(bot, "!ping")  # later than anything !boom scheduled
            await wait_until(lambda: len(harness.api.requests) > sent)
        return _logged(caplog.records)

    plain = harness.bot()
    await plain.login("token")
    unwatched = await run_boom(plain)
    watched = harness.bot()
    instrument(watched, harness.metrics)
    await watched.login("token")
    assert await run_boom(watched) == unwatched
    assert (
        "discord.ext.commands.bot",
        logging.ERROR,
        "Ignoring exception in command boom",
        repr(commands.CommandInvokeError(RuntimeError("the command's own bug"))),
    ) in unwatched
    await harness.finished(2)
    assert (await harness.metrics.read())["error_rate"] == pytest.approx(50.0)


async def test_connection_events_and_gateway_latency(harness: Harness) -> None:
    bot = harness.bot()
    gateway = instrument(bot, harness.metrics).gateway
    await bot.login("token")

    async def reading() -> dict[str, float | None]:
        values = await harness.metrics.read()
        return {key: values[key] for key in ("gateway_latency", "bot_disconnected")}

    assert await reading() == {"gateway_latency": None, "bot_disconnected": None}
    harness.clock.advance(61)  # past the grace period, and the bot never connected
    assert await reading() == {"gateway_latency": None, "bot_disconnected": 1.0}

    # The websocket cannot run here: a stand-in with what Client.latency and close() read.
    bot.ws = SimpleNamespace(latency=0.0874, open=False)  # type: ignore[assignment]
    bot.dispatch("connect")
    await wait_until(lambda: gateway.is_connected is True)
    assert await reading() == {"gateway_latency": pytest.approx(87.4), "bot_disconnected": 0.0}
    bot.dispatch("disconnect")
    await wait_until(lambda: gateway.is_connected is False)
    assert await reading() == {"gateway_latency": None, "bot_disconnected": 1.0}
    bot.dispatch("resumed")
    await wait_until(lambda: gateway.is_connected is True)
    assert await reading() == {"gateway_latency": pytest.approx(87.4), "bot_disconnected": 0.0}
    assert gateway.disconnects == 1


async def test_shards_are_tracked_one_by_one(harness: Harness) -> None:
    bot = harness.bot(commands.AutoShardedBot, shard_count=2)
    instrumentation = instrument(bot, harness.metrics)
    await bot.login("token")
    gateway = instrumentation.gateway
    bot.dispatch("shard_connect", 0)
    bot.dispatch("shard_ready", 1)
    await wait_until(lambda: gateway.is_connected is True)
    bot.dispatch("shard_disconnect", 1)
    bot.dispatch("connect")  # discord.py also dispatches the unsharded events: not a shard
    await wait_until(lambda: gateway.is_connected is False)
    assert (await harness.metrics.read())["bot_disconnected"] == 1.0
    bot.dispatch("shard_resumed", 1)
    await wait_until(lambda: gateway.is_connected is True)
    assert (await harness.metrics.read())["bot_disconnected"] == 0.0


async def test_http_is_traced_through_discord_py_when_instrumented_before_login(
    harness: Harness,
) -> None:
    bot = harness.bot()
    instrumentation = instrument(bot, harness.metrics)
    assert instrumentation.http is not None
    await bot.login("token")
    for _ in range(3):
        await bot.fetch_user(3001)
    harness.api.rate_limit_next(retry_after=0.01)
    await bot.fetch_user(3002)  # discord.py waits out the 429 and retries
    readings = await harness.metrics.read()
    assert readings["api_rate_limit_hits"] == 1.0
    assert readings["api_rate_limit_usage"] == 100.0  # the 429 announced 0 remaining
    assert harness.metrics.recorder.values("api_bucket_usage", 30)[:4] == [10.0, 10.0, 10.0, 20.0]
    assert harness.api.usage("GET", "/users/3001") == 40.0  # one route bucket for all users
    assert harness.api.requests[-2:] == [("GET", "/users/3002"), ("GET", "/users/3002")]


async def test_a_trace_config_passed_at_construction_is_found_after_login(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    bot = harness.bot(http_trace=vigil_trace_config())

    async def setup_hook() -> None:
        instrument(bot, harness.metrics)

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="vigil.integrations.discord"):
        await bot.login("token")
    # Vigil's own warnings: discord.py's (no voice support) come with the first client a
    # worker makes, whichever test that is.
    assert [r for r in caplog.records if r.name.startswith("vigil")] == []
    harness.api.rate_limit_next(retry_after=0.01)
    await bot.fetch_user(3001)
    readings = await harness.metrics.read()
    assert readings["api_rate_limit_hits"] == 1.0
    assert readings["api_p95_latency"] is not None


async def test_after_login_without_a_trace_config_http_is_off_and_says_how_to_fix_it(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    bot = harness.bot()
    await bot.login("token")
    with caplog.at_level(logging.WARNING, logger="vigil.integrations.discord"):
        instrumentation = instrument(bot, harness.metrics)
    assert instrumentation.http is None
    assert "http_trace=vigil_trace_config()" in caplog.text
    await bot.fetch_user(3001)
    readings = await harness.metrics.read()
    assert "api_rate_limit_hits" not in readings  # no fake zero: the metric is simply absent
    assert "error_rate" in readings


async def test_the_bots_own_trace_config_keeps_its_hooks(harness: Harness) -> None:
    statuses: list[int] = []

    async def own(session: Any, context: Any, params: aiohttp.TraceRequestEndParams) -> None:
        statuses.append(params.response.status)

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(own)
    bot = harness.bot(http_trace=trace)
    instrumentation = instrument(bot, harness.metrics)
    await bot.login("token")
    assert bot.http.http_trace is trace
    assert statuses == [200, 200]  # /users/@me and the application info
    assert instrumentation.http is not None
    assert instrumentation.http.recorder.total("api_request_latency") == 2


async def test_detach_removes_everything_it_added(harness: Harness) -> None:
    bot = harness.bot()

    @bot.tree.error
    async def own(interaction: discord.Interaction[Any], error: Exception) -> None:
        pass

    instrumentation = instrument(bot, harness.metrics)
    with pytest.raises(RuntimeError, match="already instrumented"):
        instrument(bot, Metrics())
    await bot.login("token")
    harness.message(bot, "!ping")
    await harness.finished(1)
    instrumentation.detach()
    instrumentation.detach()
    assert bot.tree.on_error is own
    assert "dispatch" not in vars(bot)  # discord.py's own method again
    harness.message(bot, "!boom")
    harness.message(bot, "!ping")
    await wait_until(lambda: len(harness.api.requests) >= 4)  # the second pong went out
    assert harness.metrics.recorder.total(OUTCOMES) == 1
    again = instrument(bot, Metrics(recorder=harness.metrics.recorder))
    again.detach()
    assert "on_error" not in vars(harness.bot().tree)


async def test_detach_before_login_takes_back_sources_and_http_hooks(harness: Harness) -> None:
    bot = harness.bot()
    instrument(bot, harness.metrics).detach()
    assert bot.http.http_trace is None
    assert [source.name for source in harness.metrics.sources] == ["health"]

    trace = aiohttp.TraceConfig()
    own_bot = harness.bot(http_trace=trace)
    instrument(own_bot, harness.metrics).detach()
    assert own_bot.http.http_trace is trace
    assert list(trace.on_request_end) == []


async def test_a_clashing_source_name_leaves_the_bot_untouched(harness: Harness) -> None:
    class Taken:
        name = "gateway"

        async def read(self) -> dict[str, float | None]:
            return {}

    harness.metrics.add_source(Taken())
    bot = harness.bot()
    listeners_before = {event: list(h) for event, h in bot.extra_events.items() if h}
    with pytest.raises(ValueError, match="'gateway' is already registered"):
        instrument(bot, harness.metrics)
    assert {event: list(h) for event, h in bot.extra_events.items() if h} == listeners_before
    assert bot.http.http_trace is None
    assert "on_error" not in vars(bot.tree)
    assert "dispatch" not in vars(bot)
    assert [source.name for source in harness.metrics.sources] == ["health", "gateway"]
    instrument(bot, Metrics())  # and it can still be instrumented elsewhere


async def test_detach_restores_the_trees_default_error_handler(harness: Harness) -> None:
    bot = harness.bot()
    instrument(bot, harness.metrics).detach()
    assert "on_error" not in vars(bot.tree)
    assert bot.tree.on_error.__func__ is app_commands.CommandTree.on_error  # type: ignore[attr-defined]


def test_a_plain_client_is_refused_with_the_way_out() -> None:
    client = discord.Client(intents=discord.Intents.default())
    with pytest.raises(TypeError, match=r"commands\.Bot is a drop-in subclass"):
        instrument(client, Metrics())  # type: ignore[arg-type]


async def _demo(interaction: discord.Interaction[Any]) -> None:
    pass


SLASH: app_commands.Command[Any, ..., None] = app_commands.Command(
    name="demo", description="demo", callback=_demo
)
PARAMETER = commands.Parameter("count", inspect.Parameter.POSITIONAL_OR_KEYWORD)


@pytest.mark.parametrize(
    ("error", "failed"),
    [
        (commands.CommandInvokeError(RuntimeError("bug")), True),
        (app_commands.CommandInvokeError(SLASH, RuntimeError("bug")), True),
        (commands.ConversionError(commands.MemberConverter(), ValueError("crashed")), True),
        (commands.BadArgument("not a number"), False),
        (commands.MissingRequiredArgument(PARAMETER), False),
        (commands.CheckFailure(), False),
        (commands.CommandOnCooldown(commands.Cooldown(1, 5), 3.0, commands.BucketType.user), False),
        (app_commands.CheckFailure(), False),
        (commands.HybridCommandError(app_commands.CheckFailure()), False),
        (commands.HybridCommandError(app_commands.CommandInvokeError(SLASH, KeyError())), True),
    ],
)
def test_which_command_errors_count_as_failures(error: Exception, failed: bool) -> None:
    assert counts_as_failure(error) is failed


async def test_a_tasks_loop_beats_and_reports_errors(harness: Harness) -> None:
    health = HealthRegistry(clock=harness.clock)
    rounds: list[int] = []

    @tasks.loop(seconds=0.001, count=3)
    async def refresh() -> None:
        rounds.append(len(rounds))

    @tasks.loop(seconds=0.001)
    async def flaky() -> None:
        raise ValueError("upstream returned garbage")

    track_loop(refresh, health, name="refresh")
    track_loop(flaky, health)
    assert health.get("refresh").status is TaskStatus.STARTING  # type: ignore[union-attr]
    refresh.start()
    flaky.start()
    task = flaky.get_task()
    assert task is not None
    with pytest.raises(ValueError, match="garbage"):
        await task
    await wait_until(lambda: not refresh.is_running())
    assert rounds == [0, 1, 2]
    assert health.get("refresh").status is TaskStatus.HEALTHY  # type: ignore[union-attr]
    failed = health.get(flaky.coro.__qualname__)
    assert failed is not None
    assert failed.status is TaskStatus.ERROR
    assert failed.last_error == "ValueError: upstream returned garbage"


def test_a_loops_staleness_follows_its_period() -> None:
    health = HealthRegistry(stale_after=300)

    async def body() -> None:
        pass

    hourly = track_loop(tasks.loop(hours=1)(body), health, name="hourly")
    fast = track_loop(tasks.loop(seconds=10)(body), health, name="fast")
    twice_a_day = track_loop(
        tasks.loop(time=[datetime.time(6, 0), datetime.time(8, 0)])(body), health, name="times"
    )
    manual = track_loop(tasks.loop(minutes=1)(body), health, name="manual", stale_after=42)
    assert [hourly, fast, twice_a_day, manual]
    stale_after = {task.name: task.stale_after for task in health.snapshot()}
    assert stale_after == {"hourly": 7200.0, "fast": 300.0, "times": 2 * 22 * 3600.0, "manual": 42}


def test_vigil_and_vigil_metrics_import_without_discord_py() -> None:
    script = textwrap.dedent(
        """
        import importlib.abc, sys

        class NoDiscord(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "discord" or name.startswith("discord."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, NoDiscord())
        import vigil, vigil.metrics, vigil.integrations
        metrics = vigil.metrics.Metrics()
        assert "discord" not in sys.modules
        try:
            import vigil.integrations.discord
        except ImportError as exc:
            print(exc)
        else:
            raise SystemExit("imported without discord.py?")
        """
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'vigil-alerts[discord]'" in result.stdout
