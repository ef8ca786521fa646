"""Prepared statements for SQLite transactions run in the driver's thread (``_own.drive``).

SQLAlchemy's execution of a cached statement still costs about ten times what SQLite takes
to run it: an execution context, parameter and result processing, events, a result object, a
greenlet switch. A monitor cycle that opens or resolves an incident runs some fifteen
statements, so that overhead was most of the time from the cycle's start to its commit, and so
to its notification. A statement marked with ``prepared`` is compiled by SQLAlchemy once per
shape (the parameter names given, the length of each expanding ``IN`` list) for the engine's
dialect; inside a driven transaction it then runs on the sqlite3 connection directly, its
parameters and rows converted by the very processors SQLAlchemy's types give. Everything else
(another dialect, a statement not marked, an empty ``IN`` list) runs through SQLAlchemy, so a
statement is written once for both databases and reads the same either way.
"""

from __future__ import annotations

import re
import sqlite3
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, Result
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement

_S = TypeVar("_S", bound=ClauseElement)

# Statements marked ``prepared``, with their compiled forms by shape.
_PREPARED: weakref.WeakKeyDictionary[ClauseElement, dict[Any, _Plan | None]] = (
    weakref.WeakKeyDictionary()
)
_TOKEN = re.compile(r"\?|__\[POSTCOMPILE_(\w+)\]")


def prepared(statement: _S) -> _S:
    """Mark a statement built once (a module constant, or one ``StoreBase._built`` keeps) to
    run as a prepared statement in driven SQLite transactions. Returns it, unchanged."""
    _PREPARED.setdefault(statement, {})
    return statement


Processor = Callable[[Any], Any] | None
_REQUIRED = object()


@dataclass(frozen=True, slots=True)
class _Plan:
    """One shape of a prepared statement: its SQL text and how to fill its ``?``s."""

    sql: str
    # Per parameter, in order: its name, whether it expands (a ``?`` per element of its
    # list), the value the statement carries (``_REQUIRED``: none) and its bind processor.
    binds: tuple[tuple[str, bool, Any, Processor], ...]
    keys: tuple[str, ...]  # the result's columns (none: no rows)
    results: tuple[Processor, ...]

    def positional(self, parameters: Mapping[str, Any]) -> list[Any]:
        out: list[Any] = []
        for name, expanding, fixed, process in self.binds:
            value = parameters[name] if name in parameters else fixed
            if value is _REQUIRED:
                raise sa_exc.InvalidRequestError(f"a value is required for {name!r}")
            if expanding:
                out.extend(value if process is None else [process(v) for v in value])
            else:
                out.append(value if process is None else process(value))
        return out


def _plan(
    statement: ClauseElement, dialect: Dialect, keys: Sequence[str], sizes: Mapping[str, int]
) -> _Plan | None:
    """The shape of ``statement`` given parameters ``keys`` and lists of ``sizes``; ``None``
    when its SQL is not one ``?`` or expanding list per parameter (left to SQLAlchemy)."""
    compiled: Any = statement.compile(dialect=dialect, column_keys=list(keys))
    names = list(compiled.positiontup or ())
    pieces = _TOKEN.split(compiled.string)
    # split() with one group: text, name-or-None, text, ...: one marker per positional name.
    markers = pieces[1::2]
    if len(markers) != len(names) or compiled.insert_prefetch or compiled.update_prefetch:
        return None  # or a column's default made in Python, at execution: SQLAlchemy's
    binds = []
    sql = [pieces[0]]
    for index, (name, marker) in enumerate(zip(names, markers, strict=True)):
        bind = compiled.binds[name]
        expanding = marker is not None
        if (expanding and marker != name) or bind.callable is not None:
            return None
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        fixed: Any = _REQUIRED if bind.required else bind.value
        if expanding:  # a list given, or the statement's own (``in_((1, 2))``)
            size = sizes.get(name, 0 if fixed is _REQUIRED else len(fixed))
            if not size:
                return None  # SQLAlchemy renders an empty IN of its own
            sql.append(", ".join("?" * size))
        else:
            sql.append("?")
        sql.append(pieces[2 * index + 2])
        binds.append((name, expanding, fixed, process))
    # A select's columns, or what an insert, update or delete returns (none: no rows).
    columns = list(getattr(statement, "exported_columns", ()))
    return _Plan(
        sql="".join(sql),
        binds=tuple(binds),
        keys=tuple(
            column.key if column.key is not None else f"column_{n}"
            for n, column in enumerate(columns)
        ),
        results=tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ),
    )


class DrivenConnection:
    """An ``AsyncConnection`` of a driven SQLite transaction whose prepared statements run on
    the sqlite3 connection ``raw`` directly; anything else goes to ``connection``."""

    def __init__(self, connection: AsyncConnection, raw: sqlite3.Connection) -> None:
        self._connection = connection
        self._raw = raw
        self._dialect = connection.dialect

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    async def execute(self, statement: Any, parameters: Any = None, **options: Any) -> Any:
        result = self._run(statement, parameters) if not options else None
        if result is None:
            return await self._connection.execute(statement, parameters, **options)
        return result

    async def scalars(self, statement: Any, parameters: Any = None, **options: Any) -> Any:
        return (await self.execute(statement, parameters, **options)).scalars()

    async def scalar(self, statement: Any, parameters: Any = None, **options: Any) -> Any:
        return (await self.execute(statement, parameters, **options)).scalar()

    def _run(self, statement: Any, parameters: Any) -> Result[Any] | None:
        shapes = _PREPARED.get(statement) if isinstance(statement, ClauseElement) else None
        if shapes is None:
            return None
        many = isinstance(parameters, list)
        rows_of = parameters if many else [parameters or {}]
        if not rows_of:
            return None
        first = rows_of[0]
        # A list is an expanding IN's (or a JSON value's: a shape of its own all the same).
        sizes = {name: len(v) for name, v in first.items() if isinstance(v, list | tuple)}
        shape = (tuple(first), tuple(sorted(sizes.items())), many)
        if shape not in shapes:
            shapes[shape] = _plan(statement, self._dialect, list(first), sizes)
        plan = shapes[shape]
        if plan is None or (many and plan.keys):
            return None  # RETURNING for many rows too: SQLAlchemy's own batching
        positional = [plan.positional(p) for p in rows_of] if many else plan.positional(first)
        # Seen by the engine's cursor listeners, as every statement SQLAlchemy runs is.
        sync: Any = self._connection.sync_connection
        events = sync.dispatch
        try:
            cursor = self._raw.cursor()
            try:
                if events.before_cursor_execute:
                    events.before_cursor_execute(sync, cursor, plan.sql, positional, None, many)
                if many:
                    cursor.executemany(plan.sql, positional)
                    fetched: list[Any] = []
                else:
                    cursor.execute(plan.sql, positional)
                    fetched = cursor.fetchall() if plan.keys else []
                if events.after_cursor_execute:
                    events.after_cursor_execute(sync, cursor, plan.sql, positional, None, many)
            finally:
                cursor.close()
        except sqlite3.Error as error:
            raise sa_exc.DBAPIError.instance(plan.sql, positional, error, sqlite3.Error) from error
        if not plan.keys:
            return IteratorResult(SimpleResultMetaData(()), iter(()))
        results = plan.results
        rows = [
            tuple(v if p is None else p(v) for v, p in zip(row, results, strict=True))
            for row in fetched
        ]
        return IteratorResult(SimpleResultMetaData(plan.keys), iter(rows))
