"""``Health``: one running instance at a glance, as ``Vigil.health()`` returns it and
``GET /api/health`` shows it."""

from __future__ import annotations

from dataclasses import dataclass

from vigil.metrics import TaskHealth
from vigil.runtime.groupcommit import GroupCommitStatus
from vigil.runtime.monitor import MonitorStatus
from vigil.runtime.notifier import NotifierStatus
from vigil.runtime.series import SeriesStatus


@dataclass(frozen=True, slots=True)
class Health:
    monitor: MonitorStatus  # this instance's cycles, leadership and database
    notifications: NotifierStatus  # the outbox, and this instance's deliveries
    tasks: list[TaskHealth]  # every registered background task
    last_event_id: int  # the newest event this instance has seen
    series: SeriesStatus | None = None  # pushed series: counts, caps, refusals, evictions
    ingestion: GroupCommitStatus | None = None  # pushed samples waiting, and their writes

    @property
    def ok(self) -> bool:
        """False (``degraded``) while the database or a background task is failing."""
        return self.monitor.database_ok and not any(task.status.failing for task in self.tasks)
