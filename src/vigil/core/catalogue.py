"""The default rules (DESIGN §2): what a Discord bot operator wants watched on day one."""

from __future__ import annotations

from vigil.core.rules import Rule

DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(
        metric="gateway_latency",
        unit="ms",
        warning=100,
        critical=200,
        description="Discord gateway heartbeat latency (discord.py Client.latency).",
    ),
    Rule(
        metric="command_p95_latency",
        display_name="Command p95 Latency",
        unit="ms",
        warning=300,
        critical=500,
        description="95th percentile of prefix and application command durations.",
    ),
    Rule(
        metric="error_rate",
        unit="%",
        warning=1,
        critical=5,
        description="Failed commands as a percentage of all commands in the window.",
    ),
    Rule(
        metric="memory_usage",
        unit="MB",
        warning=400,
        critical=480,
        description="Resident memory of the process (RSS).",
    ),
    Rule(
        metric="api_rate_limit_usage",
        display_name="API Rate Limit Usage",
        unit="%",
        warning=85,
        critical=95,
        description="Share of the most used Discord rate-limit bucket already spent "
        "(from X-RateLimit-Remaining / X-RateLimit-Limit).",
    ),
    Rule(
        metric="api_rate_limit_hits",
        display_name="API Rate Limit Hits",
        unit="count/h",
        warning=1,
        critical=10,
        description="HTTP 429 responses from Discord in the last hour.",
    ),
    Rule(
        metric="database_query_time",
        unit="ms",
        warning=50,
        critical=100,
        description="Mean database query time in the window.",
    ),
    Rule(
        metric="event_loop_lag",
        unit="ms",
        warning=100,
        critical=500,
        description="How late the asyncio event loop runs a scheduled callback.",
    ),
    Rule(
        metric="bot_disconnected",
        unit="event",
        critical=1,
        description="1 while the gateway connection is down, else 0.",
    ),
    Rule(
        metric="service_failure",
        unit="event",
        critical=1,
        description="Background tasks in error or with a stale heartbeat.",
    ),
)
