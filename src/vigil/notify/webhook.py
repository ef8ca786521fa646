"""JSON webhooks (``json://``, ``jsons://``) posted directly from the event loop.

apprise sends each message from a worker thread with a fresh ``requests`` session: a thread
hand-off, a new connection and apprise's message pipeline per message, about as long as the
rest of a delivery put together. For a plain JSON webhook that pipeline changes nothing (a
text body to a text service, no overflow handling, no attachments), so the request apprise
would make is made here with aiohttp, on a session that keeps its connections open.

What the request is stays apprise's: the URL is parsed by apprise's own JSON plugin (host,
port, path, ``+header``, ``-param`` and ``:payload`` options, method, credentials,
``verify``, ``cto``/``rto`` timeouts), the body is apprise's JSON body with the same keys and
encoding, and a failure reads as apprise's would. A URL with an option that changes what
apprise sends (``format``, ``overflow``, ``retry``, ...) is not taken here: ``plan`` returns
None and apprise sends it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import apprise
from apprise.plugins.custom_json import NotifyJSON

from vigil.logmask import mask

JSON_VERSION = "1.0"  # apprise's JSON payload version
# URL options whose effect is reproduced here; any other option leaves the URL to apprise.
_OPTIONS = frozenset({"method", "verify", "cto", "rto", "user", "pass", "password"})
_PREFIXES = ("+", "-", ":")


@dataclass(frozen=True, slots=True)
class JsonWebhook:
    """The request apprise's JSON plugin makes for one channel URL."""

    url: str  # http(s)://host[:port]/path
    host: str
    method: str
    headers: tuple[tuple[str, str], ...]  # the URL's own (+name=value)
    params: tuple[tuple[str, str], ...]  # -name=value
    extras: tuple[tuple[str, str], ...]  # :name=value, apprise's payload renames and additions
    user: str | None
    password: str | None
    verify: bool
    connect_timeout: float
    read_timeout: float
    redirects: bool

    def payload(self, *, title: str, body: str, notify_type: str) -> bytes:
        """apprise's JSON body, key for key and byte for byte."""
        payload: dict[str, Any] = {
            "version": JSON_VERSION,
            "title": title.strip(),
            "message": body.rstrip(),
            "attachments": [],
            "type": notify_type,
        }
        for key, value in self.extras:
            if key in payload:
                if value:
                    payload[value] = payload[key]
                del payload[key]
            else:
                payload[key] = value
        return json.dumps(payload).encode()

    async def post(
        self, session: aiohttp.ClientSession, data: bytes, *, app_id: str, extra: dict[str, str]
    ) -> str | None:
        """Send ``data``; None when the receiver took it (2xx), else apprise's reason."""
        headers = {"User-Agent": app_id, "Content-Type": "application/json"}
        headers.update(self.headers)
        headers.update(extra)
        if self.user is not None and self.password is not None:
            headers["Authorization"] = _basic(self.user, self.password)
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.connect_timeout, sock_read=self.read_timeout
        )
        try:
            async with session.request(
                self.method,
                self.url,
                data=data,
                params=list(self.params),
                headers=headers,
                ssl=self.verify,
                timeout=timeout,
                allow_redirects=self.redirects,
            ) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            return mask(f"A Connection error occurred sending JSON notification to {self.host}.")
        if 200 <= status < 300:
            return None
        lookup: Any = NotifyJSON.http_response_code_lookup  # apprise's wording of the status
        described = str(lookup(status) or "")
        return mask(
            f"Failed to send JSON {self.method} notification: "
            f"{described}{', ' if described else ''}error={status}."
        )


def plan(url: str) -> JsonWebhook | None:
    """The direct request for a ``json://``/``jsons://`` channel URL, or None when apprise
    has to send it (another service, or an option only apprise applies)."""
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in ("json", "jsons"):
        return None
    query = rest.partition("?")[2]
    for pair in filter(None, query.replace(";", "&").split("&")):
        name = pair.partition("=")[0]
        if not name.startswith(_PREFIXES) and name.lower() not in _OPTIONS:
            return None
    plugin = apprise.Apprise.instantiate(url)
    if type(plugin) is not NotifyJSON:
        return None
    if plugin.user and plugin.password is None:
        return None  # requests would send the password "None"; apprise keeps that quirk
    default = apprise.NotifyFormat.TEXT
    if (
        getattr(plugin, "retry", 0)
        or plugin.overflow_mode != apprise.OverflowMode.UPSTREAM
        or plugin.body_max_line_count > 0
        or plugin.title_maxlen <= 0
        or (plugin.notify_format if isinstance(plugin.notify_format, str) else default) != default
    ):
        return None
    target = f"{'https' if plugin.secure else 'http'}://{plugin.host}"
    if isinstance(plugin.port, int):
        target += f":{plugin.port}"
    target += plugin.fullpath if isinstance(plugin.fullpath, str) else ""
    return JsonWebhook(
        url=target,
        host=str(plugin.host),
        method=str(plugin.method),
        headers=tuple((str(k), str(v)) for k, v in plugin.headers.items()),
        params=tuple((str(k), str(v)) for k, v in plugin.params.items()),
        extras=tuple((str(k), str(v)) for k, v in plugin.payload_extras.items()),
        user=plugin.user or None,
        password=plugin.password,
        verify=bool(plugin.verify_certificate),
        connect_timeout=float(plugin.socket_connect_timeout),
        read_timeout=float(plugin.socket_read_timeout),
        redirects=bool(getattr(plugin, "redirects", True)),
    )


def _basic(user: str, password: str) -> str:
    """HTTP basic credentials as ``requests`` (so apprise) encodes them, in Latin-1; beyond
    Latin-1 (where apprise's request fails) in UTF-8, as RFC 7617 allows."""
    try:
        raw = f"{user}:{password}".encode("latin1")
    except UnicodeEncodeError:
        raw = f"{user}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")
