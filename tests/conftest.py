"""Shared fixtures: real databases. PostgreSQL tests skip with instructions on a machine
without it, and fail under CI=true, where a missing database is a broken environment."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import sqlite3
import sys
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

# The receivers' fixtures (webhook, smtp) serve the sender tests in tests/notify and the
# dispatcher tests in tests/runtime.
pytest_plugins = ["tests.notify.receiver"]

POSTGRES_ADMIN_URL = os.environ.get(
    "VIGIL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _unavailable(what: str, how: str) -> None:
    message = f"{what} is not available: {how}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: this must not be skipped)", pytrace=False)
    pytest.skip(message)


async def _admin(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=10)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextlib.contextmanager
def _postgres_database(purpose: str) -> Iterator[str]:
    """A new PostgreSQL database for this run (named by process, so parallel runs and workers
    never share one), dropped at the end; as an asyncpg SQLAlchemy URL."""
    name = f"vigil_test_{os.getpid()}_{purpose}_{secrets.token_hex(4)}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, ImportError) as exc:
        _unavailable(
            f"PostgreSQL at {POSTGRES_ADMIN_URL}",
            f"{exc}. Start it (pg_ctlcluster <version> main start) or point "
            "VIGIL_TEST_POSTGRES_URL at a server where the user may create databases.",
        )
    base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
    try:
        yield base.replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _reset_postgres(url: str) -> None:
    """Empty a database: one schema dropped and recreated is far cheaper than a database per
    test, and just as clean."""
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database for this test run, as an asyncpg SQLAlchemy URL: fresh and empty
    at first; a test that needs it empty again resets it (``database_url`` does)."""
    with _postgres_database("empty") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh, empty SQLite database file for one test."""
    return f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}"


# -- migrated databases: migrated once per run, then copied (SQLite) or emptied (PostgreSQL) ----
#
# Running the migrations costs 0.1-0.4 s a test; copying a migrated file or truncating the
# tables costs a few milliseconds. A test that needs an EMPTY database (a migration test) asks
# for ``database_url``, ``sqlite_url`` or ``postgres_url`` alone and still gets one. A test (or a
# fixture it uses, such as ``store`` or ``api``) that asks for ``migrated_url`` gets a migrated
# database, and then ``database_url`` is that same database: a test may read through its own
# connection the schema its ``store`` sees.


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated for the run (schema and default rules), to copy per test."""
    from vigil.store import Store

    path = tmp_path_factory.mktemp("template") / "vigil.db"

    async def migrate() -> None:
        await (await Store.open(f"sqlite+aiosqlite:///{path}", upgrade=True)).close()

    asyncio.run(migrate())
    with contextlib.closing(sqlite3.connect(path)) as connection:
        # Everything into the main file, so the file alone is the whole database.
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def migrated_sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A SQLite database for one test with Vigil's schema and default rules: a copy of the
    run's migrated template file."""
    path = tmp_path / "vigil.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


# The schema of a PostgreSQL database, to tell whether a test changed it (a downgrade, a
# table of its own): what the tables, columns, indexes, constraints, types, functions and
# triggers are, and the Alembic revision. Rows are not part of it.
_SCHEMA_FINGERPRINT = """
SELECT md5(coalesce(string_agg(item, '|' ORDER BY item), '')) FROM (
    SELECT format('column %s.%s %s %s %s', table_name, column_name, data_type, is_nullable,
                  column_default) AS item
      FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL SELECT format('index %s', indexdef) FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL SELECT format('constraint %s %s', conname, pg_get_constraintdef(oid))
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL SELECT format('type %s', typname)
      FROM pg_type WHERE typnamespace = 'public'::regnamespace
    UNION ALL SELECT format('function %s', oid::regprocedure)
      FROM pg_proc WHERE pronamespace = 'public'::regnamespace
    UNION ALL SELECT format('trigger %s %s', tgname, tgrelid::regclass)
      FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL SELECT format('sequence %s', sequencename) FROM pg_sequences
      WHERE schemaname = 'public'
    UNION ALL SELECT format('revision %s', version_num) FROM alembic_version
) AS schema
"""


_TABLES = """
SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'
"""
_FOREIGN_KEYS = """
SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint
 WHERE contype = 'f' AND connamespace = 'public'::regnamespace
"""


def _children_first(tables: list[str], references: list[tuple[str, ...]]) -> list[str]:
    """The tables ordered so that each comes before every table it references."""
    ordered: list[str] = []
    seen: set[str] = set()

    def visit(table: str) -> None:  # the tables that reference it first, then itself
        if table in seen:
            return
        seen.add(table)
        for child, parent in references:
            if parent == table and child != table:
                visit(child)
        ordered.append(table)

    for table in sorted(tables):
        visit(table)
    return ordered


class MigratedPostgres:
    """The run's second PostgreSQL database, migrated once. Before each test its tables are
    emptied and what the migrations seeded (the default rules) is put back, as it was right
    after migrating; a test that changed the schema itself leaves it to be migrated again."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._fingerprint = ""
        self._tables: list[str] = []
        self._seeded: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        self._sequences: list[tuple[str, int, bool]] = []

    def _dsn(self) -> str:
        return self.url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def migrate(self) -> None:
        """Drop everything, run the migrations, and note what a fresh database holds."""
        import asyncpg

        from vigil.store import Store

        await _reset_postgres(self.url)
        await (await Store.open(self.url, upgrade=True)).close()
        connection = await asyncpg.connect(self._dsn())
        try:
            self._fingerprint = await connection.fetchval(_SCHEMA_FINGERPRINT)
            # Children before parents, so each DELETE leaves no row pointing at a deleted one.
            self._tables = _children_first(
                [row["tablename"] for row in await connection.fetch(_TABLES)],
                [tuple(row) for row in await connection.fetch(_FOREIGN_KEYS)],
            )
            self._seeded = {}
            for table in self._tables:
                rows = await connection.fetch(f'SELECT * FROM "{table}"')
                if rows:
                    self._seeded[table] = (list(rows[0].keys()), [tuple(row) for row in rows])
            self._sequences = [
                (f'"{row["schemaname"]}"."{row["sequencename"]}"', row["value"], row["called"])
                for row in await connection.fetch(
                    "SELECT schemaname, sequencename, "
                    "coalesce(last_value, start_value) AS value, last_value IS NOT NULL AS called "
                    "FROM pg_sequences WHERE schemaname = 'public'"
                )
            ]
        finally:
            await connection.close()

    async def reset(self) -> None:
        """The database as the migrations left it: every table emptied (but alembic_version),
        the seeded rows inserted again, the sequences where they were. DELETE rather than
        TRUNCATE: on these few small tables it takes 2 ms where TRUNCATE takes 0.1-0.25 s."""
        import asyncpg

        connection = await asyncpg.connect(self._dsn())
        try:
            try:
                intact = await connection.fetchval(_SCHEMA_FINGERPRINT) == self._fingerprint
            except asyncpg.PostgresError:  # no alembic_version: the test dropped the schema
                intact = False
            if intact:
                async with connection.transaction():
                    for table in self._tables:
                        await connection.execute(f'DELETE FROM "{table}"')
                    for table, (columns, rows) in self._seeded.items():
                        await connection.copy_records_to_table(table, records=rows, columns=columns)
                    for sequence, value, called in self._sequences:
                        await connection.execute(
                            "SELECT setval($1::regclass, $2, $3)", sequence, value, called
                        )
        finally:
            await connection.close()
        if not intact:
            await self.migrate()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[MigratedPostgres]:
    """A PostgreSQL database of this run kept migrated, apart from ``postgres_url`` (which
    tests may leave in any state)."""
    with _postgres_database("migrated") as url:
        database = MigratedPostgres(url)
        asyncio.run(database.migrate())
        yield database


@pytest.fixture
async def migrated_postgres_url(postgres_template: MigratedPostgres) -> str:
    """A PostgreSQL database with Vigil's schema and default rules, and nothing else."""
    await postgres_template.reset()
    return postgres_template.url


DATABASES = ("sqlite", pytest.param("postgres", marks=pytest.mark.postgres))


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C as from a terminal. A suite started in the background (``make test &``,
    ``nohup``, a runner without job control) inherits SIGINT ignored, and so would every
    process it starts: a server the Ctrl-C tests stop then shuts down on SIGINT, but
    uvicorn's re-raised SIGINT is ignored, so ``vigil serve`` exits 0, not 130
    (tests/cli/test_serve.py), and ``vigil demo`` never says it stopped
    (tests/demo/test_server.py)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test with a database runs on each kind, or on SQLite alone when it is marked
    ``sqlite_only``: the mark is for tests whose subject is above the store (a page, a form, a
    route's checks), since tests/store holds each database to the same contract. Tests of what
    a database does differently (concurrency, streams, history reads, crashes) run on both."""
    if "database_kind" in metafunc.fixturenames:
        only = metafunc.definition.get_closest_marker("sqlite_only") is not None
        metafunc.parametrize("database_kind", DATABASES[:1] if only else DATABASES, indirect=True)


@pytest.fixture
def database_kind(request: pytest.FixtureRequest) -> tuple[str, str]:
    """The test's database (see ``pytest_generate_tests``): an empty one, or a migrated one when
    the test uses ``migrated_url``. Synchronous on purpose: the session fixtures run their own
    event loop."""
    migrated = "migrated_url" in request.fixturenames
    if request.param == "sqlite":
        fixture = "migrated_sqlite_url" if migrated else "sqlite_url"
        return request.param, request.getfixturevalue(fixture)
    if migrated:
        template: MigratedPostgres = request.getfixturevalue("postgres_template")
        return request.param, template.url
    return request.param, request.getfixturevalue("postgres_url")


@pytest.fixture
async def database_url(database_kind: tuple[str, str], request: pytest.FixtureRequest) -> str:
    """The test's database of each kind: empty, unless the test also uses ``migrated_url``
    (directly or through a fixture such as ``store``), which makes it that migrated database."""
    kind, url = database_kind
    if kind == "postgres":
        if "migrated_url" in request.fixturenames:
            await request.getfixturevalue("postgres_template").reset()
        else:
            await _reset_postgres(url)
    return url


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    """A database of each kind with Vigil's schema and default rules (see ``database_url``)."""
    return database_url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first: with several workers (pytest-xdist) each long test then runs
    beside the others rather than last and alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """What an ``untraced`` module's collectors make is made without coverage's tracer: the
    schema fuzzing's collector (tests/web/test_schemathesis.py) computes every operation's
    boundary cases there, which under the tracer was half of each worker's collection. The
    module itself is imported traced, since importing runs Vigil's module-level code."""
    if isinstance(collector, pytest.Module) or collector.get_closest_marker("untraced") is None:
        return (yield)
    with _untraced():
        return (yield)


@contextlib.contextmanager
def _untraced() -> Iterator[None]:
    """This thread, and the threads it starts, without coverage's tracer (if it runs)."""
    tracer = sys.gettrace()
    if tracer is None:
        yield
        return
    installer = threading.gettrace()
    sys.settrace(None)
    threading.settrace(None)
    try:
        yield
    finally:
        threading.settrace(installer)
        sys.settrace(tracer)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A test marked ``untraced`` runs its own thread (and the threads it starts) without
    coverage's line tracer, which made the property-based tests two to three times slower.
    The mark goes on a test that reaches no line the other tests do not (``--cov-context=test``
    tells): a property test whose cases the table tests cover, or the schema fuzzing (whose
    server thread, started by a fixture before the test, stops its own tracer:
    tests/web/test_schemathesis.py). A test that reaches what nothing else does stays traced
    until a table test covers that. Without coverage there is nothing to pause."""
    if item.get_closest_marker("untraced") is None:
        return (yield)
    with _untraced():
        return (yield)
