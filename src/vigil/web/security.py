"""Credentials, without HTTP: password hashes, API tokens, signed session cookies, CSRF tokens.

- Passwords: argon2id (argon2-cffi), verified in a worker thread, a few at a time.
- API tokens: ``vgl_`` + 256 random bits, shown once; the database keeps their SHA-256 (a
  hash of a high-entropy secret needs no salt or stretching, and is one indexed lookup).
- Sessions: ``payload.signature`` with HMAC-SHA256 over the payload; nothing is kept on the
  server but the sessions signed out before they expire (in the database, until then).
- Device cookies: signed ``[user, browser id, issued]``, set at a successful sign-in, so the
  sign-in limits can tell a browser that knew the password before (``ratelimit``).
- CSRF: an HMAC of the session id, so it is bound to one session and needs no storage.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
from collections import deque
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from starlette.concurrency import run_in_threadpool

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "vgl_"
MAX_TOKEN_LENGTH = 200
MAX_PASSWORD_CHECKS = 2  # argon2 takes 64 MiB and a core each: a login flood must not OOM
MAX_WAITING_CHECKS = 16  # sign-ins from unknown clients queued for a check, at most
DEVICE_SECONDS = 90 * 86_400  # how long a browser stays known to a user after a sign-in


class PasswordChecksBusyError(Exception):
    """Too many sign-ins are already waiting for a password check: try again shortly."""


class Passwords:
    """argon2id hashing and checking. Checks run in threads, ``slots`` at once; waiting checks
    are served urgent first (clients known to the user), and at most ``max_waiting`` others
    wait (beyond, ``PasswordChecksBusyError``), so a flood of guesses neither queues without
    bound nor holds up a known user's sign-in."""

    def __init__(
        self,
        hasher: PasswordHasher | None = None,
        *,
        slots: int = MAX_PASSWORD_CHECKS,
        max_waiting: int = MAX_WAITING_CHECKS,
    ) -> None:
        self.hasher = hasher or PasswordHasher()
        self.slots = slots
        self.max_waiting = max_waiting
        self._running = 0
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._others: deque[asyncio.Future[None]] = deque()
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    @property
    def waiting(self) -> int:
        return len(self._urgent) + len(self._others)

    async def check(
        self, password_hash: str | None, password: str, *, urgent: bool = False
    ) -> bool:
        """Whether ``password`` matches. ``None`` (no such user) costs as much as a real
        check and fails, so response times do not reveal which names exist."""
        await self._acquire(urgent=urgent)
        try:
            if password_hash is None:
                if self._dummy is None:
                    self._dummy = await run_in_threadpool(self.hash, secrets.token_hex(16))
                await run_in_threadpool(self._verify, self._dummy, password)
                return False
            return await run_in_threadpool(self._verify, password_hash, password)
        finally:
            self._release()

    async def _acquire(self, *, urgent: bool) -> None:
        if self._running < self.slots and not self.waiting:
            self._running += 1
            return
        queue = self._urgent if urgent else self._others
        if not urgent and len(queue) >= self.max_waiting:
            raise PasswordChecksBusyError("too many sign-ins at once")
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(turn)
        try:
            await turn  # the slot is handed over by _release
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._release()  # handed a slot while being cancelled: pass it on
            else:
                queue.remove(turn)
            raise

    def _release(self) -> None:
        for queue in (self._urgent, self._others):
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)
                    return
        self._running -= 1

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def new_token() -> str:
    """A fresh API token secret: shown once, never stored."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_token(secret: str) -> bool:
    return secret.startswith(TOKEN_PREFIX) and 20 < len(secret) <= MAX_TOKEN_LENGTH


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    """What a session cookie says: who, which session, until when, and a fingerprint of the
    password hash at sign-in (changing the password ends every session)."""

    name: str
    session_id: str
    issued_at: int
    expires_at: int
    password_mark: str


class Keys:
    """Everything signed with the server's secret, each purpose under its own label."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the secret key must be at least 16 bytes")
        self._secret = secret

    @classmethod
    def from_setting(cls, secret: str | None) -> Keys:
        if secret:
            return cls(secret.encode())
        logger.warning(
            "VIGIL_SECRET_KEY is not set: sessions are signed with a random key, so they end "
            "when this process stops and other instances do not accept them"
        )
        return cls(secrets.token_bytes(32))

    def _mac(self, label: str, message: str) -> str:
        digest = hmac.new(self._secret, f"{label}\0{message}".encode(), hashlib.sha256)
        return _b64(digest.digest())

    def password_mark(self, password_hash: str) -> str:
        return self._mac("vigil-password", password_hash)[:22]

    def csrf_token(self, session_id: str) -> str:
        return self._mac("vigil-csrf", session_id)

    def check_csrf(self, session_id: str, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.csrf_token(session_id), token)

    def device_cookie(self, name: str, device: str | None, *, now: float) -> str:
        """A cookie saying this browser signed in as ``name`` (``device`` keeps its id)."""
        fields = [name.casefold(), device or secrets.token_urlsafe(12), int(now)]
        payload = _b64(json.dumps(fields, separators=(",", ":")).encode())
        return f"{payload}.{self._mac('vigil-device', payload)}"

    def device_of(self, cookie: str | None, name: str, *, now: float) -> str | None:
        """The id of the browser whose device cookie this is, if it is genuine, recent
        (``DEVICE_SECONDS``) and for ``name``; else ``None``."""
        if not cookie:
            return None
        payload, _, signature = cookie.partition(".")
        if not payload or not hmac.compare_digest(self._mac("vigil-device", payload), signature):
            return None
        try:
            owner, device, issued_at = json.loads(_unb64(payload))
            issued = int(issued_at)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            return None
        if owner != name.casefold() or not 0 <= now - issued < DEVICE_SECONDS:
            return None
        return str(device)

    def sign(self, session: Session) -> str:
        payload = _b64(
            json.dumps(
                [
                    session.name,
                    session.session_id,
                    session.issued_at,
                    session.expires_at,
                    session.password_mark,
                ],
                separators=(",", ":"),
            ).encode()
        )
        return f"{payload}.{self._mac('vigil-session', payload)}"

    def open(self, cookie: str, *, now: float) -> Session | None:
        """The session a cookie carries, or ``None`` if it is forged, damaged or expired."""
        payload, _, signature = cookie.partition(".")
        if not payload or not hmac.compare_digest(self._mac("vigil-session", payload), signature):
            return None
        try:
            name, session_id, issued_at, expires_at, mark = json.loads(_unb64(payload))
            session = Session(str(name), str(session_id), int(issued_at), int(expires_at), mark)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            return None
        return session if session.expires_at > now else None
