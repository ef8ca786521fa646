"""Plain HTML forms: reading an urlencoded body, checking its CSRF field, and where to go back.

The API takes JSON and its CSRF token in a header; a form without JavaScript can send neither,
so pages accept ``application/x-www-form-urlencoded`` with the token as a hidden field, checked
with the same keys as the header. (python-multipart is not needed for urlencoded bodies.)

Every admin action starts the same way, so it is one dependency: a route that takes an
``AdminForm`` gets the fields sent and the admin who sent them, the CSRF field checked. It
answers with ``back(...)``: POST/redirect/GET to the page the form came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pydantic
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse

from vigil.core import ValidationError
from vigil.store import Role
from vigil.web.auth import Principal, principal_from, web_state
from vigil.web.errors import CsrfError, ForbiddenError, NotAuthenticatedError, field_name
from vigil.web.pages.render import root_of

CSRF_FIELD = "csrf_token"
MAX_FORM_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"

Model = TypeVar("Model", bound=pydantic.BaseModel)


class FormTooLargeError(ValidationError):
    def __init__(self) -> None:
        super().__init__("form", f"is larger than {MAX_FORM_BYTES // 1024} KiB")


async def read_form(request: Request) -> dict[str, str]:
    """The submitted fields (the last value of a repeated field wins)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("", FORM_TYPE):
        raise ValidationError("form", f"must be sent as {FORM_TYPE}")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLargeError()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("form", "must be UTF-8") from None
    return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=100))


def authorize_form(
    request: Request,
    principal: Principal | None,
    form: Mapping[str, str],
    *,
    admin: bool,
) -> Principal:
    """The checks ``vigil.web.auth.authorize`` makes for an API change, with the CSRF token
    taken from the form instead of a header."""
    if principal is None:
        raise NotAuthenticatedError("sign in first")
    if admin and principal.role is not Role.ADMIN:
        raise ForbiddenError(f"this needs the admin role; {principal.name!r} is {principal.role}")
    if not admin and not principal.can_read:
        raise ForbiddenError(f"{principal.name!r} may not use the dashboard")
    if principal.kind == "session":
        assert principal.session_id is not None
        keys = web_state(request).auth.keys
        if not keys.check_csrf(principal.session_id, form.get(CSRF_FIELD)):
            raise CsrfError("the form is out of date or was not sent from this dashboard")
    return principal


@dataclass(frozen=True, slots=True)
class SentForm:
    """A form an admin sent: its fields, and who."""

    fields: dict[str, str]
    principal: Principal


async def admin_form(request: Request) -> SentForm:
    """The form of an admin action: read (urlencoded, bounded), then its sender checked: signed
    in, an admin, and the form's CSRF field matching the session."""
    fields = await read_form(request)
    principal = authorize_form(request, await principal_from(request), fields, admin=True)
    return SentForm(fields, principal)


AdminForm = Annotated[SentForm, Depends(admin_form)]


def back(request: Request, form: Mapping[str, str], *, done: str, default: str) -> RedirectResponse:
    """303 to the page the form came from (its ``next`` field), telling it what was done
    (``?done=``, a key of ``render.NOTICES``); ``default`` (a path under the root) without one."""
    target = local_path(form.get("next"), default=root_of(request) + default)
    parts = urlsplit(target)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "done"]
    query.append(("done", done))
    return RedirectResponse(urlunsplit(parts._replace(query=urlencode(query))), 303)


def local_path(target: str | None, *, default: str = "/") -> str:
    """``target`` if it is a path on this site, else ``default``: no open redirects."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(c) < 32 for c in target):
        return default
    return target


def validated(model: type[Model], data: Mapping[str, Any]) -> Model:
    """``data`` as the API's input ``model``; its first problem as a ``ValidationError`` that
    names the field by its whole path (``steps[1].wait_minutes``), as the API's 422 would."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        problem = exc.errors()[0]
        raise ValidationError(field_name(problem["loc"]) or "form", problem["msg"]) from None


def checked(form: Mapping[str, str], name: str) -> bool:
    """A checkbox: sent (as ``on``) when ticked, left out when not."""
    return form.get(name) in ("on", "true", "1")


def whole_number(form: Mapping[str, str], name: str) -> int | None:
    """A field of whole minutes, hours...: ``None`` when left empty; its bounds are the API
    model's to check. Only ASCII digits reach ``int()`` ("²" is a digit to ``isdigit`` that
    ``int`` refuses), and no more than nine (``int`` refuses 4,300 and more)."""
    text = form.get(name, "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()):
        raise ValidationError(name, f"{text[:20]!r} is not a whole number")
    if len(text) > 9:
        raise ValidationError(name, "is far too large")
    return int(text)
