"""``Store``: the one repository the runtime, the web API and the CLI talk to.

It takes and returns core types (``Rule``, ``Incident``, ``Event``, ``RuleState``, ``Sample``)
and the small values of ``vigil.store.records``; SQL and ORM rows stay inside ``vigil.store``.
One class serves SQLite and PostgreSQL. Each idea lives in its own module; this one opens and
closes.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncEngine

from vigil.store import migrate
from vigil.store._accounts import Accounts
from vigil.store._changes import IncidentChanges
from vigil.store._channels import Channels
from vigil.store._digests import Digests
from vigil.store._discord import DiscordMessages
from vigil.store._escalations import Escalations
from vigil.store._incidents import IncidentQueries
from vigil.store._outbox import Outbox
from vigil.store._retention import Retention
from vigil.store._rule_stats import RuleStatsQueries
from vigil.store._rules import RulesAndEvents
from vigil.store._samples import SampleQueries
from vigil.store._silences import Silences
from vigil.store.engine import create_engine, sqlite_path
from vigil.store.errors import VigilStorageError
from vigil.store.leader import Leadership, leadership_for
from vigil.store.listen import POLL_SECONDS, RECHECK_SECONDS, EventWatch


class Store(
    IncidentQueries,
    IncidentChanges,
    RulesAndEvents,
    SampleQueries,
    Accounts,
    Channels,
    Outbox,
    Silences,
    Retention,
    DiscordMessages,
    Escalations,
    Digests,
    RuleStatsQueries,
):
    """Open with ``await Store.open(url)`` (or ``async with await Store.open(url) as store``);
    ``await store.close()`` releases every connection."""

    @classmethod
    async def open(cls, url: str, *, upgrade: bool | None = None) -> Store:
        """Connect and check the schema.

        ``upgrade=None`` (the default) migrates a SQLite file that is empty or behind this
        version of Vigil: one process owns it. A PostgreSQL database is shared, so it is
        migrated only on request (``upgrade=True`` or ``vigil db upgrade``); until then opening
        it raises ``VigilStorageError`` saying so. ``upgrade=False`` never migrates.
        """
        engine = create_engine(url)
        store = cls(engine)
        _check_sqlite_directory(engine)
        try:
            if upgrade is None:
                upgrade = store._dialect == "sqlite"
            await store._check_schema(upgrade=upgrade)
        except BaseException:
            await engine.dispose()
            raise
        return store

    async def close(self) -> None:
        self._closed = True
        await self._reader.close()
        await self._sample_writer.close()
        await self._engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def leadership(self) -> Leadership:
        """Who evaluates, for a monitor on this database: one monitor per SQLite file (a
        second is refused with ``MonitorRunningError``), a PostgreSQL advisory lock that
        another instance takes over when its holder dies, always this one for an in-memory
        database. Acquire it before evaluating; release it when done."""
        return leadership_for(self._engine.url)

    def watch_events(
        self, *, poll: float = POLL_SECONDS, recheck: float = RECHECK_SECONDS
    ) -> EventWatch:
        """Wake-ups for readers of the event log: with PostgreSQL, at once when another
        process commits events (LISTEN/NOTIFY) and every ``recheck`` seconds; with a SQLite
        file, within ``poll`` seconds of a process appending events (``log_version``) and
        every ``recheck`` seconds; otherwise every ``poll`` seconds. Use as ``async with
        store.watch_events() as watch: async for _ in watch: ...``."""
        return EventWatch(
            self._engine.url,
            poll=poll,
            recheck=recheck,
            version=self.log_version if self._signal is not None else None,
        )

    async def _check_schema(self, *, upgrade: bool) -> None:
        current = await migrate.current_revision(self._engine)
        head = migrate.HEAD
        if current == head:
            return
        if upgrade:
            await migrate.upgrade_engine(self._engine)
            return
        state = "has no Vigil schema" if current is None else f"is at revision {current}"
        raise VigilStorageError(
            f"the database {state}; this Vigil needs {head}: run `vigil db upgrade`"
        )


def _check_sqlite_directory(engine: AsyncEngine) -> None:
    """A SQLite file in a directory that does not exist cannot be created: say so before
    connecting. (aiosqlite's failed connect also leaves its worker thread to report back to
    the event loop later, which a caller that closes its loop at once then sees fail.)"""
    database = engine.url.database
    path = sqlite_path(database) if engine.dialect.name == "sqlite" else None
    if path is None:
        return
    directory = path.parent
    if not directory.is_dir():
        hint = " (SQLite does not expand ~: give the full path)" if "~" in directory.parts else ""
        raise VigilStorageError(
            f"cannot open the SQLite database {database}: the directory {directory} does not "
            f"exist{hint}"
        )
