"""Storage: SQLite by default, PostgreSQL when shared. ``Store`` is the whole public surface."""

from __future__ import annotations

from vigil.store.errors import VigilStorageError
from vigil.store.leader import Leadership, MonitorRunningError
from vigil.store.listen import EventWatch
from vigil.store.records import (
    ApiToken,
    Claim,
    CleanupReport,
    Cursor,
    DayCount,
    Delivery,
    LastNotification,
    MetricPoint,
    OutboxCounts,
    OutboxItem,
    OutboxStatus,
    Page,
    Role,
    RulePlan,
    RuleStats,
    StoredChannel,
    User,
)
from vigil.store.repository import Store

__all__ = [
    "ApiToken",
    "Claim",
    "CleanupReport",
    "Cursor",
    "DayCount",
    "Delivery",
    "EventWatch",
    "LastNotification",
    "Leadership",
    "MetricPoint",
    "MonitorRunningError",
    "OutboxCounts",
    "OutboxItem",
    "OutboxStatus",
    "Page",
    "Role",
    "RulePlan",
    "RuleStats",
    "Store",
    "StoredChannel",
    "User",
    "VigilStorageError",
]
