"""Alembic environment.

Vigil runs migrations from code (``vigil.store.migrate``), handing a connection in
``config.attributes["connection"]``. The ``alembic`` command line, for writing a new revision,
uses ``-c src/vigil/store/migrations/alembic.ini`` and reads ``VIGIL_DATABASE_URL``.
Logging is left alone: the host application owns it.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from vigil.store.models import Base

target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_settings() -> None:
    from vigil.settings import Settings
    from vigil.store.engine import create_engine

    engine = create_engine(Settings.from_env().database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


def main() -> None:
    if context.is_offline_mode():
        raise SystemExit("Vigil's migrations run online only (vigil db upgrade)")
    connection = context.config.attributes.get("connection")
    if connection is None:
        asyncio.run(_run_from_settings())
    else:
        run_migrations(connection)


main()
