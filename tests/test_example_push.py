"""examples/push_metrics.py against a real Vigil server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vigil import Settings, Vigil
from vigil.web.accounts import create_token
from vigil.web.serve import dashboard

EXAMPLE = Path(__file__).parents[1] / "examples" / "push_metrics.py"
DEADLINE = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def served(sqlite_url: str) -> AsyncIterator[Vigil]:
    settings = Settings(database_url=sqlite_url, interval=3600, instance="server", port=free_port())
    async with Vigil(settings, process_metrics=False) as vigil, dashboard(vigil):
        yield vigil


async def push(vigil: Vigil, token: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "1",
        env={**os.environ, "VIGIL_URL": vigil.settings.public_url, "VIGIL_TOKEN": token},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), DEADLINE)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_pushed_samples_are_stored_under_their_instance(served: Vigil) -> None:
    _, token = await create_token(served.store, "pusher", role="ingest")
    code, out, err = await push(served, token)
    assert code == 0, err
    assert "accepted" in out
    since = datetime.now(UTC) - timedelta(minutes=5)
    values = await served.store.latest_values(since=since, exclude_instance="server")
    assert set(values) >= {"worker_load", "queue_depth"}


async def test_a_wrong_token_is_refused_with_the_reason(served: Vigil) -> None:
    _, viewer = await create_token(served.store, "reader", role="viewer")
    for token, status in (("not-a-token", "401"), (viewer, "403")):
        code, _, err = await push(served, token)
        assert code == 1
        assert f"refused ({status})" in err
