"""Alerts page benchmark: the server's time to render ``/alerts`` with 1,000,000 incidents in
history, against the sum of the API requests that return the same data.

The page is built from the API's own reads (summary, active incidents, rules with current
values, the first history page, auto-recoveries, 30 days of frequency, the open and resolved
incident groups, the noisiest rules) and makes them concurrently, so it should cost no more
than those requests made one after another. Both sides are timed cold (the read cache
emptied before each request, so every database read really runs) and warm (cache hits, as
between two monitor cycles). Prints medians in ms and the ratio page / sum of the API
requests (target: <= 1.0).

    python benchmarks/bench_pages.py [--incidents N] [--repeat N]

The data comes from bench_store's builder (the same year of incidents, straight into SQLite).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_store import NOW, build_sqlite, incident_rows
from vigil.runtime import Vigil
from vigil.settings import Settings
from vigil.store import Store
from vigil.web import close_streams, create_app
from vigil.web.accounts import create_token
from vigil.web.state import WebState

PAGE = "/alerts"
# What the page shows, as the API serves it (the page's history shows 25 rows, 10 recoveries,
# up to 10 open and 5 resolved incident groups of two or more, the 10 noisiest rules).
API = (
    "/api/alerts/summary",
    "/api/alerts/active",
    "/api/metrics",
    "/api/alerts/incidents?page=1&page_size=25",
    "/api/alerts/auto-recovery?limit=10",
    "/api/alerts/stats?days=30",
    "/api/alerts/groups?status=open&min_size=2&limit=10",
    "/api/alerts/groups?status=resolved&min_size=2&limit=10",
    "/api/alerts/rules/stats?days=30&limit=10",
)


async def medians_ms(
    calls: Mapping[str, Callable[[], Awaitable[None]]], *, repeat: int
) -> dict[str, float]:
    """Each call's median time. Rounds interleave the calls, so a slow moment of the
    machine weighs on the page and on the API requests alike."""
    for call in calls.values():
        await call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeat):
        for name, call in calls.items():
            began = time.perf_counter()
            await call()
            times[name].append((time.perf_counter() - began) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


async def run(incidents: int, *, repeat: int) -> None:
    rows = incident_rows(incidents)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
        store = await Store.open(url)
        await store.close()
        began = time.perf_counter()
        build_sqlite(path, rows, [])
        store = await Store.open(url)
        try:
            _, token = await create_token(store, "bench", role="viewer")
        finally:
            await store.close()
        print(f"{incidents:,} incidents in SQLite, built in {time.perf_counter() - began:.0f} s")

        settings = Settings(database_url=url, interval=3600, instance="bench")
        vigil = Vigil(settings, process_metrics=False, clock=lambda: NOW)
        await vigil.start()
        app = create_app(vigil)
        state: WebState = app.state.vigil_web
        headers = {"Authorization": f"Bearer {token}"}
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", headers=headers
            ) as client:

                async def get(path: str, *, cold: bool) -> None:
                    if cold:
                        state.cache.clear()
                    response = await client.get(path)
                    assert response.status_code == 200, (path, response.text[:300])

                page = await client.get(PAGE)
                assert "1,000,000 incidents" in page.text or incidents != 1_000_000
                for cold in (True, False):
                    calls = {path: functools.partial(get, path, cold=cold) for path in (PAGE, *API)}
                    parts = await medians_ms(calls, repeat=repeat)
                    page_ms = parts.pop(PAGE)
                    kind = "cold (every read runs)" if cold else "warm (read cache)"
                    report(kind, page_ms, parts)
        finally:
            await close_streams(app)
            await vigil.aclose()


def report(kind: str, page_ms: float, parts: dict[str, float]) -> None:
    total = sum(parts.values())
    print(f"== {kind}: medians in ms")
    for path, ms in parts.items():
        print(f"  {path:<56} {ms:>9.2f}")
    print(f"  {'sum of the API requests':<56} {total:>9.2f}")
    print(f"  {'GET ' + PAGE + ' (rendered HTML)':<56} {page_ms:>9.2f}")
    verdict = "ok" if page_ms <= total else "MISSED"
    print(f"  ratio page / API sum: {page_ms / total:.2f}x (target <= 1.0x) {verdict}")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=25)
    args = parser.parse_args()
    asyncio.run(run(args.incidents, repeat=args.repeat))


if __name__ == "__main__":
    main()
