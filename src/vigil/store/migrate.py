"""Alembic, run from code: the migrations ship inside the package, no alembic.ini needed.

Alembic is imported only to migrate or to read the scripts: opening a store that is up to date
compares the database's revision with ``HEAD``, which spares every ``vigil`` command loading it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from vigil.store.engine import SQLITE_BEGIN, create_engine
from vigil.store.errors import translated_errors

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
# The newest migration's revision. A new migration changes it too (a test compares it with the
# scripts, and names the value it should have).
HEAD = "0014"
# Where Alembic keeps a database's revision.
VERSION_TABLE = "alembic_version"
# Two instances upgrading one PostgreSQL database at once take turns on this lock.
MIGRATION_LOCK_KEY = 0x56494749_4C4D4947  # "VIGILMIG"


def config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The newest revision as the migration scripts say (``HEAD`` says it without them)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(config()).get_current_head()
    assert head is not None
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    """The database's revision; ``None`` for a database Vigil never migrated."""

    def read(connection: Connection) -> str | None:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        query = text(f"SELECT version_num FROM {VERSION_TABLE}")
        revision: str | None = connection.execute(query).scalar_one_or_none()
        return revision

    with translated_errors("reading the schema revision"):
        async with engine.connect() as connection:
            return await connection.run_sync(read)


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    await _run(engine, "upgrade", revision)


async def upgrade(url: str, revision: str = "head") -> str | None:
    """Migrate the database at ``url`` up to ``revision``; returns the revision reached."""
    return await _with_engine(url, "upgrade", revision)


async def downgrade(url: str, revision: str) -> str | None:
    """Migrate down to ``revision`` (``base`` drops every Vigil table)."""
    return await _with_engine(url, "downgrade", revision)


async def current(url: str) -> str | None:
    engine = create_engine(url)
    try:
        return await current_revision(engine)
    finally:
        await engine.dispose()


async def _with_engine(url: str, action: str, revision: str) -> str | None:
    engine = create_engine(url)
    try:
        await _run(engine, action, revision)
        return await current_revision(engine)
    finally:
        await engine.dispose()


async def _run(engine: AsyncEngine, action: str, revision: str) -> None:
    with translated_errors(f"{action} to {revision}"):
        async with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                connection = await connection.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
            async with connection.begin():
                await connection.run_sync(_run_sync, action, revision)


def _run_sync(connection: Connection, action: str, revision: str) -> None:
    from alembic import command

    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
    cfg = config()
    cfg.attributes["connection"] = connection
    if action == "upgrade":
        command.upgrade(cfg, revision)
    else:
        command.downgrade(cfg, revision)
