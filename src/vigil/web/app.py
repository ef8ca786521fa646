"""``create_app(vigil)``: the FastAPI app serving a running ``Vigil``.

No module-level app: each call builds one, with its own caches, live stream and Prometheus
registry. ``vigil serve`` runs it on uvicorn; a host can mount it in its own ASGI app
(``host.mount("/vigil", create_app(vigil))``) and should then ``await close_streams(app)``
when its server shuts down, so open event streams end instead of holding the shutdown.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from vigil._version import __version__
from vigil.runtime import Vigil
from vigil.web import apidocs, errors, pages
from vigil.web.auth import Authenticator
from vigil.web.cache import ReadCache
from vigil.web.live import KEEPALIVE_SECONDS, RECHECK_SECONDS, RING, LiveStream, ServerSend
from vigil.web.prometheus import WebMetrics
from vigil.web.proxies import TrustedProxies
from vigil.web.ratelimit import IngestLimiter, SignInLimiter
from vigil.web.routes import (
    alerts,
    auth,
    channels,
    escalations,
    groups,
    ingest,
    metrics,
    rules,
    silences,
    system,
)
from vigil.web.security import Keys, Passwords
from vigil.web.state import WebState, generation_of

SESSION_SECONDS = 12 * 3600
AUTH_CACHE_SECONDS = 2.0
READ_CACHE_SECONDS = 10.0
MAX_BODY = 8 * 1024 * 1024  # a full ingest batch is under 2 MiB; anything far larger is abuse

DESCRIPTION = """\
Vigil's REST API. Authenticate with an API token (`Authorization: Bearer ...`, from
`vigil tokens create`) or a session cookie from `POST /api/auth/login` (then send its CSRF
token as `X-CSRF-Token` on every change). Viewers read everything; admins also change rules,
act on incidents, and manage channels, snoozes and maintenance windows; `ingest` tokens only
push samples. Errors are
`{"error": {"code", "message", "field"}}`.
"""


class VigilAPI(FastAPI):
    """FastAPI with ``ServerSend`` around its whole middleware stack (the live stream's body
    skips the middleware's ``send`` wrappers)."""

    def build_middleware_stack(self) -> ASGIApp:
        return ServerSend(super().build_middleware_stack())


def create_app(
    vigil: Vigil,
    *,
    password_hasher: PasswordHasher | None = None,
    limiter: SignInLimiter | None = None,
    session_seconds: float = SESSION_SECONDS,
    auth_cache_seconds: float = AUTH_CACHE_SECONDS,
    read_cache_seconds: float = READ_CACHE_SECONDS,
    keepalive_seconds: float = KEEPALIVE_SECONDS,
    recheck_seconds: float = RECHECK_SECONDS,
    event_ring: int = RING,
) -> FastAPI:
    """The API for ``vigil`` (started now or later: routes answer 503 until it runs).

    The keyword arguments exist for tests and tuning; the defaults suit production.
    """
    settings = vigil.settings
    secret = settings.secret_key
    live = LiveStream(vigil, keepalive=keepalive_seconds, ring=event_ring, recheck=recheck_seconds)
    state = WebState(
        vigil=vigil,
        auth=Authenticator(
            vigil,
            keys=Keys.from_setting(secret.get_secret_value() if secret is not None else None),
            passwords=Passwords(password_hasher),
            limiter=limiter
            or SignInLimiter(
                attempts=settings.signin_attempts,
                account_attempts=settings.signin_account_attempts,
                address_attempts=settings.signin_address_attempts,
                max_delay=settings.signin_max_delay,
            ),
            session_seconds=session_seconds,
            cache_seconds=auth_cache_seconds,
        ),
        cache=ReadCache(lambda: generation_of(vigil), ttl=read_cache_seconds),
        live=live,
        metrics=WebMetrics(vigil, live),
        ingest=IngestLimiter(
            rate=settings.ingest_rate, volume=settings.ingest_volume, batch=ingest.MAX_SAMPLES
        ),
    )
    app = VigilAPI(
        title="Vigil",
        description=DESCRIPTION,
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url=None,  # vigil.web.apidocs: Swagger UI from the package, not a CDN
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.vigil_web = state
    errors.install(app)
    app.add_middleware(errors.BodyLimit, max_bytes=MAX_BODY)
    app.add_middleware(ingest.IngestGate, max_body=MAX_BODY)  # floods turned away early
    if settings.trusted_proxies:  # outermost: everything after it sees the real client
        app.add_middleware(TrustedProxies, networks=settings.trusted_proxies)
    app.router.routes.extend(_routes())
    return app


@cache
def _routes() -> tuple[BaseRoute, ...]:
    """Every router's routes, included once per process and shared by every app.

    FastAPI builds an included route's request handling (its dependencies and models) for
    each router that includes it: about 0.15 s for Vigil's hundred routes, paid by every app
    on its first request. Included here once, an app takes the finished routes. Nothing in
    them belongs to one app: the state is ``request.app.state.vigil_web``. What including
    them into the app itself would add does not apply: no router has startup handlers or a
    lifespan, and Vigil overrides no dependencies (``app.dependency_overrides`` is unused)."""
    shared = APIRouter()
    # Ingestion first: routes are matched in order, and its pushes are the busiest requests.
    for module in (
        ingest,
        alerts,
        groups,
        rules,
        metrics,
        channels,
        escalations,
        silences,
        system,
        auth,
    ):
        shared.include_router(module.router)
    shared.include_router(apidocs.router)
    shared.include_router(pages.router)  # the dashboard's HTML pages and static files
    return tuple(shared.routes)


async def close_streams(app: FastAPI) -> None:
    """End every open event stream of ``app`` and refuse new ones, and wait for the token
    lookups it runs in the background (server shutdown, before Vigil stops)."""
    state: WebState = app.state.vigil_web
    await state.live.aclose()
    await state.auth.aclose()
