"""Database query time from SQLAlchemy engine events, on any engine the application uses.

``before_cursor_execute`` and ``after_cursor_execute`` bracket each statement the DBAPI
runs; the time between them is the query time. An ``AsyncEngine`` is watched through its
``sync_engine``, where these events fire (on the event loop thread for asyncpg and
aiosqlite). Statements that fail are counted under ``database_errors`` and not timed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vigil.metrics.recorder import Recorder
from vigil.metrics.source import DEFAULT_WINDOW, Reading

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

LATENCY = "database_query_latency"
ERRORS = "database_errors"


class QueryTimer:
    """Produces ``database_query_time``: the mean query time (ms) over the statements that
    finished in the last ``window`` seconds, no data when there were none.

    Attach it to engines with ``attach(engine)``; ``detach`` (or ``detach_all``) removes the
    listeners again. Samples go to ``recorder`` under ``database_query_latency``.
    """

    name = "database"

    def __init__(self, recorder: Recorder | None = None, *, window: float = DEFAULT_WINDOW) -> None:
        self.recorder = recorder or Recorder()
        self.window = window
        self._engines: list[Engine] = []
        # One key per timer, so two timers on one engine never read each other's starts.
        self._key = f"vigil.query_started.{id(self)}"
        key, clock, record = self._key, self.recorder.clock, self.recorder.record

        def before(
            conn: Any, cursor: Any, statement: Any, params: Any, context: Any, many: Any
        ) -> None:
            conn.info.setdefault(key, []).append(clock())

        def after(
            conn: Any, cursor: Any, statement: Any, params: Any, context: Any, many: Any
        ) -> None:
            started = conn.info.get(key)
            if started:
                record(LATENCY, (clock() - started.pop()) * 1000.0)

        def failed(context: Any) -> None:
            started = context.connection.info.get(key) if context.connection is not None else None
            if started:
                started.pop()
            record(ERRORS, 1.0)

        self._listeners = (
            ("before_cursor_execute", before),
            ("after_cursor_execute", after),
            ("handle_error", failed),
        )

    def attach(self, engine: Engine | AsyncEngine) -> None:
        """Time every statement ``engine`` runs from now on. Attaching twice is harmless."""
        from sqlalchemy import event

        sync = _sync_engine(engine)
        if any(known is sync for known in self._engines):
            return
        for name, fn in self._listeners:
            event.listen(sync, name, fn)
        self._engines.append(sync)

    def detach(self, engine: Engine | AsyncEngine) -> None:
        """Stop timing ``engine``. Detaching an engine that is not attached is harmless."""
        from sqlalchemy import event

        sync = _sync_engine(engine)
        for i, known in enumerate(self._engines):
            if known is sync:
                for name, fn in self._listeners:
                    event.remove(sync, name, fn)
                del self._engines[i]
                return

    def detach_all(self) -> None:
        for engine in list(self._engines):
            self.detach(engine)

    async def read(self) -> Reading:
        return {"database_query_time": self.recorder.window(LATENCY, self.window).mean}


def _sync_engine(engine: Engine | AsyncEngine) -> Engine:
    sync = getattr(engine, "sync_engine", engine)
    from sqlalchemy.engine import Engine

    if not isinstance(sync, Engine):
        raise TypeError(f"expected a SQLAlchemy Engine or AsyncEngine, got {engine!r}")
    return sync
