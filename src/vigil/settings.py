"""Settings: one class read by the embedded monitor, the server and every CLI command."""

from __future__ import annotations

import socket

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_instance() -> str:
    return socket.gethostname() or "vigil"


class Settings(BaseSettings):
    """Every setting has an environment variable: the field name in capitals, prefixed
    ``VIGIL_`` (``database_url`` -> ``VIGIL_DATABASE_URL``)."""

    model_config = SettingsConfigDict(env_prefix="VIGIL_", extra="forbid", frozen=True)

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
    incident_retention_days: int = Field(
        90, ge=1, description="Resolved incidents older than this are deleted by cleanup."
    )
    sample_retention_days: int = Field(
        30, ge=1, description="Metric samples older than this are deleted by cleanup."
    )
    health_stale_after: float = Field(
        300.0, gt=0, description="Seconds without a heartbeat before a background task is stale."
    )
    host: str = Field("127.0.0.1", description="Address the web server listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port the web server listens on.")
    secret_key: SecretStr | None = Field(
        None,
        description="Signs session cookies. Set it when several instances serve the dashboard "
        "or sessions should survive a restart; unset, each process makes a random one.",
    )
    base_url: str | None = Field(
        None,
        description="Public address of the dashboard, for links in notifications; "
        "http://HOST:PORT by default.",
    )

    @property
    def public_url(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Read ``VIGIL_*`` variables; keyword arguments win over the environment."""
        return cls(**overrides)  # type: ignore[arg-type]
