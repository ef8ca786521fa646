"""``/api/auth``: sign in and out with a password (a cookie session), and who am I."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from vigil.store import Role
from vigil.web.auth import (
    READ_ROLES,
    SignedIn,
    Viewer,
    authorize,
    principal_from,
    sign_in,
    sign_out,
    web_state,
)
from vigil.web.errors import NotAuthenticatedError, RateLimitedError, responses
from vigil.web.schemas import Text

router = APIRouter(prefix="/api/auth", tags=["auth"])


# -- auth -----------------------------------------------------------------------------------


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=100)
    password: Text = Field(min_length=1, max_length=1024)


class WhoAmI(BaseModel):
    name: str
    role: Role
    kind: str = Field(description="`session` (browser cookie) or `token`.")
    csrf_token: str | None = Field(
        description="Send it back as the X-CSRF-Token header on every change made with the "
        "session cookie; null for tokens."
    )


class LoginOut(WhoAmI):
    expires_at: datetime


@router.post(
    "/login",
    summary="Sign in",
    description="Sets the session cookie (signed, HttpOnly, SameSite=Lax) and returns the "
    "CSRF token that every change made with it must send as `X-CSRF-Token`. Failed attempts "
    "are limited per user name and per client address (429 with Retry-After).",
    responses=responses(401, 422, 429, 503),
)
async def login(request: Request, response: Response, credentials: LoginIn) -> LoginOut:
    try:
        signed: SignedIn = await sign_in(request, response, credentials.name, credentials.password)
    except (NotAuthenticatedError, RateLimitedError):
        web_state(request).metrics.sign_in_failures.inc()
        raise
    principal = signed.principal
    return LoginOut(
        name=principal.name,
        role=principal.role,
        kind=principal.kind,
        csrf_token=principal.csrf_token,
        expires_at=signed.expires_at,
    )


@router.post(
    "/logout",
    status_code=204,
    summary="Sign out",
    description="Ends the session and clears its cookie; with no session it does nothing. "
    "A signed-in session must send its CSRF token.",
    responses=responses(403, 503),
)
async def logout(request: Request, response: Response) -> None:
    if request.headers.get("authorization") is None:
        principal = await principal_from(request)
        if principal is not None:
            authorize(request, principal, READ_ROLES)  # a live session: check its CSRF token
    await sign_out(request, response)


@router.get(
    "/me",
    summary="Who am I, and my CSRF token",
    responses=responses(401, 403, 503),
)
async def me(principal: Viewer) -> WhoAmI:
    return WhoAmI(
        name=principal.name,
        role=principal.role,
        kind=principal.kind,
        csrf_token=principal.csrf_token,
    )
