"""Errors: the one place where exceptions become HTTP status codes.

Every error response has the same body, ``{"error": {"code", "message", "field"}}``, whether
it comes from the domain (``NotFoundError`` ...), from authentication, from FastAPI's own
request validation or from Starlette's routing (unknown path, wrong method).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException as FastAPIHTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core.errors import (
    DuplicateIncidentError,
    IllegalTransitionError,
    NameTakenError,
    NotFoundError,
    ValidationError,
    VigilError,
)
from vigil.notify import DeliveryError
from vigil.runtime import NotStartedError
from vigil.runtime.groupcommit import BufferFullError, IngestClosedError
from vigil.store import VigilStorageError

logger = logging.getLogger(__name__)


class NotAuthenticatedError(VigilError):
    """No valid session or token: the caller must sign in (or send a valid token)."""


class ForbiddenError(VigilError):
    """Signed in, but this role may not do this."""


class CsrfError(ForbiddenError):
    """A change made with a session cookie but without its CSRF token."""


class RateLimitedError(VigilError):
    """Too many failed sign-ins; ``retry_after`` seconds until the next attempt counts."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StreamClosedError(VigilError):
    """The live stream is shutting down with the server."""


# Most specific first: the first class an exception is an instance of decides.
STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (NotAuthenticatedError, 401, "not_authenticated"),
    (CsrfError, 403, "csrf_failed"),
    (ForbiddenError, 403, "forbidden"),
    (NotFoundError, 404, "not_found"),
    (IllegalTransitionError, 409, "illegal_transition"),
    (DuplicateIncidentError, 409, "conflict"),
    (NameTakenError, 409, "conflict"),  # before ValidationError, which it is a kind of
    (ValidationError, 422, "invalid"),
    (RateLimitedError, 429, "rate_limited"),
    (BufferFullError, 429, "rate_limited"),
    (DeliveryError, 502, "delivery_failed"),
    (NotStartedError, 503, "not_running"),
    (StreamClosedError, 503, "shutting_down"),
    (IngestClosedError, 503, "shutting_down"),
    (VigilStorageError, 503, "storage_unavailable"),
)

_HTTP_CODES = {
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    position: int | None = None  # a rule condition's: the 0-based offset of the mistake


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    position: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    detail: dict[str, Any] = {"code": code, "message": message, "field": field}
    if position is not None:
        detail["position"] = position
    body = {"error": detail}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def status_of(exc: Exception) -> tuple[int, str]:
    for kind, status, code in STATUS:
        if isinstance(exc, kind):
            return status, code
    return 500, "internal_error"


async def vigil_error(request: Request, exc: Exception) -> JSONResponse:
    """The answer to a ``VigilError`` (the handler of every route's, and of the ingest
    route's direct path, ``vigil.web.routes.ingest``)."""
    status, code = status_of(exc)
    headers: dict[str, str] = {}
    field = None
    position = None
    message = str(exc)
    if isinstance(exc, ValidationError):
        field = exc.field  # the message starts with it too: "field: what is wrong"
        position = getattr(exc, "position", None)  # a condition's ConditionError
    elif isinstance(exc, NotAuthenticatedError):
        headers["WWW-Authenticate"] = "Bearer"
    elif isinstance(exc, RateLimitedError | BufferFullError):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    elif isinstance(exc, VigilStorageError):
        logger.warning("%s %s: %s", request.method, request.url.path, exc)
        message = "the database is unavailable; try again shortly"
    if status == 500:  # a VigilError nobody mapped is a bug, not bad input
        logger.error("unmapped %s on %s", type(exc).__name__, request.url.path, exc_info=exc)
        message = "internal error"
    return error_response(status, code, message, field=field, position=position, headers=headers)


def field_name(location: Sequence[Any]) -> str | None:
    """``("body", "samples", 3, "value")`` -> ``samples[3].value``; the request part that the
    location starts with (body, query, path, header) is dropped."""
    parts = list(location[1:]) if location and location[0] in _SOURCES else list(location)
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    if not name and location:
        return str(location[0])
    return name or None


_SOURCES = ("body", "query", "path", "header", "cookie")


async def _request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    field = field_name(first.get("loc", ()))
    message = str(first.get("msg", "invalid"))
    if first.get("type") == "json_invalid":
        context = first.get("ctx")
        detail = context.get("error", message) if isinstance(context, dict) else message
        field, message = "body", f"not valid JSON: {detail}"
    elif field:
        message = f"{field}: {message}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return error_response(422, "invalid", message, field=field)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # FastAPI could not read the body: bad input, say which
        return error_response(422, "invalid", f"body: {_unreadable(exc)}", field="body")
    code = _HTTP_CODES.get(exc.status_code, "error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names only the methods of the first route with this path; a path can
        # have several (GET and PUT of a rule).
        headers["Allow"] = ", ".join(sorted(_methods_for(request)))
    return error_response(exc.status_code, code, str(exc.detail), headers=headers)


def _unreadable(exc: StarletteHTTPException) -> str:
    """Why FastAPI could not read a JSON body (it keeps the reason as the cause)."""
    cause = exc.__cause__
    if isinstance(cause, RecursionError):
        return "the JSON is nested too deeply"
    if isinstance(cause, UnicodeDecodeError):
        return f"is not UTF-8 text (byte {cause.start}); JSON must be sent as UTF-8"
    return str(exc.detail)


def route_path(scope: Scope) -> str:
    """The path the routes match: without the root path a proxy mounts Vigil under."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _methods_for(request: Request) -> set[str]:
    path = route_path(request.scope)
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        pattern = getattr(route, "path_regex", None)
        if pattern is not None and pattern.match(path) and route.methods:
            methods |= route.methods
    return methods


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette logs the traceback itself after this response is sent.
    return error_response(500, "internal_error", "internal error")


def install(app: FastAPI) -> None:
    app.add_exception_handler(VigilError, vigil_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413, by their Content-Length before
    reading, or as soon as a body without one grows past it: never held whole in memory."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"the request body is larger than {self.max_bytes // (1024 * 1024)} MiB"
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await error_response(413, "too_large", message)(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            incoming = await receive()
            if incoming["type"] == "http.request":
                received += len(incoming.get("body", b""))
                if received > self.max_bytes:
                    # An HTTPException passes FastAPI's body reading untouched (anything else
                    # would become a 400); the handler above answers it in our shape.
                    raise FastAPIHTTPException(413, message)
            return incoming

        await self.app(scope, limited, send)


# For the OpenAPI schema: the error statuses each kind of route can answer.
def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        401: "Not signed in, or the token is invalid or revoked",
        403: "A role that may not do this, or a cookie change without its CSRF token",
        404: "Unknown id or name",
        409: "The incident's status does not allow this action",
        422: "Invalid input; `field` names it",
        413: "The request body is larger than 8 MiB",
        429: "Too many failed sign-ins, or (ingestion) too many requests or samples; "
        "wait `Retry-After` seconds",
        502: "The channel's service refused the message or did not answer in time; "
        "`message` says why, secrets masked",
        503: "Vigil is not running or its database is unavailable",
    }
    return {
        status: {"model": ErrorBody, "description": descriptions[status]} for status in statuses
    }
