"""discord.py instrumentation: one call wires a bot's commands, gateway and HTTP client.

    metrics = Metrics()                 # or the runtime's Vigil, which has the same parts
    bot = commands.Bot(command_prefix="!", intents=intents, http_trace=vigil_trace_config())
    instrument(bot, metrics)            # in setup_hook, or anywhere before bot.start()

Everything is added beside what the bot already has, and changes nothing the bot does:
gateway event listeners through ``bot.add_listener``, the command tree's ``on_error`` wrapped,
never replaced, and ``bot.dispatch`` wrapped to see prefix and hybrid commands start, finish
and fail. ``detach()`` undoes it all.

Prefix commands are not followed through an ``on_command_error`` listener: discord.py's default
``Bot.on_command_error`` logs a command's exception only while no such listener exists, so one
would silence the bot's error log.

HTTP tracking needs aiohttp trace hooks in discord.py's HTTP session, which is created at
login and cannot take hooks afterwards. Called before login, ``instrument`` adds them itself
(through ``bot.http.http_trace``, the constructor's ``http_trace=``); called after (from
``setup_hook``, say), it finds the hooks of ``vigil_trace_config()`` passed at construction,
or logs how to get them.
"""

from __future__ import annotations

import itertools
import logging
import math
import weakref
from typing import TYPE_CHECKING, Any

try:
    import discord
    from discord import app_commands
    from discord.ext import commands, tasks
    from discord.ext.commands.hybrid import HybridAppCommand
except ModuleNotFoundError as exc:
    if exc.name is None or exc.name.partition(".")[0] != "discord":
        raise
    raise ModuleNotFoundError(
        "vigil.integrations.discord needs discord.py, which is not installed. "
        "Install it with: pip install 'vigil-alerts[discord]'  (or: pip install discord.py)",
        name=exc.name,
    ) from exc

from vigil.integrations._operations import DiscordOperations, DiscordOperator, actor, parse_actor
from vigil.metrics.commands import CommandStats
from vigil.metrics.gateway import DEFAULT_CONNECT_GRACE, GatewaySource
from vigil.metrics.health import HealthRegistry
from vigil.metrics.http_trace import HttpTracker
from vigil.metrics.hub import MetricHost
from vigil.metrics.recorder import Recorder
from vigil.metrics.source import DEFAULT_WINDOW, MetricSource

if TYPE_CHECKING:
    from collections.abc import Callable

    import aiohttp

__all__ = [
    "USER_ERRORS",
    "DiscordInstrumentation",
    "DiscordOperations",
    "DiscordOperator",
    "actor",
    "counts_as_failure",
    "instrument",
    "parse_actor",
    "track_loop",
    "vigil_trace_config",
]

_log = logging.getLogger(__name__)
_STARTED = "vigil.started"  # key in Interaction.extras, which discord.py leaves to users

# Errors that are the invoker's doing (bad input, missing permission, cooldown), not the bot's.
USER_ERRORS: tuple[type[Exception], ...] = (
    commands.UserInputError,
    commands.CheckFailure,
    commands.CommandOnCooldown,
    commands.MaxConcurrencyReached,
    commands.DisabledCommand,
    app_commands.CheckFailure,
    app_commands.CommandOnCooldown,
    app_commands.TransformerError,
)

_instrumented: weakref.WeakKeyDictionary[discord.Client, DiscordInstrumentation] = (
    weakref.WeakKeyDictionary()
)


def counts_as_failure(error: BaseException) -> bool:
    """Whether a command error counts against ``error_rate``: yes when the command's own code
    (or a converter) raised, no for the errors in ``USER_ERRORS``."""
    if isinstance(error, commands.HybridCommandError):
        error = error.original
    if isinstance(error, commands.ConversionError):
        return True  # a converter crashed: a bug, though it subclasses BadArgument
    return not isinstance(error, USER_ERRORS)


def vigil_trace_config(
    recorder: Recorder | None = None, *, window: float = DEFAULT_WINDOW
) -> aiohttp.TraceConfig:
    """Trace hooks to pass as ``http_trace=`` when constructing the bot; ``instrument`` finds
    them later and publishes their metrics. ``recorder`` defaults to a private one."""
    return HttpTracker(recorder, window=window).trace_config()


def track_loop(
    loop: tasks.Loop[Any],
    health: HealthRegistry,
    *,
    name: str | None = None,
    stale_after: float | None = None,
) -> tasks.Loop[Any]:
    """Watch a ``discord.ext.tasks`` loop: a heartbeat after each successful iteration, an
    error reported for each exception. ``stale_after`` defaults to twice the loop's period
    (at least the registry's default), so an hourly loop is not stale after five minutes.
    Apply it before the loop starts; returns the loop."""
    task = name or loop.coro.__qualname__
    limit = stale_after if stale_after is not None else _loop_stale_after(loop, health.stale_after)
    loop.coro = health.track(task, stale_after=limit)(loop.coro)
    return loop


def instrument(
    bot: commands.Bot,
    host: MetricHost,
    *,
    window: float | None = None,
    trace_http: bool = True,
    is_failure: Callable[[BaseException], bool] = counts_as_failure,
    connect_grace: float = DEFAULT_CONNECT_GRACE,
    operations: DiscordOperations | None = None,
) -> DiscordInstrumentation:
    """Wire ``bot`` into ``host`` (a ``Metrics``, or anything shaped like ``MetricHost``) and add
    its sources to it: ``commands`` (command_p95_latency, error_rate), ``gateway``
    (gateway_latency, bot_disconnected) and, when tracing is possible, ``http``
    (api_rate_limit_usage, api_rate_limit_hits, api_p95_latency).

    ``bot`` must be a ``commands.Bot`` or ``commands.AutoShardedBot``: a plain
    ``discord.Client`` cannot take extra event listeners without losing yours. ``window``
    defaults to ``host.window``; ``is_failure`` decides which command errors count as
    failures.

    ``operations`` also lets people operate Vigil from Discord through this bot (``host``
    must then be the running ``Vigil``): each incident posted to a channel as one message
    kept current, with buttons, and the ``/vigil`` commands; see ``DiscordOperations``.
    """
    if operations is not None and not hasattr(host, "acknowledge"):
        raise TypeError(
            "instrument(..., operations=...) needs the Vigil itself as the host (it acts on "
            f"incidents), got {type(host).__name__}"
        )
    if not hasattr(bot, "add_listener"):
        raise TypeError(
            f"instrument() needs a commands.Bot or commands.AutoShardedBot, got "
            f"{type(bot).__name__}: a plain discord.Client offers no way to add event listeners "
            "without replacing yours. commands.Bot is a drop-in subclass of Client "
            "(commands.Bot(command_prefix=commands.when_mentioned, intents=...))."
        )
    if bot in _instrumented:
        raise RuntimeError("this bot is already instrumented; call detach() first")
    instrumentation = DiscordInstrumentation(
        bot,
        host,
        window=host.window if window is None else window,
        trace_http=trace_http,
        is_failure=is_failure,
        connect_grace=connect_grace,
    )
    try:
        for source in instrumentation.sources:
            host.add_source(source)
            instrumentation._added.append(source.name)
        if operations is not None:
            instrumentation.operations = DiscordOperator(bot, host, operations)  # type: ignore[arg-type]
    except BaseException:
        instrumentation.detach()  # a source name clashed: leave the bot as it was
        raise
    _instrumented[bot] = instrumentation
    return instrumentation


class DiscordInstrumentation:
    """What ``instrument`` attached to one bot, and the sources it feeds."""

    def __init__(
        self,
        bot: commands.Bot,
        host: MetricHost,
        *,
        window: float,
        trace_http: bool,
        is_failure: Callable[[BaseException], bool],
        connect_grace: float,
    ) -> None:
        self.bot = bot
        self._host = host
        self.operations: DiscordOperator | None = None
        self._added: list[str] = []
        recorder = host.recorder
        self._clock = recorder.clock
        self._is_failure = is_failure
        self.commands = CommandStats(recorder, window=window)
        self.gateway = GatewaySource(
            lambda: bot.latency, connect_grace=connect_grace, clock=recorder.clock
        )
        self.http: HttpTracker | None = None
        self._installed_trace: aiohttp.TraceConfig | None = None
        self._created_trace = False
        if trace_http:
            self.http, self._installed_trace, self._created_trace = _trace_http(
                bot, recorder, window
            )
        self._started: weakref.WeakKeyDictionary[commands.Context[Any], float] = (
            weakref.WeakKeyDictionary()
        )
        sharded = isinstance(bot, discord.AutoShardedClient)
        gateway_events = (
            {
                "on_shard_connect": self._on_shard_up,
                "on_shard_ready": self._on_shard_up,
                "on_shard_resumed": self._on_shard_up,
                "on_shard_disconnect": self._on_shard_down,
            }
            if sharded
            else {
                "on_connect": self._on_up,
                "on_ready": self._on_up,
                "on_resumed": self._on_up,
                "on_disconnect": self._on_down,
            }
        )
        self._listeners: dict[str, Callable[..., Any]] = {
            "on_interaction": self._on_interaction,
            "on_app_command_completion": self._on_app_command_completion,
            **gateway_events,
        }
        for event, listener in self._listeners.items():
            bot.add_listener(listener, event)
        self._command_events: dict[str, Callable[..., None]] = {
            "command": self._on_command,
            "command_completion": self._on_command_completion,
            "command_error": self._on_command_error,
        }
        # Same trick as the tree's wrapper: one bound method, compared by identity in detach().
        self._dispatch_original: Callable[..., None] = bot.dispatch
        self._dispatch_had_own = "dispatch" in vars(bot)
        self._dispatch_wrapper = self._dispatch
        bot.dispatch = self._dispatch_wrapper  # type: ignore[method-assign]
        self._tree_original: Any = None
        self._tree_had_own = False
        # One bound method, kept: each attribute access would make a new one, and the check
        # "is our wrapper still installed" compares identity.
        self._tree_wrapper = self._tree_on_error
        self._wrap_tree_errors()
        self._attached = True

    @property
    def sources(self) -> tuple[MetricSource, ...]:
        parts: list[MetricSource] = [self.commands, self.gateway]
        if self.http is not None:
            parts.append(self.http)
        return tuple(parts)

    def detach(self) -> None:
        """Undo ``instrument``: remove the listeners and the sources it added, restore the
        tree's error handler, and take the HTTP hooks out again if discord.py has not created
        its session yet (a session keeps the hooks it was created with)."""
        if not self._attached:
            return
        self._attached = False
        if self.operations is not None:
            self.operations.detach()
        for event, listener in self._listeners.items():
            self.bot.remove_listener(listener, event)
        # Wrapped again by someone since: the wrapper stays in their chain and passes through.
        if vars(self.bot).get("dispatch") is self._dispatch_wrapper:
            if self._dispatch_had_own:
                self.bot.dispatch = self._dispatch_original  # type: ignore[method-assign]
            else:
                del self.bot.dispatch
        tree = self.bot.tree
        if vars(tree).get("on_error") is self._tree_wrapper:
            if self._tree_had_own:
                tree.on_error = self._tree_original  # type: ignore[method-assign]
            else:
                del tree.on_error
        for name in self._added:
            self._host.remove_source(name)
        self._added.clear()
        http = self.bot.http
        trace = self._installed_trace
        if self.http is not None and trace is not None and http.token is None:
            if http.http_trace is trace and not trace.on_request_end.frozen:
                if self._created_trace:
                    http.http_trace = None
                else:
                    self.http.detach(trace)
        _instrumented.pop(self.bot, None)

    # Prefix commands, and hybrid commands however they are invoked. discord.py dispatches
    # "command", "command_completion" and "command_error" through bot.dispatch (Bot.invoke,
    # Command.dispatch_error, the hybrid app command): seen there, synchronously, as they
    # happen, and without the on_command_error listener that would mute discord.py's log.

    def _dispatch(self, event: str, /, *args: Any, **kwargs: Any) -> None:
        seen = self._command_events.get(event) if self._attached else None
        if seen is not None:
            try:
                seen(*args)
            except Exception:  # a metric must never stop the bot's own event
                _log.exception("Vigil could not record the command event %r", event)
        self._dispatch_original(event, *args, **kwargs)

    def _on_command(self, ctx: commands.Context[Any]) -> None:
        self._started[ctx] = self._clock()

    def _on_command_completion(self, ctx: commands.Context[Any]) -> None:
        self.commands.finished(self._elapsed(self._started.pop(ctx, None)), failed=False)

    def _on_command_error(self, ctx: commands.Context[Any], error: Exception) -> None:
        if ctx.command is None or isinstance(error, commands.CommandNotFound):
            return  # not a command at all: nothing ran
        started = self._started.pop(ctx, None)
        self.commands.finished(self._elapsed(started), failed=self._is_failure(error))

    # Application commands.

    async def _on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        if interaction.type is discord.InteractionType.application_command:
            interaction.extras.setdefault(_STARTED, self._clock())
        self._wrap_tree_errors()  # the bot may have set its own tree.on_error since

    async def _on_app_command_completion(
        self, interaction: discord.Interaction[Any], command: Any
    ) -> None:
        if isinstance(command, HybridAppCommand):
            return  # already counted through on_command_completion
        self._finish_interaction(interaction, failed=False)

    async def _tree_on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError, /
    ) -> None:
        try:
            if not isinstance(interaction.command, HybridAppCommand):
                self._finish_interaction(interaction, failed=self._is_failure(error))
        finally:
            await self._tree_original(interaction, error)

    def _wrap_tree_errors(self) -> None:
        tree = self.bot.tree
        own = vars(tree).get("on_error")
        if own is self._tree_wrapper:
            return
        self._tree_had_own = own is not None
        self._tree_original = tree.on_error
        tree.on_error = self._tree_wrapper  # type: ignore[method-assign]

    def _finish_interaction(self, interaction: discord.Interaction[Any], *, failed: bool) -> None:
        started = interaction.extras.pop(_STARTED, None)
        self.commands.finished(self._elapsed(started), failed=failed)

    def _elapsed(self, started: float | None) -> float | None:
        return None if started is None else (self._clock() - started) * 1000.0

    # Gateway.

    async def _on_up(self) -> None:
        self.gateway.connected()

    async def _on_down(self) -> None:
        self.gateway.disconnected()

    async def _on_shard_up(self, shard_id: int) -> None:
        self.gateway.connected(shard_id)

    async def _on_shard_down(self, shard_id: int) -> None:
        self.gateway.disconnected(shard_id)


def _trace_http(
    bot: commands.Bot, recorder: Recorder, window: float
) -> tuple[HttpTracker | None, aiohttp.TraceConfig | None, bool]:
    """The tracker that will see the bot's requests, the TraceConfig this call put hooks into
    (None when they were there already, or could not be added), and whether this call created
    that TraceConfig."""
    http = bot.http
    trace: aiohttp.TraceConfig | None = http.http_trace
    if trace is not None:
        found = HttpTracker.of(trace)
        if found is not None:
            found.window = window
            return found, None, False
    if http.token is None:  # not logged in: discord.py reads http_trace when it creates its session
        tracker = HttpTracker(recorder, window=window)
        if trace is None:
            trace = http.http_trace = tracker.trace_config()
            return tracker, trace, True
        try:
            tracker.attach(trace)
        except RuntimeError:
            pass
        else:
            return tracker, trace, False
    _log.warning(
        "Vigil cannot trace this bot's HTTP requests (api_rate_limit_usage, "
        "api_rate_limit_hits): discord.py created its HTTP session at login, before "
        "instrument() ran. Construct the bot with http_trace=vigil_trace_config(), or call "
        "instrument() before bot.start()."
    )
    return None, None, False


def _loop_stale_after(loop: tasks.Loop[Any], default: float) -> float:
    if loop.time is None:
        period = (loop.seconds or 0.0) + 60.0 * (loop.minutes or 0.0) + 3600.0 * (loop.hours or 0.0)
    else:
        seconds = sorted(t.hour * 3600 + t.minute * 60 + t.second for t in loop.time)
        gaps = [b - a for a, b in itertools.pairwise(seconds)]
        gaps.append(86400 - seconds[-1] + seconds[0])
        period = float(max(gaps))
    return max(default, 2.0 * period) if math.isfinite(period) else default
