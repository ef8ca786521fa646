"""The server at rest: its main loop ticks once a second, not ten times, and a request to stop
wakes it at once rather than at the next tick."""

from __future__ import annotations

import pytest

from vigil.web import serve

from .support import running_api, served


async def test_the_server_ticks_rarely_and_stops_when_asked(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks: list[int] = []
    original = serve.VigilServer.on_tick

    async def counting(self: serve.VigilServer, counter: int) -> bool:
        ticks.append(counter)
        return await original(self, counter)

    monkeypatch.setattr(serve.VigilServer, "on_tick", counting)
    # A tick an hour: only the wake-up of should_exit can end the server within the test.
    monkeypatch.setattr(serve, "TICK_SECONDS", 3600.0)
    async with running_api(migrated_url) as api, served(api.app) as (_base, server):
        assert ticks in ([], [0])  # the first tick, at start; the next would be an hour away
        assert not server.should_exit
    # served() set should_exit and awaited the server's end (within its deadline).
    assert server.should_exit and ticks[-1] % serve.TICKS == 0  # the Date header's tick
