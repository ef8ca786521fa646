"""Who is calling, and may they: sessions, tokens, roles and CSRF, as FastAPI dependencies.

The dashboard reuses all of it: ``principal_from(request)`` (who, or ``None``),
``require_viewer`` / ``require_admin`` (dependencies that raise 401/403), ``sign_in`` /
``sign_out`` (set or clear the session cookie) and ``Principal.csrf_token``.

Lookups are cached for ``cache_seconds`` (2 s by default), so a hot read costs no query for
its credentials; a revoked token, a removed or demoted user, or a changed password (which
ends every session of that user) take effect within that time. A token in use is looked up
again in the background during the second half of that time, and concurrent lookups of one
token share one query: under load, requests neither wait for the database nor all ask it at
once when the cached answer ages out.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from vigil.core import NotFoundError
from vigil.store import ApiToken, Role, User
from vigil.web.errors import CsrfError, ForbiddenError, NotAuthenticatedError, RateLimitedError
from vigil.web.ratelimit import SignInLimiter
from vigil.web.security import (
    DEVICE_SECONDS,
    Keys,
    PasswordChecksBusyError,
    Passwords,
    Session,
    looks_like_token,
    token_hash,
)

if TYPE_CHECKING:
    from vigil.runtime import Vigil
    from vigil.web.state import WebState

SESSION_COOKIE = "vigil_session"
DEVICE_COOKIE = "vigil_device"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
READ_ROLES = frozenset({Role.VIEWER, Role.ADMIN})
logger = logging.getLogger(__name__)

LAST_USED_PRECISION = timedelta(seconds=60)
MAX_CACHED = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: a user signed in by cookie, or an API token."""

    name: str
    role: Role
    kind: str  # "session" or "token"
    session_id: str | None = None
    csrf_token: str | None = field(default=None, repr=False)
    instance: str | None = None  # an ingest token bound to this instance name

    @property
    def can_read(self) -> bool:
        return self.role in READ_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True, slots=True)
class SignedIn:
    principal: Principal
    cookie: str
    expires_at: datetime
    device_cookie: str


def _retrieved(task: asyncio.Task[ApiToken]) -> None:
    """A background lookup's failure is its waiters' to report (a revoked token is 401), or,
    with none, the next request's: not an unretrieved-exception warning."""
    if not task.cancelled() and (error := task.exception()) is not None:
        if not isinstance(error, NotAuthenticatedError):
            logger.debug("a token lookup failed", exc_info=error)


class Authenticator:
    def __init__(
        self,
        vigil: Vigil,
        *,
        keys: Keys,
        passwords: Passwords,
        limiter: SignInLimiter,
        session_seconds: float,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.vigil = vigil
        self.keys = keys
        self.passwords = passwords
        self.limiter = limiter
        self.session_seconds = session_seconds
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._wall = wall
        self._tokens: dict[str, tuple[ApiToken, float]] = {}
        self._loading: dict[str, asyncio.Task[ApiToken]] = {}
        self._users: dict[str, tuple[User | None, float]] = {}
        self._ended: dict[str, tuple[bool, float]] = {}  # session id -> signed out?, until

    # -- tokens ----------------------------------------------------------------------------

    async def from_token(self, secret: str) -> Principal:
        if not looks_like_token(secret):
            raise NotAuthenticatedError("the token is malformed")
        digest = token_hash(secret)
        cached = self._tokens.get(digest)
        now = self._clock()
        if cached is not None and cached[1] > now:
            record = cached[0]
            if cached[1] - now < self.cache_seconds / 2 and digest not in self._loading:
                self._lookup(digest)  # in use: fresh again before it ages out
        else:
            record = await asyncio.shield(self._loading.get(digest) or self._lookup(digest))
        return Principal(
            name=record.name,
            role=Role(record.role),
            kind="token",
            instance=record.instance,
        )

    def _lookup(self, digest: str) -> asyncio.Task[ApiToken]:
        """One lookup of ``digest``, shared by whoever asks until it is done; it carries on
        when a request waiting for it goes away."""
        task = asyncio.get_running_loop().create_task(self._load_token(digest))
        self._loading[digest] = task
        task.add_done_callback(lambda _: self._loading.pop(digest, None))
        task.add_done_callback(_retrieved)
        return task

    async def aclose(self) -> None:
        """Wait for the token lookups under way, those a request started in the background
        above all: at shutdown, before the store closes, none may be left holding one of its
        connections."""
        while self._loading:
            await asyncio.wait(list(self._loading.values()))

    async def _load_token(self, digest: str) -> ApiToken:
        store = self.vigil.store
        try:
            record = await store.token_by_hash(digest)
            now = self.vigil.clock()
            # Last use is recorded to the minute: a write per request would cost more than
            # the request itself.
            if record.last_used_at is None or now - record.last_used_at >= LAST_USED_PRECISION:
                record = await store.token_by_hash(digest, now=now)
        except NotFoundError:
            self._tokens.pop(digest, None)
            raise NotAuthenticatedError("the token is unknown or revoked") from None
        if len(self._tokens) >= MAX_CACHED:
            self._tokens.clear()
        self._tokens[digest] = (record, self._clock() + self.cache_seconds)
        return record

    # -- sessions --------------------------------------------------------------------------

    async def from_cookie(self, cookie: str) -> Principal | None:
        """The signed-in user, or ``None`` for a forged, expired or ended session."""
        session = self.keys.open(cookie, now=self._wall())
        if session is None or await self._signed_out(session.session_id):
            return None
        user = await self._user(session.name)
        if user is None or self.keys.password_mark(user.password_hash) != session.password_mark:
            return None
        return self._principal(user, session)

    def _principal(self, user: User, session: Session) -> Principal:
        return Principal(
            name=user.name,
            role=user.role,
            kind="session",
            session_id=session.session_id,
            csrf_token=self.keys.csrf_token(session.session_id),
        )

    async def _signed_out(self, session_id: str) -> bool:
        """Whether the session was signed out, on any instance, before or after a restart:
        the database says (``Store.session_ended``), asked at most once per lookup-cache
        time per session."""
        cached = self._ended.get(session_id)
        if cached is not None and (cached[0] or cached[1] > self._clock()):
            return cached[0]
        ended = await self.vigil.store.session_ended(session_id)
        if len(self._ended) >= MAX_CACHED:
            self._ended.clear()  # only costs lookups: the database keeps every sign-out
        self._ended[session_id] = (ended, self._clock() + self.cache_seconds)
        return ended

    async def _user(self, name: str) -> User | None:
        cached = self._users.get(name)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        try:
            user: User | None = await self.vigil.store.get_user(name)
        except NotFoundError:
            user = None
        if len(self._users) >= MAX_CACHED:
            self._users.clear()
        self._users[name] = (user, self._clock() + self.cache_seconds)
        return user

    async def sign_in(
        self, name: str, password: str, *, address: str, device_cookie: str | None = None
    ) -> SignedIn:
        """Check a password and open a session. ``RateLimitedError`` while this attempt must
        wait (``vigil.web.ratelimit`` says when); ``NotAuthenticatedError`` for a wrong name or
        password (the same message for both). ``device_cookie``: the browser's, if any."""
        now = self._wall()
        device = self.keys.device_of(device_cookie, name, now=now)
        attempt = self.limiter.reserve(name, address, device=device)
        if attempt.wait > 0:
            raise RateLimitedError(
                f"too many failed sign-ins: try again in {math.ceil(attempt.wait)} s",
                retry_after=attempt.wait,
            )
        try:
            user: User | None = await self.vigil.store.get_user(name)
        except NotFoundError:
            user = None
        except BaseException:
            self.limiter.cancel(attempt)  # no password was checked
            raise
        try:
            password_hash = user.password_hash if user else None
            ok = await self.passwords.check(password_hash, password, urgent=attempt.known)
        except PasswordChecksBusyError:
            self.limiter.cancel(attempt)
            raise RateLimitedError(
                "too many sign-ins at once: try again in a moment", retry_after=1
            ) from None
        if user is None or not ok:
            raise NotAuthenticatedError("wrong user name or password")
        self.limiter.succeeded(attempt)
        if self.passwords.needs_rehash(user.password_hash):
            user = await self.vigil.store.update_user(
                user.name, password_hash=self.passwords.hash(password)
            )
        self._users[user.name] = (user, self._clock() + self.cache_seconds)
        issued = int(now)
        session = Session(
            name=user.name,
            session_id=secrets.token_urlsafe(18),
            issued_at=issued,
            expires_at=issued + int(self.session_seconds),
            password_mark=self.keys.password_mark(user.password_hash),
        )
        expires_at = datetime.fromtimestamp(session.expires_at, tz=UTC)
        return SignedIn(
            self._principal(user, session),
            self.keys.sign(session),
            expires_at,
            self.keys.device_cookie(user.name, device, now=now),
        )

    async def sign_out(self, cookie: str) -> None:
        """End the cookie's session for good: stored until it would have expired (then the
        retention cleanup deletes it), so it stays ended across restarts and instances."""
        session = self.keys.open(cookie, now=self._wall())
        if session is None:
            return
        await self.vigil.store.end_session(
            session.session_id,
            user_name=session.name,
            expires_at=datetime.fromtimestamp(session.expires_at, tz=UTC),
        )
        if len(self._ended) >= MAX_CACHED:
            self._ended.clear()
        self._ended[session.session_id] = (True, math.inf)


# -- request level: what routes and pages call -------------------------------------------------


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.vigil_web
    return state


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


async def principal_from(request: Request) -> Principal | None:
    """Who sent ``request``: an ``Authorization: Bearer`` token first, else the session
    cookie; ``None`` when neither. A bad token is an error (401), a bad cookie is ignored
    (the browser keeps stale cookies). Memoised on the request."""
    if hasattr(request.state, "vigil_principal"):
        known: Principal | None = request.state.vigil_principal
        return known
    principal = await _authenticate(
        web_state(request).auth,
        request.headers.get("authorization"),
        request.cookies.get(SESSION_COOKIE),
    )
    request.state.vigil_principal = principal
    return principal


async def _authenticate(
    auth: Authenticator, header: str | None, cookie: str | None
) -> Principal | None:
    if header is not None:
        scheme, _, secret = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise NotAuthenticatedError("send the token as 'Authorization: Bearer <token>'")
        return await auth.from_token(secret.strip())
    if cookie:
        return await auth.from_cookie(cookie)
    return None


def access_check(
    request: Request, roles: frozenset[Role] = READ_ROLES
) -> tuple[str | None, Callable[[], Awaitable[bool]]]:
    """The credential ``request`` was made with, and a check whether it still holds one of
    ``roles``: for what outlives the request (a live stream). A token revoked, a user removed
    or demoted, a password changed or a session signed out make it say no (within the
    lookup cache's few seconds)."""
    auth = web_state(request).auth
    header = request.headers.get("authorization")
    cookie = request.cookies.get(SESSION_COOKIE)

    async def check() -> bool:
        try:
            principal = await _authenticate(auth, header, cookie)
        except NotAuthenticatedError:
            return False
        return principal is not None and principal.role in roles

    return header if header is not None else cookie, check


def authorize(request: Request, principal: Principal | None, roles: frozenset[Role]) -> Principal:
    """401 without credentials, 403 for a role not in ``roles``, 403 for a change made with
    the session cookie but without its CSRF token."""
    if principal is None:
        raise NotAuthenticatedError("sign in, or send an API token")
    if principal.role not in roles:
        allowed = " or ".join(sorted(role.value for role in roles))
        raise ForbiddenError(
            f"this needs the {allowed} role; {principal.name!r} is {principal.role}"
        )
    if principal.kind == "session" and request.method not in SAFE_METHODS:
        assert principal.session_id is not None
        keys = web_state(request).auth.keys
        if not keys.check_csrf(principal.session_id, request.headers.get(CSRF_HEADER)):
            raise CsrfError(f"a change made with the session cookie needs the {CSRF_HEADER} header")
    return principal


# The security schemes are declared for the OpenAPI schema; principal_from reads the request.
_bearer = HTTPBearer(auto_error=False, description="An API token: `vigil tokens create`.")
_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="The session of POST /api/auth/login."
)
_Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
_Cookie = Annotated[str | None, Depends(_cookie)]


async def optional_principal(request: Request, _b: _Bearer, _c: _Cookie) -> Principal | None:
    """Who is calling, if anyone; an invalid token counts as nobody (for /api/health)."""
    try:
        return await principal_from(request)
    except NotAuthenticatedError:
        return None


async def require_viewer(request: Request, _b: _Bearer, _c: _Cookie) -> Principal:
    return authorize(request, await principal_from(request), READ_ROLES)


async def require_admin(request: Request, _b: _Bearer, _c: _Cookie) -> Principal:
    return authorize(request, await principal_from(request), frozenset({Role.ADMIN}))


async def require_ingest(request: Request, _b: _Bearer, _c: _Cookie) -> Principal:
    return authorize(request, await principal_from(request), frozenset({Role.INGEST}))


Viewer = Annotated[Principal, Depends(require_viewer)]
Admin = Annotated[Principal, Depends(require_admin)]
Ingester = Annotated[Principal, Depends(require_ingest)]
MaybePrincipal = Annotated[Principal | None, Depends(optional_principal)]


def cookie_path(request: Request) -> str:
    """The app's own path: mounted under /vigil, the cookie is sent only under /vigil."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/") or "/"


async def sign_in(request: Request, response: Response, name: str, password: str) -> SignedIn:
    """Check the password (after the sign-in limits, ``vigil.web.ratelimit``) and set the
    session cookie on ``response``: signed, HttpOnly, SameSite=Lax, Secure over HTTPS; and the
    device cookie that tells the limits this browser knew the password. A sign-in sent by
    another site (login CSRF) is refused."""
    if not from_this_site(request):
        raise CsrfError("a sign-in must come from this dashboard, not from another site")
    state = web_state(request)
    signed = await state.auth.sign_in(
        name,
        password,
        address=client_address(request),
        device_cookie=request.cookies.get(DEVICE_COOKIE),
    )
    secure = request.url.scheme == "https"
    response.set_cookie(
        SESSION_COOKIE,
        signed.cookie,
        max_age=int(state.auth.session_seconds),
        path=cookie_path(request),
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    response.set_cookie(
        DEVICE_COOKIE,
        signed.device_cookie,
        max_age=DEVICE_SECONDS,
        path=cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=secure,
    )
    request.state.vigil_principal = signed.principal
    return signed


def from_this_site(request: Request) -> bool:
    """Whether a browser sent ``request`` from this site's own pages. Browsers say where a
    request comes from: ``Sec-Fetch-Site`` (every current browser), else ``Origin`` (sent
    with every cross-origin POST). A request with neither is not a browser's cross-site
    request (a script, curl) and passes."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site.strip().lower() in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    claimed = _authority(origin)
    if claimed is None:
        return False  # "null" (a sandboxed frame, a redirect chain) or garbage
    scheme = urlsplit(origin.strip().lower()).scheme
    # The Host header, with the Origin's scheme: behind a TLS proxy that is not trusted the
    # request itself looks like plain http, but the browser addressed this very host.
    ours = {_authority(f"{scheme}://{request.headers.get('host', '')}")}
    base_url = web_state(request).vigil.settings.base_url
    if base_url:
        ours.add(_authority(base_url))
    return claimed in ours


def _authority(url: str) -> tuple[str, int] | None:
    """``(host, port)`` of an origin or URL, the scheme's default port filled in."""
    try:
        parts = urlsplit(url.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.scheme not in ("http", "https"):
        return None
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def sign_out(request: Request, response: Response) -> None:
    """End the request's session (if any), durably, and clear its cookie."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await web_state(request).auth.sign_out(cookie)
    response.delete_cookie(
        SESSION_COOKIE,
        path=cookie_path(request),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
