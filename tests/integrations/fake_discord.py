"""A local stand-in for Discord's REST API on 127.0.0.1, answering as Discord does: JSON bodies
with ``Content-Type: application/json``, ``X-RateLimit-*`` headers on every response, and,
when a test asks for it, 429 responses with ``Retry-After`` and a ``retry_after`` body.

Each bucket (method and route) allows ``limit`` requests: the n-th request to a bucket is told
``X-RateLimit-Remaining: limit - n`` (never below 1, so discord.py never has to wait for a
reset), which makes the expected usage of every bucket easy to state in a test.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections import Counter
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

BOT_USER = {
    "id": "1000",
    "username": "vigil-test-bot",
    "discriminator": "0",
    "global_name": None,
    "avatar": None,
    "bot": True,
}
HUMAN = {
    "id": "3000",
    "username": "someone",
    "discriminator": "0",
    "global_name": None,
    "avatar": None,
}
APPLICATION = {
    "id": "2000",
    "name": "vigil-test",
    "description": "",
    "icon": None,
    "bot_public": True,
    "bot_require_code_grant": False,
    "owner": HUMAN,
    "verify_key": "0" * 64,
    "flags": 0,
}
_ID = re.compile(r"/\d+")


@dataclass
class Throttle:
    retry_after: float
    is_global: bool


class FakeDiscordAPI:
    """``async with FakeDiscordAPI() as api``: ``api.base`` is the ``/api/v10`` URL to point
    ``discord.http.Route.BASE`` (or any client) at. With ``token`` set, a request with any
    other bot token is refused with 401, as Discord refuses a wrong token."""

    def __init__(self, *, limit: int = 10, token: str | None = None) -> None:
        self.limit = limit
        self.token = token
        self.requests: list[tuple[str, str]] = []
        self._counts: Counter[str] = Counter()
        self._throttles: list[Throttle] = []
        self._ids = itertools.count(900_000)
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def __aenter__(self) -> FakeDiscordAPI:
        app = web.Application()
        app.router.add_route("*", "/api/v10/{path:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base = f"http://{host}:{port}/api/v10"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def rate_limit_next(self, *, retry_after: float = 0.01, is_global: bool = False) -> None:
        """The next request gets a 429 (then the one after is served normally)."""
        self._throttles.append(Throttle(retry_after, is_global))

    def bucket(self, method: str, path: str) -> str:
        return f"{method} {_ID.sub('/:id', path)}"

    def usage(self, method: str, path: str) -> float:
        """The usage (%) the last response of this bucket announced."""
        remaining = max(self.limit - self._counts[self.bucket(method, path)], 1)
        return (self.limit - remaining) / self.limit * 100

    async def _handle(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"]
        self.requests.append((request.method, path))
        if self.token is not None and request.headers.get("Authorization") != f"Bot {self.token}":
            return self._json({"message": "401: Unauthorized", "code": 0}, status=401)
        bucket = self.bucket(request.method, path)
        if self._throttles:
            throttle = self._throttles.pop(0)
            body = {
                "message": "You are being rate limited.",
                "retry_after": throttle.retry_after,
                "global": throttle.is_global,
            }
            headers = {
                "Retry-After": str(throttle.retry_after),
                "Via": "1.1 google",  # discord.py reads a 429 without it as a Cloudflare ban
                "X-RateLimit-Scope": "global" if throttle.is_global else "user",
            }
            if not throttle.is_global:
                headers |= self._limit_headers(bucket, remaining=0)
            return self._json(body, status=429, headers=headers)
        self._counts[bucket] += 1
        remaining = max(self.limit - self._counts[bucket], 1)
        return self._json(
            await self._answer(request, path), headers=self._limit_headers(bucket, remaining)
        )

    async def _answer(self, request: web.Request, path: str) -> Any:
        if path == "/users/@me":
            return BOT_USER
        if path == "/oauth2/applications/@me":
            return APPLICATION
        if path.startswith("/users/"):
            return HUMAN | {"id": path.rsplit("/", 1)[1]}
        if path.startswith("/channels/") and path.endswith("/messages"):
            body = await request.json()
            return self._message(path.split("/")[2], body.get("content", ""), BOT_USER)
        if path.startswith("/interactions/") and path.endswith("/callback"):
            return {"interaction": {"id": path.split("/")[2], "type": 2}}
        return {}

    def _message(self, channel_id: str, content: str, author: dict[str, Any]) -> dict[str, Any]:
        return message_payload(str(next(self._ids)), channel_id, content, author)

    def _limit_headers(self, bucket: str, remaining: int) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset-After": "0.05",
            "X-RateLimit-Bucket": hashlib.sha1(bucket.encode()).hexdigest()[:16],
        }

    @staticmethod
    def _json(
        body: Any, *, status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        # Exactly "application/json": discord.py compares the header, charset and all.
        return web.Response(
            body=json.dumps(body).encode(),
            status=status,
            headers={**(headers or {}), "Content-Type": "application/json"},
        )


def message_payload(
    message_id: str, channel_id: str, content: str, author: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": message_id,
        "channel_id": channel_id,
        "author": author,
        "content": content,
        "timestamp": "2026-11-27T10:00:00+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
    }
