"""Schemathesis against the app's own OpenAPI schema, as an admin, over real HTTP.

Bounded (a few dozen examples per operation): no 5xx, and every response matches what the
schema says (status, content type, headers, body), on SQLite and PostgreSQL: each request is
generated once and sent to both. Each server runs Vigil in a thread of its own with its own
event loop; Schemathesis calls it with requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import schemathesis.checks
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.core.parameters import ParameterLocation

from vigil.core import Rule
from vigil.runtime import Vigil
from vigil.settings import Settings
from vigil.store import Store
from vigil.web import create_app

from .support import DEADLINE, LATENCY, running_api, served

# Neither thread runs under coverage's tracer (tests/conftest.py): the test's own only generates
# requests and checks answers, and the server's reaches no line that other tests do not (those
# it alone reached have tests of their own: followups, group filters, error counts, exported
# thresholds, the series sweep).
pytestmark = pytest.mark.untraced

MEMORY = "memory_usage"
RULES = (
    {"name": "slow_and_failing", "kind": "composite", "condition": "error_rate >= 5"},
    {"name": "heartbeat", "kind": "absent", "metric": "cron_heartbeat", "absent_for": 60},
    {"name": "shards", "metric": LATENCY, "critical": 300, "split_by": "instance"},
)


class ServerThread:
    """A real Vigil with some incidents, and the API on uvicorn, in a background thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.base = ""
        self.tokens: dict[str, str] = {}
        # Operations whose authentication was seen enforced here (``_excluded_checks``).
        self.auth_enforced: set[str] = set()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="vigil-api-under-test")

    def __enter__(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(DEADLINE):
            raise TimeoutError("the API did not start")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(DEADLINE)
        assert not self._thread.is_alive()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        sys.settrace(None)  # untraced, as the tests that call it (pytestmark)
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        store = await Store.open(self.url, upgrade=True)
        await store.close()
        async with running_api(self.url) as api:
            await api.breach(LATENCY, 150)
            await api.cycle({LATENCY: 150, MEMORY: 500})
            await api.cycle({LATENCY: 150, MEMORY: 500})
            for _ in range(3):
                await api.cycle({MEMORY: 10})  # memory recovers on its own
            for rule in RULES:  # every kind, for the rules routes to read and change
                await api.vigil.add_rule(Rule.from_dict(rule), by="ana")
            async with served(api.app) as (base, _):
                self.base, self.tokens = base, api.tokens
                self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
                self._ready.set()
                await self._stop.wait()


async def _empty_postgres(url: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServerThread]]:
    """The API on SQLite and on PostgreSQL, by kind: every generated request goes to both, so
    the requests are generated once (the generation is most of this module's work). Without
    a PostgreSQL server (and not under CI) only SQLite's: then
    ``test_the_fuzzing_reaches_postgresql`` skips and says how to enable it."""
    path: Path = tmp_path_factory.mktemp("schemathesis") / "vigil.db"
    urls = {"sqlite": f"sqlite+aiosqlite:///{path}"}
    try:
        urls["postgres"] = request.getfixturevalue("postgres_url")
    except pytest.skip.Exception:
        pass
    else:
        asyncio.run(_empty_postgres(urls["postgres"]))
    with contextlib.ExitStack() as running:
        yield {kind: running.enter_context(ServerThread(url)) for kind, url in urls.items()}


@pytest.mark.postgres
def test_the_fuzzing_reaches_postgresql(
    servers: dict[str, ServerThread], postgres_url: str
) -> None:
    assert servers["postgres"].url == postgres_url


def _excluded_checks(server: ServerThread, case: Case[Any]) -> list[Any]:
    """The checks not run on ``case``'s answer from ``server``. Every other check runs.

    - ``positive_data_acceptance`` expects any schema-valid request to succeed, but some are
      refused by rules a JSON schema cannot state: a rule's warning below its critical, a
      cursor this server issued, a password that matches (422 or 401).
    - ``ignored_auth`` sends a successful request again without credentials and with wrong
      ones. Enforcement is a property of the operation, not of a payload, so Schemathesis's
      own runner makes these probes once per operation; a test that calls
      ``call_and_validate`` itself has no runner, and would make them for every success. So
      they are made until they pass once for the operation on this server
      (``_confirm_auth``)."""
    excluded = [schemathesis.checks.positive_data_acceptance]
    if case.operation.label in server.auth_enforced:
        excluded.append(schemathesis.checks.ignored_auth)
    return excluded


def _confirm_auth(server: ServerThread, case: Case[Any], status: int) -> None:
    """After ``case``'s checks passed on ``server``: ``ignored_auth`` probed the operation
    and found its authentication enforced if the answer was a success to a request with a
    valid path (a negative path parameter may miss the operation's route, so that check
    makes no probe then)."""
    negative_path = case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH)
    if 200 <= status < 300 and not negative_path:
        server.auth_enforced.add(case.operation.label)


def _on_each(servers: dict[str, ServerThread], call: Callable[[ServerThread], None]) -> None:
    """``call`` for each server in turn; a failure names the database it failed on."""
    for kind, server in servers.items():
        try:
            call(server)
        except Exception as exc:
            exc.add_note(f"(Vigil on {kind})")
            raise


def _openapi() -> dict[str, Any]:
    """The schema as the app publishes it (building the app needs no running Vigil)."""
    vigil = Vigil(Settings(database_url="sqlite+aiosqlite://", secret_key="s" * 32))
    return create_app(vigil).openapi()


schema = schemathesis.openapi.from_dict(_openapi()).exclude(
    path="/api/events"  # a stream that never ends; tests/web/test_live.py covers it
)


# derandomize: the same examples every run (a fixed seed per test), so CI is repeatable and a
# failure reproduces; database=None: no replay of examples saved by earlier local runs.
@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_api_honours_its_own_schema(case: Case[Any], servers: dict[str, ServerThread]) -> None:
    role = "ingest" if case.path == "/api/ingest" else "admin"

    def call(server: ServerThread) -> None:
        response = case.call_and_validate(
            base_url=server.base,
            headers={"Authorization": f"Bearer {server.tokens[role]}"},
            excluded_checks=_excluded_checks(server, case),
        )
        _confirm_auth(server, case, response.status_code)

    _on_each(servers, call)


def test_call_sequences_honour_the_schema(servers: dict[str, ServerThread]) -> None:
    """Stateful: responses feed later requests (an incident id from the active list into
    acknowledge and resolve, a metric into its rule), with the same checks."""
    _on_each(servers, _run_call_sequences)


def _run_call_sequences(server: ServerThread) -> None:
    machine: Any = schema.as_state_machine()

    class Workflow(machine):  # type: ignore[misc]
        def get_call_kwargs(self, case: Case[Any]) -> dict[str, Any]:
            role = "ingest" if case.path == "/api/ingest" else "admin"
            return {
                "base_url": server.base,
                "headers": {"Authorization": f"Bearer {server.tokens[role]}"},
            }

        def validate_response(
            self, response: Any, case: Case[Any], additional_checks: Any = None, **kwargs: Any
        ) -> None:
            case.validate_response(
                response,
                excluded_checks=_excluded_checks(server, case),
                transport_kwargs=kwargs,
            )
            _confirm_auth(server, case, response.status_code)

    Workflow.run(
        settings=settings(
            max_examples=15,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
