"""Settings: one class read by the embedded monitor, the server and every CLI command.

Every value is checked when the settings are read: a wrong one is a ``SettingsError`` whose
one line names the variable and the form it expects, before anything starts.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import pydantic
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from vigil.core.errors import ValidationError
from vigil.core.flapping import FlapSettings

ENV_PREFIX = "VIGIL_"
MAX_SAMPLES_HELD = 10.0  # seconds of the monitor's own samples held back at most
DATABASE_SCHEMES = ("sqlite+aiosqlite://", "postgresql+asyncpg://")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
MIN_SECRET_KEY = 16
SECRET_KEY_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def _default_instance() -> str:
    return socket.gethostname() or "vigil"


class SettingsError(ValidationError):
    """A setting that cannot be used. ``field`` is the environment variable's name, and the
    message is one line saying what form it expects."""


class Settings(BaseSettings):
    """Every setting has an environment variable: the field name in capitals, prefixed
    ``VIGIL_`` (``database_url`` -> ``VIGIL_DATABASE_URL``)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    database_url: str = Field(
        "sqlite+aiosqlite:///vigil.db",
        description="SQLAlchemy URL. SQLite (default, a file in the working directory) or "
        "PostgreSQL (postgresql+asyncpg://user@host/db) when several processes share one view.",
    )
    instance: str = Field(
        default_factory=_default_instance,
        min_length=1,
        max_length=100,
        description="Name of this process in metric history; the host name by default.",
    )
    interval: float = Field(
        30.0, ge=1, le=3600, description="Seconds between monitor cycles (1 to 3600)."
    )
    group_window: float | None = Field(
        None,
        ge=0,
        le=86_400,
        description="Seconds within which incidents that open form one incident group, told "
        "of in one notification; two intervals by default, 0 turns grouping off.",
    )
    incident_retention_days: int = Field(
        90, ge=1, description="Resolved incidents older than this are deleted by cleanup."
    )
    sample_retention_days: int = Field(
        30, ge=1, description="Metric samples older than this are deleted by cleanup."
    )
    sample_raw_hours: int = Field(
        24,
        ge=1,
        le=8784,
        description="Hours of metric history kept sample by sample; cleanup compacts older "
        "samples into one-minute rollups (count, min, max, mean, last) that the charts and "
        "backtests read in their place.",
    )
    sample_batch: int = Field(
        10,
        ge=1,
        le=1000,
        description="Cycles of the monitor's own readings written to the metric history in "
        "one transaction (1: every cycle), and never more than 10 seconds' worth: at a 30 s "
        "interval every cycle writes. A crash loses at most that many cycles of them; "
        "incidents, streaks, events and pushed samples are never held back.",
    )
    health_stale_after: float = Field(
        300.0, gt=0, description="Seconds without a heartbeat before a background task is stale."
    )
    host: str = Field("127.0.0.1", description="Address the web server listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port the web server listens on.")
    secret_key: SecretStr | None = Field(
        None,
        description="Signs session cookies; at least 16 characters. Set it when several "
        "instances serve the dashboard or sessions should survive a restart; unset, each "
        "process makes a random one.",
    )
    base_url: str | None = Field(
        None,
        description="Public address of the dashboard (an absolute http:// or https:// URL), "
        "for links in notifications; http://HOST:PORT by default.",
    )
    # -- exposure: who is a proxy, sign-in limits, connection limits (docs/security.md) ------
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Comma-separated addresses or networks (10.0.0.5, 10.0.0.0/8) of reverse "
        "proxies whose X-Forwarded-For and X-Forwarded-Proto are believed; none by default.",
    )
    signin_attempts: int = Field(
        5,
        ge=1,
        le=100,
        description="Failed sign-ins for one user from one browser or address before each "
        "further try waits, the wait doubling from 1 s.",
    )
    signin_account_attempts: int = Field(
        10,
        ge=1,
        le=1000,
        description="Failed sign-ins for one user from browsers and addresses that never "
        "signed in as that user, before those are slowed the same way.",
    )
    signin_address_attempts: int = Field(
        30,
        ge=1,
        le=10_000,
        description="Failed sign-ins from one address for users it never signed in as, "
        "before that address is slowed the same way.",
    )
    signin_max_delay: float = Field(
        900.0, ge=1, le=86_400, description="The longest wait between sign-in attempts (s)."
    )
    max_connections: int = Field(
        1000,
        ge=10,
        le=1_000_000,
        description="Open connections `vigil serve` holds at most (kept below the open-files "
        "limit); more are answered 503 and closed.",
    )
    header_timeout: float = Field(
        10.0, gt=0, le=3600, description="Seconds a client has to send a request's headers."
    )
    body_timeout: float = Field(
        30.0, gt=0, le=3600, description="Seconds a client has to send a request's body."
    )
    keepalive_timeout: int = Field(
        5, ge=1, le=3600, description="Seconds an idle keep-alive connection stays open."
    )
    # -- rules (docs/rules.md) ---------------------------------------------------------------
    max_rules: int = Field(
        1000, ge=1, le=100_000, description="The most rules a database may hold."
    )
    max_series_per_rule: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="The most instances one rule split per instance follows; further ones "
        "are refused and reported in health.",
    )
    # Nagios's flap detection (vigil.core.flapping, docs/rules.md "Flapping"); its defaults.
    flap_detection: bool = Field(
        True,
        description="Hold a flapping series' incident open and notify once that it flaps, "
        "instead of opening and resolving it at every change.",
    )
    flap_window: int = Field(
        21, ge=3, le=100, description="Evaluations per series the percent state change covers."
    )
    flap_high: float = Field(
        20.0,
        gt=0,
        le=100,
        description="A series starts flapping when its weighted percent state change exceeds this.",
    )
    flap_low: float = Field(
        5.0,
        gt=0,
        le=100,
        description="A flapping series stops flapping when its percent state change falls "
        "below this (below flap_high).",
    )
    rules_file: Path | None = Field(
        None,
        description="A YAML rules file (see `vigil rules export`) the leader applies at "
        "start-up: its rules are added or changed, others are left alone.",
    )

    # -- pushed samples: the bounded series model and ingest limits (docs/security.md) -------
    max_metrics: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="Distinct metric names pushed samples may use at once; samples of a new "
        "metric past it are refused (422).",
    )
    max_series: int = Field(
        10_000,
        ge=1,
        le=1_000_000,
        description="Distinct (instance, metric) series pushed samples may use at once; "
        "samples of a new series past it are refused (422).",
    )
    series_retention: float = Field(
        3600.0,
        ge=60,
        le=30 * 86_400,
        description="Seconds after its last pushed sample that a series is forgotten: its "
        "slot freed, and the metric gone from /api/metrics unless a rule watches it.",
    )
    ingest_rate: float = Field(
        10.0,
        gt=0,
        le=10_000,
        description="Ingest requests a second each token may send (bursts of ten seconds' "
        "worth); more are answered 429 with Retry-After.",
    )
    ingest_volume: float = Field(
        2000.0,
        gt=0,
        le=1_000_000,
        description="Samples a second each token may push (bursts of one full batch or ten "
        "seconds' worth, whichever is more); more are answered 429 with Retry-After.",
    )
    ingest_max_future: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="Seconds ahead of this server's clock a pushed sample may be dated.",
    )
    ingest_max_age: float = Field(
        3600.0,
        ge=60,
        le=30 * 86_400,
        description="Seconds in the past a pushed sample may be dated.",
    )
    ingest_flush_interval: float = Field(
        0.01,
        ge=0,
        le=10,
        description="Pushed samples are written by group commit: the pushes of the moment in "
        "one transaction, each answered once it has committed. At most one such transaction "
        "every this many seconds (sooner when half the buffer waits); 0: as soon as the "
        "previous one is done.",
    )
    ingest_buffer: int = Field(
        50_000,
        ge=10_000,
        le=1_000_000,
        description="Pushed samples held waiting for their transaction, at most (one full "
        "batch or more); a push that does not fit is answered 429 with Retry-After.",
    )
    delivery_lease: float = Field(
        30.0,
        ge=1,
        le=3600,
        description="Seconds a notification being sent stays claimed, renewed while the send "
        "lasts: a crash during a delivery delays the message by about this long.",
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except pydantic.ValidationError as exc:
            raise _one_line(exc) from None
        if self.flap_low >= self.flap_high:
            raise SettingsError(
                env_name("flap_low"),
                f"must be below VIGIL_FLAP_HIGH ({self.flap_high:g}), got {self.flap_low:g}",
            )

    @field_validator("base_url")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an absolute http(s) URL")
        if any(char.isspace() for char in value.strip()):
            raise ValueError("contains spaces")
        _ = parts.port  # raises ValueError for a port out of range
        return value.strip()

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        # The store checks the rest (vigil.store.engine); this names the setting at start-up.
        if not value.strip().startswith(DATABASE_SCHEMES):
            raise ValueError("not a supported database URL")
        return value

    @field_validator("host")
    @classmethod
    def _listen_address(cls, value: str) -> str:
        text = value.strip()
        try:
            ipaddress.ip_address(text)
        except ValueError:
            labels = text.removesuffix(".").split(".")
            if len(text) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
                raise ValueError("not an address or host name") from None
        return text

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_KEY:
            raise ValueError("too short")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValueError("not a list")
        networks = []
        for item in items:
            text = str(item).strip()
            if text:
                networks.append(str(ipaddress.ip_network(text, strict=False)))
        return tuple(networks)

    @property
    def flap(self) -> FlapSettings | None:
        """Flap detection as the evaluator takes it; ``None`` when turned off."""
        if not self.flap_detection:
            return None
        return FlapSettings(window=self.flap_window, high=self.flap_high, low=self.flap_low)

    @property
    def effective_sample_batch(self) -> int:
        """``sample_batch``, held to ``MAX_SAMPLES_HELD`` seconds of cycles: the charts of the
        monitor's own metrics, and what a crash may lose of them, stay seconds behind."""
        return max(1, min(self.sample_batch, int(MAX_SAMPLES_HELD // self.interval)))

    @property
    def effective_group_window(self) -> float:
        """The correlation window in seconds: ``group_window``, or two intervals."""
        return 2 * self.interval if self.group_window is None else self.group_window

    @property
    def public_url(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Read ``VIGIL_*`` variables; keyword arguments win over the environment. A value
        that cannot be used raises ``SettingsError``, one line naming the variable."""
        return cls(**overrides)


# What each setting must look like, as its one-line error says it.
EXPECTED = {
    "database_url": "a database URL: sqlite+aiosqlite:///path/to/vigil.db or "
    "postgresql+asyncpg://user@host/db",
    "instance": "a name of 1 to 100 characters",
    "interval": "a number of seconds from 1 to 3600",
    "group_window": "a number of seconds from 0 (grouping off) to 86400",
    "incident_retention_days": "a whole number of days, 1 or more",
    "sample_retention_days": "a whole number of days, 1 or more",
    "sample_raw_hours": "a whole number of hours from 1 to 8784 (366 days)",
    "sample_batch": "a whole number of cycles from 1 to 1000",
    "health_stale_after": "a number of seconds above 0",
    "host": "an address to listen on, such as 127.0.0.1 or 0.0.0.0",
    "port": "a whole number from 1 to 65535",
    "secret_key": f"at least {MIN_SECRET_KEY} characters (make one with: {SECRET_KEY_HINT})",
    "base_url": "an absolute http:// or https:// URL such as https://vigil.example.com",
    "trusted_proxies": "comma-separated IP addresses or networks, such as 10.0.0.5,10.1.0.0/16",
    "signin_attempts": "a whole number from 1 to 100",
    "signin_account_attempts": "a whole number from 1 to 1000",
    "signin_address_attempts": "a whole number from 1 to 10000",
    "signin_max_delay": "a number of seconds from 1 to 86400",
    "max_connections": "a whole number from 10 to 1000000",
    "header_timeout": "a number of seconds above 0, at most 3600",
    "body_timeout": "a number of seconds above 0, at most 3600",
    "keepalive_timeout": "a whole number of seconds from 1 to 3600",
    "max_metrics": "a whole number from 1 to 100000",
    "max_series": "a whole number from 1 to 1000000",
    "series_retention": "a number of seconds from 60 to 2592000 (30 days)",
    "ingest_rate": "a number of requests a second above 0, at most 10000",
    "ingest_volume": "a number of samples a second above 0, at most 1000000",
    "ingest_max_future": "a number of seconds from 0 to 3600",
    "ingest_max_age": "a number of seconds from 60 to 2592000 (30 days)",
    "ingest_flush_interval": "a number of seconds from 0 to 10",
    "ingest_buffer": "a whole number of samples from 10000 to 1000000",
    "delivery_lease": "a number of seconds from 1 to 3600",
    "max_rules": "a whole number from 1 to 100000",
    "max_series_per_rule": "a whole number from 1 to 100000",
    "rules_file": "the path of a YAML rules file",
    "flap_detection": "true or false",
    "flap_window": "a whole number from 3 to 100",
    "flap_high": "a percentage above 0, at most 100",
    "flap_low": "a percentage above 0, at most 100, below VIGIL_FLAP_HIGH",
}
_SECRET = frozenset({"secret_key"})


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def _one_line(exc: pydantic.ValidationError) -> SettingsError:
    """The first problem of ``exc`` as one line: the variable, what was given (never for a
    secret), and the form it expects."""
    problem = exc.errors()[0]
    location = problem.get("loc") or ("settings",)
    field = str(location[0])
    if field not in EXPECTED:  # an unknown keyword argument (extra="forbid")
        return SettingsError(field, "is not a setting of Vigil")
    given = problem.get("input")
    if field in _SECRET:
        shown = f"{len(str(given))} characters" if isinstance(given, str) else "too short"
        return SettingsError(env_name(field), f"is {shown}; it must be {EXPECTED[field]}")
    got = f", got {str(given)[:80]!r}" if isinstance(given, str | int | float) else ""
    return SettingsError(env_name(field), f"must be {EXPECTED[field]}{got}")
