"""A local stand-in for Discord on 127.0.0.1: its REST API and its gateway, which the real
discord.py client connects to (point ``discord.http.Route.BASE`` at ``api.base``; the gateway's
address comes from ``GET /gateway/bot``, as from Discord).

REST answers as Discord does: JSON bodies with ``Content-Type: application/json``,
``X-RateLimit-*`` headers on every response, and, when a test asks for it, 429 responses with
``Retry-After`` and a ``retry_after`` body. Messages are kept per channel (created, edited,
deleted, listed; a repeated ``nonce`` with ``enforce_nonce`` answers with the first message),
interaction answers are recorded, and application commands can be registered.

The gateway says HELLO, answers IDENTIFY with READY and one guild (GUILD_CREATE), RESUME with
RESUMED, and heartbeats with their ACK; a test sends events to the clients (``dispatch``,
``press`` for INTERACTION_CREATE) and can drop their connections.

Each bucket (method and route) allows ``limit`` requests: the n-th request to a bucket is told
``X-RateLimit-Remaining: limit - n`` (never below 1, so discord.py never has to wait for a
reset), which makes the expected usage of every bucket easy to state in a test.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import WSMsgType, web

from .teardown import ended

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

GUILD_ID = "5000"
OPS_CHANNEL = "6000"
ADMIN_ROLE = "5001"
VIEWER_ROLE = "5002"
ADMIN = {
    "id": "3001",
    "username": "alice",
    "discriminator": "0",
    "global_name": "Alice",
    "avatar": None,
}
SECOND_ADMIN = {
    "id": "3004",
    "username": "bob",
    "discriminator": "0",
    "global_name": "Bob",
    "avatar": None,
}
VIEWER = {
    "id": "3002",
    "username": "victor",
    "discriminator": "0",
    "global_name": None,
    "avatar": None,
}
STRANGER = {
    "id": "3003",
    "username": "mallory",
    "discriminator": "0",
    "global_name": None,
    "avatar": None,
}


def _role(role_id: str, name: str, position: int) -> dict[str, Any]:
    return {
        "id": role_id,
        "name": name,
        "color": 0,
        "hoist": False,
        "position": position,
        "permissions": "0",
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


GUILD = {
    "id": GUILD_ID,
    "name": "ops guild",
    "icon": None,
    "owner_id": HUMAN["id"],
    "unavailable": False,
    "member_count": 5,
    "large": False,
    "roles": [
        _role(GUILD_ID, "@everyone", 0),
        _role(ADMIN_ROLE, "oncall", 2),
        _role(VIEWER_ROLE, "watcher", 1),
    ],
    "channels": [
        {
            "id": OPS_CHANNEL,
            "type": 0,
            "name": "ops",
            "position": 0,
            "permission_overwrites": [],
            "guild_id": GUILD_ID,
        },
    ],
    "members": [],
    "emojis": [],
    "stickers": [],
    "features": [],
    "threads": [],
    "voice_states": [],
    "presences": [],
    "stage_instances": [],
    "guild_scheduled_events": [],
    "soundboard_sounds": [],
    "premium_tier": 0,
    "preferred_locale": "en-US",
    "verification_level": 0,
    "default_message_notifications": 0,
    "explicit_content_filter": 0,
    "mfa_level": 0,
    "nsfw_level": 0,
    "system_channel_flags": 0,
    "joined_at": "2026-01-01T00:00:00+00:00",
}


@dataclass
class Throttle:
    retry_after: float
    is_global: bool


@dataclass
class Reply:
    """An answer other than 200 with a JSON body."""

    body: Any
    status: int = 200


@dataclass(frozen=True)
class Callback:
    """One answer to an interaction, as the bot sent it."""

    interaction_id: str
    token: str
    type: int  # 4 message, 5 deferred, 6 deferred update, 7 update message, 8 choices, 9 modal
    data: dict[str, Any]
    at: float = field(default_factory=time.monotonic)  # when it arrived (CLOCK_MONOTONIC)

    @property
    def ephemeral(self) -> bool:
        return bool((self.data.get("flags") or 0) & 64)

    @property
    def text(self) -> str:
        """The content and every embed's title, description and fields, for assertions."""
        parts = [self.data.get("content") or ""]
        for embed in self.data.get("embeds") or []:
            parts += [embed.get("title") or "", embed.get("description") or ""]
            parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields") or []]
            parts.append((embed.get("footer") or {}).get("text") or "")
        return "\n".join(p for p in parts if p)


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
        self.gateway_url = ""
        self.guild: dict[str, Any] = dict(GUILD)
        self.channels: dict[str, list[dict[str, Any]]] = {}
        self.callbacks: list[Callback] = []
        self.followups: list[tuple[str, dict[str, Any]]] = []
        self.commands: dict[str | None, list[dict[str, Any]]] = {}
        # When set, registering commands waits for it (``registering`` counts those waiting).
        self.hold_registration: asyncio.Event | None = None
        self.registering = 0
        self.sockets: list[web.WebSocketResponse] = []
        self.refuse_messages = False  # refuse to create or edit messages (403)
        self.refused = 0
        self.identified = 0
        self.resumed = 0
        self.changes = 0
        self.created_at: dict[str, float] = {}  # message id -> when it was posted (monotonic)
        self._change = asyncio.Condition()
        self._sequence = 0
        self._interactions: dict[str, dict[str, Any]] = {}
        self._originals: dict[str, dict[str, Any]] = {}

    async def __aenter__(self) -> FakeDiscordAPI:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{path:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base = f"http://{host}:{port}/api/v10"
        self.gateway_url = f"ws://{host}:{port}/gateway"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await ended(self._stop(), "stopping the fake Discord")

    async def _stop(self) -> None:
        for socket in list(self.sockets):
            await socket.close()
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
        # Interaction answers go by the interaction's own token, as Discord's webhooks do.
        by_interaction = path.startswith(("/interactions/", "/webhooks/"))
        if (
            self.token is not None
            and not by_interaction
            and request.headers.get("Authorization") != f"Bot {self.token}"
        ):
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
        answer = await self._answer(request, path)
        reply = answer if isinstance(answer, Reply) else Reply(answer)
        headers = self._limit_headers(bucket, remaining)
        if reply.status == 204:
            return web.Response(status=204, headers=headers)
        return self._json(reply.body, status=reply.status, headers=headers)

    async def _answer(self, request: web.Request, path: str) -> Any:
        if path == "/users/@me":
            return BOT_USER
        if path == "/oauth2/applications/@me":
            return APPLICATION
        if path == "/gateway/bot":
            return {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 1000,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            }
        if path == "/gateway":
            return {"url": self.gateway_url}
        if path.startswith("/users/"):
            return HUMAN | {"id": path.rsplit("/", 1)[1]}
        parts = path.strip("/").split("/")
        if parts[0] == "channels" and len(parts) >= 3 and parts[2] == "messages":
            return await self._messages(request, parts[1], parts[3] if len(parts) > 3 else None)
        if parts[0] == "interactions" and parts[-1] == "callback":
            return await self._callback(request, parts[1], parts[2])
        if parts[0] == "webhooks" and len(parts) >= 3:
            return await self._webhook(request, parts[2], parts[3:])
        if parts[0] == "applications" and parts[-1] == "commands":
            return await self._register(request, parts[3] if len(parts) == 5 else None)
        return {}

    # Messages: what the channel shows.

    async def _messages(self, request: web.Request, channel_id: str, message_id: str | None) -> Any:
        if self.refuse_messages and request.method != "GET":
            self.refused += 1
            return Reply({"message": "Missing Access", "code": 50001}, status=403)
        channel = self.channels.setdefault(channel_id, [])
        if message_id is None and request.method == "POST":
            body = await _body(request)
            nonce = body.get("nonce")
            if nonce is not None and body.get("enforce_nonce"):
                for existing in channel:
                    if existing.get("nonce") == nonce:
                        return existing  # Discord answers a repeated nonce with the first message
            message = self._message(channel_id, body.get("content") or "", BOT_USER)
            message.update(
                embeds=body.get("embeds") or [],
                components=body.get("components") or [],
                nonce=nonce,
                flags=body.get("flags", 0),
            )
            self.created_at[message["id"]] = time.monotonic()
            channel.append(message)
            self._changed()
            return message
        if message_id is None and request.method == "GET":
            limit = int(request.query.get("limit", "50"))
            after = int(request.query.get("after", "0"))
            before = int(request.query.get("before", str(2**63)))
            listed = [m for m in channel if after < int(m["id"]) < before]
            return sorted(listed, key=lambda m: -int(m["id"]))[:limit]
        found = next((m for m in channel if m["id"] == message_id), None)
        if found is None:
            return Reply({"message": "Unknown Message", "code": 10008}, status=404)
        if request.method == "PATCH":
            body = await _body(request)
            for key in ("content", "embeds", "components", "flags"):
                if key in body:
                    found[key] = body[key] if body[key] is not None else found[key]
            found["edited_timestamp"] = "2026-11-27T10:00:01+00:00"
            found["edits"] = found.get("edits", 0) + 1
            self._changed()
            return found
        if request.method == "DELETE":
            channel.remove(found)
            self._changed()
            return Reply(None, status=204)
        return found

    def messages_in(self, channel_id: int | str) -> list[dict[str, Any]]:
        return list(self.channels.get(str(channel_id), []))

    # Interactions: their answers, and what they lead to.

    async def _callback(self, request: web.Request, interaction_id: str, token: str) -> Any:
        body = await _body(request)
        kind = int(body["type"])
        data = body.get("data") or {}
        answer: dict[str, Any] = {
            "id": interaction_id,
            "type": kind,
            "response_message_loading": kind == 5,
            "response_message_ephemeral": bool((data.get("flags") or 0) & 64),
        }
        reply: dict[str, Any] = {"interaction": answer}
        origin = self._interactions.get(interaction_id, {})
        if kind == 4:
            message = self._message(
                origin.get("channel_id", "0"), data.get("content") or "", BOT_USER
            )
            message.update(
                embeds=data.get("embeds") or [],
                flags=data.get("flags") or 0,
                components=data.get("components") or [],
            )
            self._originals[token] = message
            answer["response_message_id"] = message["id"]
            reply["resource"] = {"type": kind, "message": message}
        elif kind == 7 and "message" in origin:
            channel_id = origin["message"]["channel_id"]
            target = next(
                (
                    m
                    for m in self.channels.get(channel_id, [])
                    if m["id"] == origin["message"]["id"]
                ),
                None,
            )
            if target is not None:
                for key in ("content", "embeds", "components"):
                    if key in data:
                        target[key] = data[key]
                reply["resource"] = {"type": kind, "message": target}
        self.callbacks.append(Callback(interaction_id, token, kind, data))
        self._changed()
        return reply

    async def _webhook(self, request: web.Request, token: str, rest: list[str]) -> Any:
        body = await _body(request)
        if request.method == "POST":  # a follow-up message
            message = self._message("0", body.get("content") or "", BOT_USER)
            message.update(embeds=body.get("embeds") or [], flags=body.get("flags") or 0)
            self.followups.append((token, message))
            self._changed()
            return message
        original = self._originals.setdefault(token, self._message("0", "", BOT_USER))
        if request.method == "PATCH":
            for key in ("content", "embeds", "components"):
                if key in body:
                    original[key] = body[key]
            self._changed()
        return original

    async def _register(self, request: web.Request, guild_id: str | None) -> Any:
        if request.method != "PUT":
            return self.commands.get(guild_id, [])
        if self.hold_registration is not None:
            self.registering += 1
            await self.hold_registration.wait()
        registered = [
            {
                "id": str(next(self._ids)),
                "application_id": APPLICATION["id"],
                "version": "1",
                "type": 1,
                "default_member_permissions": None,
                "dm_permission": True,
                "nsfw": False,
                **command,
                **({"guild_id": guild_id} if guild_id else {}),
            }
            for command in await request.json()
        ]
        self.commands[guild_id] = registered
        self._changed()
        return registered

    def answers_to(self, interaction_id: str) -> list[Callback]:
        return [c for c in self.callbacks if c.interaction_id == interaction_id]

    def _changed(self) -> None:
        self.changes += 1
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._change:
            self._change.notify_all()

    async def wait_for(self, condition: Callable[[], bool], *, deadline: float = 60.0) -> None:
        """Until ``condition()`` holds, re-checked after each change (a message created or
        edited, an interaction answered, commands registered)."""
        async with asyncio.timeout(deadline), self._change:
            await self._change.wait_for(condition)

    # The gateway: a websocket speaking just enough of Discord's protocol for discord.py.

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.sockets.append(socket)
        await socket.send_json({"op": 10, "d": {"heartbeat_interval": 41250}})
        try:
            async for frame in socket:
                if frame.type is not WSMsgType.TEXT:
                    continue
                payload = json.loads(frame.data)
                op = payload["op"]
                if op == 1:
                    await socket.send_json({"op": 11})
                elif op == 2:
                    self.identified += 1
                    await self._send(socket, "READY", self._ready())
                    await self._send(socket, "GUILD_CREATE", self.guild)
                elif op == 6:
                    self.resumed += 1
                    await self._send(socket, "RESUMED", {})
        finally:
            if socket in self.sockets:
                self.sockets.remove(socket)
        return socket

    def _ready(self) -> dict[str, Any]:
        return {
            "v": 10,
            "user": BOT_USER,
            "guilds": [{"id": GUILD_ID, "unavailable": True}],
            "session_id": f"session-{self.identified}",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": APPLICATION["id"], "flags": 0},
            "shard": [0, 1],
        }

    async def _send(self, socket: web.WebSocketResponse, event: str, data: Any) -> None:
        self._sequence += 1
        await socket.send_json({"op": 0, "t": event, "s": self._sequence, "d": data})

    @property
    def connected(self) -> int:
        return len(self.sockets)

    async def dispatch(self, event: str, data: Any) -> None:
        """Send a gateway event to every connected client."""
        for socket in list(self.sockets):
            await self._send(socket, event, data)

    async def drop_connections(self, code: int = 4000) -> None:
        """Close every gateway connection, as Discord does when it restarts a node: the
        client reconnects and resumes."""
        for socket in list(self.sockets):
            await socket.close(code=code)

    def interaction(
        self,
        kind: int,
        data: dict[str, Any],
        *,
        user: dict[str, Any],
        roles: list[str] = (),  # type: ignore[assignment]
        message: dict[str, Any] | None = None,
        channel_id: str = OPS_CHANNEL,
    ) -> dict[str, Any]:
        """An INTERACTION_CREATE payload from ``user`` (a member with ``roles``) in the guild."""
        interaction_id = str(next(self._ids))
        payload: dict[str, Any] = {
            "id": interaction_id,
            "application_id": APPLICATION["id"],
            "type": kind,
            "data": data,
            "guild_id": GUILD_ID,
            "channel_id": channel_id,
            "channel": {"id": channel_id, "type": 0, "guild_id": GUILD_ID, "name": "ops"},
            "member": {
                "user": user,
                "roles": list(roles),
                "joined_at": "2026-01-01T00:00:00+00:00",
                "deaf": False,
                "mute": False,
                "flags": 0,
                "permissions": "0",
            },
            "token": f"token-{interaction_id}",
            "version": 1,
            "locale": "en-US",
            "guild_locale": "en-US",
            "app_permissions": "0",
            "entitlements": [],
            "attachment_size_limit": 8 * 1024 * 1024,
            "authorizing_integration_owners": {"0": GUILD_ID},
            "context": 0,
        }
        if message is not None:
            payload["message"] = message
        self._interactions[interaction_id] = payload
        return payload

    async def press(self, interaction: dict[str, Any]) -> str:
        """Send an interaction over the gateway; returns its id."""
        await self.dispatch("INTERACTION_CREATE", interaction)
        return str(interaction["id"])

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
        "components": [],
        "pinned": False,
        "type": 0,
    }


async def _body(request: web.Request) -> dict[str, Any]:
    """A JSON body, or the ``payload_json`` part of a multipart one."""
    if not request.can_read_body:
        return {}
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        return dict(json.loads(str(form["payload_json"])))
    return dict(await request.json())
