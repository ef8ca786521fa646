"""A real dashboard for the browser tests: Vigil on SQLite with a scripted metric source and
a hand-driven clock, its app on uvicorn at 127.0.0.1 on an ephemeral port, in the test's own
event loop (Playwright's async API shares it), and users to sign in as."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from fastapi import FastAPI
from playwright.async_api import Browser, BrowserContext, Page, Playwright, expect

from vigil.core import Event, EventKind, Incident, Level, Rule, Severity, Status, resolve
from vigil.core.evaluation import CycleResult, message
from vigil.runtime import Vigil
from vigil.settings import Settings
from vigil.store import Store
from vigil.web import create_app
from vigil.web.accounts import add_user
from vigil.web.security import Passwords
from vigil.web.serve import VigilServer, server_for

from ..runtime.support import DEADLINE, Clock, Script, cycle, wait_until

PASSWORD = "correct horse battery"
SECRET = "e2e-secret-key-that-survives-restarts"
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
LATENCY = "gateway_latency"
MEMORY = "memory_usage"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"
TIMEOUT_MS = 30_000  # generous: reached only when the behaviour under test is broken
# Debian's headless shell (package chromium-headless-shell: Chromium's old headless mode, its
# engine without the desktop browser around it, as a program of its own), else its Chromium.
# The same browser tests cost Chromium 52 CPU-s in the shell against 120 in the full browser.
CHROMIUM_PATHS = ("/usr/bin/chromium-headless-shell", "/usr/bin/chromium")
CHROMIUM = os.environ.get("VIGIL_TEST_CHROMIUM") or next(
    (path for path in CHROMIUM_PATHS if os.access(path, os.X_OK)), CHROMIUM_PATHS[0]
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class SharedChromium:
    """The test process's one Chromium, launched again if it went away (crashed, or closed
    by a test): a lost browser fails the test it happened in, not every later one. A launch
    that failed is not tried again: every later test gets its error at once."""

    def __init__(self, playwright: Playwright) -> None:
        self._playwright = playwright
        self._browser: Browser | None = None
        self._failed: Exception | None = None

    async def current(self) -> Browser:
        if self._failed is not None:
            raise self._failed
        if self._browser is None or not self._browser.is_connected():
            try:
                self._browser = await self._playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
            except Exception as exc:
                self._failed = exc
                raise
        return self._browser

    async def close(self) -> None:
        if self._browser is not None and self._browser.is_connected():
            await self._browser.close()


class _QuietServer(VigilServer):
    """The tests run in the main thread: leave pytest's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Dashboard:
    url: str
    database_url: str
    script: Script = field(default_factory=Script)
    clock: Clock = field(default_factory=Clock)
    vigil: Vigil | None = None
    app: FastAPI | None = None
    _server: VigilServer | None = None
    _task: asyncio.Task[None] | None = None
    _port: int = 0

    @property
    def running(self) -> Vigil:
        assert self.vigil is not None
        return self.vigil

    def settings(self) -> Settings:
        return Settings(
            database_url=self.database_url,
            interval=3600,  # the test drives the cycles
            instance="e2e",
            secret_key=SECRET,
            host="127.0.0.1",
            port=self._port or 8000,
        )

    async def start(self, *, port: int = 0) -> None:
        # Without the process's own sources: the loop's real lag would be this test loop's,
        # busy with a browser. The script says what the event loop lag is, like every other
        # reading.
        vigil = Vigil(
            self.settings(), sources=[self.script], process_metrics=False, clock=self.clock
        )
        await vigil.start()
        await wait_until(lambda: vigil.monitor.status().cycles >= 1)
        self.vigil = vigil
        self.app = create_app(vigil, password_hasher=CHEAP_HASHER)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        self._port = listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self._port}"
        base = server_for(self.app, host="127.0.0.1", port=self._port, log_level="warning")
        self._server = _QuietServer(base.config, app=self.app, vigil=None)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[listener]))
        server, task = self._server, self._task
        await wait_until(lambda: server.started or task.done())
        assert server.started, task.exception() if task.done() else "not started"

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, DEADLINE)
        if self.vigil is not None:
            await self.vigil.aclose()
        self._server = self._task = self.vigil = self.app = None

    async def start_again(self) -> None:
        """After ``stop()``: Vigil and the server again, on the same port and database."""
        await self.start(port=self._port)

    async def add_users(self) -> None:
        passwords = Passwords(CHEAP_HASHER)
        store = self.running.store
        await add_user(store, "ana", role="admin", password=PASSWORD, passwords=passwords)
        await add_user(store, "vic", role="viewer", password=PASSWORD, passwords=passwords)

    async def cycle(self, values: Mapping[str, float | None]) -> list[Event]:
        return await cycle(self.running, self.clock, values, self.script)

    async def breach(self, metric: str, value: float, *, times: int = 2) -> Incident:
        """Readings past a threshold until the monitor opens (or escalates) an incident."""
        events: list[Event] = []
        for _ in range(times):
            events += await self.cycle({metric: value})
        incidents = [event.incident for event in events if event.incident is not None]
        assert incidents, f"{times} readings of {value} opened no incident on {metric}"
        return incidents[-1]

    async def recover(self, metric: str, value: float, *, times: int = 3) -> None:
        for _ in range(times):
            await self.cycle({metric: value})


@contextlib.asynccontextmanager
async def dashboard(database_url: str) -> AsyncIterator[Dashboard]:
    board = Dashboard(url="", database_url=database_url)
    await board.start()
    try:
        await board.add_users()
        yield board
    finally:
        await board.stop()


# -- the browser side ---------------------------------------------------------------------------


@dataclass
class Tab:
    """A signed-in page, with every console error and uncaught exception it saw."""

    page: Page
    context: BrowserContext
    errors: list[str] = field(default_factory=list)

    def assert_clean(self, *, allow: tuple[str, ...] = ()) -> None:
        unexpected = [e for e in self.errors if not any(part in e for part in allow)]
        assert unexpected == [], unexpected


async def new_tab(
    browser: Browser, *, scheme: str = "light", javascript: bool = True, width: int = 1280
) -> Tab:
    context = await browser.new_context(
        viewport={"width": width, "height": 900},
        color_scheme=scheme,  # type: ignore[arg-type]
        java_script_enabled=javascript,
        timezone_id="Europe/Paris",
        locale="en-GB",
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    tab = Tab(page, context)
    page.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: tab.errors.append(f"uncaught: {exc}"))
    return tab


async def sign_in(tab: Tab, board: Dashboard, name: str, *, path: str = "/alerts") -> None:
    """Through the sign-in form, as a person would; lands on ``path``."""
    page = tab.page
    await page.goto(f"{board.url}{path}")
    await expect(page).to_have_url(f"{board.url}/login?next={path.replace('?', '%3F')}")
    await page.get_by_label("User name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{board.url}{path}")
    # The address changes when the new page's response arrives, before its document exists.
    await page.wait_for_load_state("domcontentloaded")


async def wait_live(page: Page) -> None:
    await expect(page.locator("#live")).to_have_attribute("data-state", "live")


def screenshot_path(name: str, scheme: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{name}-{scheme}.png"


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait until ``check()`` holds (the database seeing a browser's change), polling with
    a generous deadline."""

    async def poll() -> None:
        while not await check():  # noqa: ASYNC110 - a condition over the database: poll it
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), DEADLINE)


# -- a month of history and an hour of readings, for the screenshots -------------------------

BASELINE = {
    "gateway_latency": 62.0,
    "command_p95_latency": 180.0,
    "error_rate": 0.3,
    "memory_usage": 310.0,
    "api_rate_limit_usage": 40.0,
    "api_rate_limit_hits": 0.0,
    "database_query_time": 12.0,
    "event_loop_lag": 4.0,
    "bot_disconnected": 0.0,
}


async def past_incident(
    store: Store,
    rule: Rule,
    *,
    severity: Severity,
    at: datetime,
    lasted: timedelta,
    auto: bool,
    overshoot: float = 1.1,
) -> Incident:
    """An incident of the past, committed as the monitor and an admin would have: opened
    with the rule's real threshold and message, then resolved (on its own, or by hand)."""
    threshold = rule.critical if severity is Severity.CRITICAL else rule.warning
    assert threshold is not None, f"{rule.metric} has no {severity} threshold"
    value = threshold * overshoot if rule.direction == "above" else threshold / overshoot
    opened = Incident(
        id=uuid.uuid4(),
        metric=rule.metric,
        severity=severity,
        status=Status.ACTIVE,
        triggered_at=at,
        threshold=threshold,
        value=value,
        peak_value=value * 1.05,
        last_value=value,
        message=message(rule, Level(severity.value), value, threshold),
    )
    event = Event.for_incident(EventKind.INCIDENT_OPENED, opened, at=at)
    [stored] = await store.commit_cycle(samples=[], result=CycleResult(events=[event]), now=at)
    assert stored.incident is not None
    end = at + lasted
    if not auto:
        manual, _ = await store.resolve_incident(stored.incident.id, by="ana", now=end)
        return manual
    _, closing = resolve(stored.incident, now=end)
    [done] = await store.commit_cycle(samples=[], result=CycleResult(events=[closing]), now=end)
    assert done.incident is not None
    return done.incident


async def populate(board: Dashboard) -> None:
    """A believable state: 40 past incidents over a month, then an hour of readings in which
    the database slows down and recovers on its own, memory crosses its warning threshold
    (then acknowledged with a note) and the gateway latency goes critical. (Service failure
    comes from Vigil's own health source.)"""
    rng = random.Random(7)
    store = board.running.store
    now = board.clock.now
    rules = [rule for rule in board.running.view.rules.values() if rule.warning is not None]
    for n in range(40):
        await past_incident(
            store,
            rng.choice(sorted(rules, key=lambda rule: rule.metric)),
            severity=Severity.CRITICAL if rng.random() < 0.3 else Severity.WARNING,
            at=now - timedelta(days=30) + timedelta(hours=17 * n + rng.random() * 5),
            lasted=timedelta(minutes=rng.randint(2, 90)),
            auto=rng.random() < 0.75,
            overshoot=rng.uniform(1.02, 1.3),
        )
    for step in range(120):
        values = {m: max(0.0, v * (1 + rng.uniform(-0.15, 0.15))) for m, v in BASELINE.items()}
        values["bot_disconnected"] = 0.0
        if 40 <= step < 43:
            values["database_query_time"] = 60.0 + step
        if step >= 95:
            values["memory_usage"] = 405.0 + (step - 95) * 1.5
        if step >= 112:
            values["gateway_latency"] = 215.0 + rng.uniform(0, 30)
        await board.cycle(values)
    memory = [i for i in board.running.view.active() if i.metric == MEMORY]
    assert memory, "the readings opened no memory incident"
    await board.running.acknowledge(
        memory[0].id, by="ana", notes="Cache grows after the 2.4 deploy; restarting shard 3"
    )
