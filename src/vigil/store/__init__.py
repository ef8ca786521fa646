"""Storage: SQLite by default, PostgreSQL when shared. ``Store`` is the whole public surface."""

from __future__ import annotations

from vigil.store.errors import VigilStorageError
from vigil.store.records import (
    ApiToken,
    CleanupReport,
    Cursor,
    DayCount,
    MetricPoint,
    OutboxItem,
    OutboxStatus,
    Page,
    Role,
    Summary,
    User,
)
from vigil.store.repository import Store

__all__ = [
    "ApiToken",
    "CleanupReport",
    "Cursor",
    "DayCount",
    "MetricPoint",
    "OutboxItem",
    "OutboxStatus",
    "Page",
    "Role",
    "Store",
    "Summary",
    "User",
    "VigilStorageError",
]
