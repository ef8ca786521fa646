"""Secrets kept out of log records, whoever logs them: a filter that only masks.

Channel URLs carry webhook tokens and passwords, and some libraries log them: apprise warns
about a refused URL by quoting its token, and at debug level logs the URL it posts to; the
database engine logs statement parameters and rows (a channel's URL, a password hash);
urllib3 logs the request line (a webhook's path). ``SecretMask`` rewrites a record's message
(and its formatted traceback) before any handler sees it:

- the pieces of every channel URL Vigil has handled (``remember``: its password, path
  segments, query values, and the host of a service URL such as ``discord://ID/TOKEN``)
  become ``***`` wherever they appear;
- a service URL (``discord://...``, ``slack://...``) is shown as ``discord://***``; an
  http(s) URL keeps its host but not its path or query; a database URL keeps everything but
  its password;
- an argon2 hash becomes ``$argon2id$***``.

Who installs it: ``install()`` puts the filter on the loggers that can carry such records
(``LOGGERS`` and Vigil's own), and ``Vigil.start()`` and ``vigil serve`` call it. This is not
configuring logging (no handler, level or format is touched, records are neither dropped nor
added): it only masks, so the library may do it on the host's behalf. ``vigil serve``, being
the application, also puts it on its handlers, so no logger is left out there.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

MASK = "***"
LOGGERS = (
    "apprise",
    "sqlalchemy.engine.Engine",
    "aiosqlite",
    "asyncpg",
    "urllib3.connectionpool",
    "requests_oauthlib.oauth2_session",
)
# Options whose values name people, servers or formats, not secrets: shown as they are.
PLAIN_OPTIONS = frozenset(
    {"to", "from", "cc", "bcc", "name", "format", "method", "mode", "smtp", "overflow", "verify"}
)
MAX_PIECES = 10_000
MIN_PIECE = 6  # shorter path segments or ids ("api", "hook") are not worth hiding
MIN_PASSWORD = 3
WEB_SCHEMES = frozenset({"http", "https", "ws", "wss"})
# apprise services whose host is a real server's name (their paths and passwords can still be
# secret); the host of any other service URL is an id or a token (discord://ID/TOKEN).
HOSTED_SCHEMES = WEB_SCHEMES | {
    "json",
    "jsons",
    "form",
    "forms",
    "xml",
    "xmls",
    "mailto",
    "mailtos",
    "apprise",
    "apprises",
}
DATABASE_SCHEMES = ("postgresql", "postgres", "sqlite", "mysql")

_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]{1,30})://([^\s'\"<>()\[\]{}\\]*)")
_ARGON2 = re.compile(r"\$argon2(?:id|i|d)\$[^\s'\")\]}]*")


class _Secrets:
    """The pieces of channel URLs seen so far, newest last, at most ``MAX_PIECES``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pieces: OrderedDict[str, None] = OrderedDict()
        self._pattern: re.Pattern[str] | None = None

    def add(self, pieces: Iterable[str]) -> None:
        with self._lock:
            changed = False
            for piece in pieces:
                if piece not in self._pieces:
                    changed = True
                self._pieces[piece] = None
                self._pieces.move_to_end(piece)
            while len(self._pieces) > MAX_PIECES:
                self._pieces.popitem(last=False)
            if changed:
                longest_first = sorted(self._pieces, key=len, reverse=True)
                self._pattern = re.compile("|".join(map(re.escape, longest_first)))

    def mask(self, text: str) -> str:
        pattern = self._pattern  # read once: another thread may replace it meanwhile
        return pattern.sub(MASK, text) if pattern is not None else text


_SECRETS = _Secrets()


def remember(url: str) -> None:
    """Mask the secret pieces of channel URL ``url`` from now on (before it reaches a library
    that may log it)."""
    _SECRETS.add(secret_pieces(url))


def secret_pieces(url: str) -> set[str]:
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        password = parts.password or ""
    except ValueError:  # an unparseable port, say: fall back on the path's pieces
        parts, host, password = urlsplit(""), "", ""
    pieces: set[str] = set()
    if len(password) >= MIN_PASSWORD:
        pieces |= {password, unquote(password)}
    scheme = parts.scheme.lower()
    if scheme and scheme not in HOSTED_SCHEMES and not scheme.startswith(DATABASE_SCHEMES):
        # discord://ID/TOKEN: the "host" is an id or a token, unless it is a server's name
        # (ntfy://ntfy.example.com/topic), which has dots and is no secret
        rest = url.partition("://")[2].partition("?")[0].rpartition("@")[2]
        first, _, path = rest.partition("/")
        candidates = re.split(r"[/:#]+", path)
        if "." not in first:
            candidates += [*first.split(":"), host]
    else:
        candidates = parts.path.split("/")
    for pair in re.split(r"[&;]", parts.query or url.partition("?")[2]):
        option, _, value = pair.partition("=")
        if unquote(option).lstrip("+-:").lower() not in PLAIN_OPTIONS:
            candidates.append(value)
    for candidate in candidates:
        for piece in (candidate, unquote(candidate)):
            if len(piece) >= MIN_PIECE:
                pieces.add(piece)
    return pieces


def mask(text: str) -> str:
    """``text`` with every known secret, service URL, URL password and hash masked."""
    text = _SECRETS.mask(text)
    text = _URL.sub(_masked_url, text)
    return _ARGON2.sub(f"$argon2id${MASK}", text)


def _masked_url(found: re.Match[str]) -> str:
    scheme, rest = found.group(1), found.group(2)
    lowered = scheme.lower()
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        authority = f"{user}{':' + MASK if colon else ''}@{host}"
    if lowered.startswith(DATABASE_SCHEMES):
        return f"{scheme}://{authority}{slash}{path}"
    if lowered in HOSTED_SCHEMES:
        hidden = f"/{MASK}" if path.strip("/") or "?" in rest else slash
        return f"{scheme}://{authority.partition('?')[0]}{hidden}"
    return f"{scheme}://{MASK}"


class SecretMask(logging.Filter):
    """Masks a record's message and traceback (``mask``); never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted: leave it to the handler
            return True
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


_FILTER = SecretMask()
_installed: set[str] = set()


def install() -> None:
    """Put the filter on ``LOGGERS`` and on every logger of Vigil's own modules imported so
    far. Idempotent and cheap: call it again after importing more of Vigil."""
    names = [*LOGGERS]
    names += [name for name in list(logging.root.manager.loggerDict) if name.startswith("vigil")]
    for name in names:
        if name not in _installed:
            logging.getLogger(name).addFilter(_FILTER)
            _installed.add(name)


def install_on_handlers(handlers: Iterable[logging.Handler]) -> None:
    """For an application that owns its handlers (``vigil serve``): mask whatever reaches
    them, from any logger."""
    for handler in handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


def every_handler() -> list[logging.Handler]:
    """The root logger's handlers and those of every logger made so far: a logger with its
    own handler that does not propagate (uvicorn's access log) is not reached by the root's."""
    loggers = [logging.getLogger(), *logging.root.manager.loggerDict.values()]
    found: dict[int, logging.Handler] = {}
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):  # placeholders have none
            found[id(handler)] = handler
    return list(found.values())
