"""Outgoing HTTP: request latency, 429 responses and rate-limit bucket usage, through aiohttp
trace hooks (``aiohttp.TraceConfig``), which any aiohttp session accepts and discord.py's
HTTP client takes as ``http_trace=``.

Bucket usage follows Discord's headers: a response carrying ``X-RateLimit-Limit`` and
``X-RateLimit-Remaining`` says its bucket has spent ``(limit - remaining) / limit`` of its
allowance. Other APIs that send the same headers (GitHub, many gateways) work unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from vigil.metrics.recorder import Recorder
from vigil.metrics.source import DEFAULT_WINDOW, Reading

if TYPE_CHECKING:
    import aiohttp

LATENCY = "api_request_latency"
USAGE = "api_bucket_usage"
HITS = "api_429"
ERRORS = "api_request_errors"
HITS_WINDOW = 3600.0
_STARTED = "vigil_request_started"


class HttpTracker:
    """Produces ``api_rate_limit_usage`` (%: the most used bucket's share spent, at its peak in
    the last ``window`` seconds), ``api_rate_limit_hits`` (429 responses in the last hour) and
    ``api_p95_latency`` (ms). Usage and latency are no data without responses in the window;
    hits are no data until the tracker has seen its first response, since until then it may
    simply not be attached.

    Samples go to ``recorder``: ``api_request_latency`` (ms), ``api_bucket_usage`` (%),
    ``api_429`` and ``api_request_errors`` (requests that got no response).
    """

    name = "http"

    def __init__(
        self,
        recorder: Recorder | None = None,
        *,
        window: float = DEFAULT_WINDOW,
        hits_window: float = HITS_WINDOW,
    ) -> None:
        self.recorder = recorder or Recorder()
        self.window = window
        self.hits_window = hits_window
        self.responses = 0

    def trace_config(self) -> aiohttp.TraceConfig:
        """A new ``TraceConfig`` reporting to this tracker: pass it as ``trace_configs=[...]``
        to an ``aiohttp.ClientSession``, or as ``http_trace=`` to a discord.py client."""
        import aiohttp

        trace = aiohttp.TraceConfig()
        self.attach(trace)
        return trace

    def attach(self, trace: aiohttp.TraceConfig) -> None:
        """Add this tracker's hooks to an existing ``TraceConfig`` (yours keep working). It must
        not be in use yet: a session freezes its trace configs when it is created."""
        if self._on_request_end in trace.on_request_end:
            return
        if trace.on_request_end.frozen:
            raise RuntimeError(
                "this TraceConfig already belongs to an aiohttp session and cannot take more "
                "hooks; attach the tracker before the session is created"
            )
        trace.on_request_start.append(self._on_request_start)
        trace.on_request_end.append(self._on_request_end)
        trace.on_request_exception.append(self._on_request_exception)

    def detach(self, trace: aiohttp.TraceConfig) -> None:
        """Take this tracker's hooks out of ``trace`` again, unless a session froze it."""
        if trace.on_request_end.frozen:
            raise RuntimeError("this TraceConfig belongs to an aiohttp session: it keeps its hooks")
        for signal, hook in (
            (trace.on_request_start, self._on_request_start),
            (trace.on_request_end, self._on_request_end),
            (trace.on_request_exception, self._on_request_exception),
        ):
            while hook in signal:
                signal.remove(hook)

    @staticmethod
    def of(trace: aiohttp.TraceConfig) -> HttpTracker | None:
        """The tracker whose hooks ``trace`` carries, if any."""
        for hook in trace.on_request_end:
            owner = getattr(hook, "__self__", None)
            if isinstance(owner, HttpTracker):
                return owner
        return None

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Account for one response: its status and headers. The aiohttp hooks call this; a
        client without trace hooks (httpx event hooks, say) can call it directly."""
        self.responses += 1
        record = self.recorder.record
        if status == 429:
            record(HITS, 1.0)
        usage = _bucket_usage(headers)
        if usage is not None:
            record(USAGE, usage)

    async def read(self) -> Reading:
        usage = self.recorder.window(USAGE, self.window)
        latency = self.recorder.window(LATENCY, self.window)
        hits = self.recorder.window(HITS, self.hits_window)
        return {
            "api_rate_limit_usage": usage.max,
            "api_rate_limit_hits": float(hits.count) if self.responses else None,
            "api_p95_latency": latency.p95,
        }

    async def _on_request_start(self, session: Any, context: SimpleNamespace, params: Any) -> None:
        try:
            setattr(context, _STARTED, self.recorder.clock())
        except AttributeError:  # a custom trace_config_ctx_factory without attributes
            pass

    async def _on_request_end(self, session: Any, context: SimpleNamespace, params: Any) -> None:
        started = getattr(context, _STARTED, None)
        if started is not None:
            self.recorder.record(LATENCY, (self.recorder.clock() - started) * 1000.0)
        response = params.response
        self.observe(response.status, response.headers)

    async def _on_request_exception(
        self, session: Any, context: SimpleNamespace, params: Any
    ) -> None:
        self.recorder.record(ERRORS, 1.0)


def _bucket_usage(headers: Mapping[str, str]) -> float | None:
    limit_text = _header(headers, "X-RateLimit-Limit")
    remaining_text = _header(headers, "X-RateLimit-Remaining")
    if limit_text is None or remaining_text is None:
        return None
    try:
        limit, remaining = float(limit_text), float(remaining_text)
    except ValueError:
        return None
    if not (math.isfinite(limit) and math.isfinite(remaining) and limit > 0):
        return None
    return min(max((limit - remaining) / limit * 100.0, 0.0), 100.0)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # a plain dict is case-sensitive; HTTP header names are not
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return candidate
    return value
