"""Who the client is behind a reverse proxy: ``X-Forwarded-For`` and ``X-Forwarded-Proto``,
believed only from the proxies ``VIGIL_TRUSTED_PROXIES`` names.

Anyone can send those headers, so they count only when the connection itself comes from a
trusted proxy. The client is then the nearest address in ``X-Forwarded-For`` (read from the
right, the proxies' end) that is not itself a trusted proxy, and the scheme is the nearest
proxy's ``X-Forwarded-Proto``. Everything that keys on the client (the sign-in limits) and
everything that depends on the scheme (the session cookie's ``Secure``) then sees the real
client rather than the proxy. uvicorn's own proxy handling is off (``server_for``), so a
local process cannot claim another address unless 127.0.0.1 is named here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """ASGI middleware rewriting ``scope["client"]`` and ``scope["scheme"]`` of requests that
    come through a trusted proxy."""

    def __init__(self, app: ASGIApp, *, networks: Iterable[str]) -> None:
        self.app = app
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(network, strict=False) for network in networks
        )

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            peer = scope.get("client")
            if peer is not None and self.trusts(peer[0]):
                scope = self._through_proxy(scope)
        await self.app(scope, receive, send)

    def _through_proxy(self, scope: Scope) -> Scope:
        forwarded: list[str] = []
        proto: str | None = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded += [part.strip() for part in value.decode("latin-1").split(",")]
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1").split(",")[-1].strip().lower()
        changed: dict[str, Any] = {}
        client = self._client(forwarded)
        if client is not None:
            changed["client"] = (client, 0)
        if proto in ("http", "https"):
            changed["scheme"] = proto
        return {**scope, **changed} if changed else scope

    def _client(self, forwarded: list[str]) -> str | None:
        hops = [_host(part) for part in forwarded if part]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else None  # every hop a trusted proxy: the farthest one


def _host(value: str) -> str:
    """An address from ``X-Forwarded-For``: ``203.0.113.7``, ``203.0.113.7:4711``,
    ``2001:db8::1`` or ``[2001:db8::1]:4711``."""
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") == 1:
        return value.partition(":")[0]
    return value
