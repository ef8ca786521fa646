"""Write a realistic day of a Discord bot's metrics as a CSV trace for ``vigil backtest``.

Deterministic (fixed seed): regenerating produces the same file. One row per metric per
minute. The day holds a handful of episodes an operator would care about, and one that they
would not (a single-reading blip, which must not open an incident).
"""

from __future__ import annotations

import math
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

START = datetime(2026, 11, 26, tzinfo=UTC)
MINUTES = 24 * 60


def at(hour: int, minute: int = 0) -> int:
    return hour * 60 + minute


def between(minute: int, start: int, end: int) -> bool:
    return start <= minute < end


def readings(minute: int, rng: random.Random) -> dict[str, float]:
    # Diurnal traffic: busiest in the evening (UTC), quietest before dawn.
    traffic = 0.6 + 0.4 * math.sin((minute / MINUTES - 0.3) * 2 * math.pi)
    gateway = rng.gauss(45, 6)
    p95 = rng.gauss(120 + 80 * traffic, 15)
    errors = max(0.0, rng.gauss(0.2, 0.1))
    memory = 250 + 40 * traffic + rng.gauss(0, 3)
    bucket = min(99.0, max(0.0, rng.gauss(35 + 25 * traffic, 5)))
    hits = 0.0
    db = max(1.0, rng.gauss(8, 2))
    lag = max(0.0, rng.gauss(4, 1.5))
    disconnected = 0.0
    failures = 0.0

    # 03:10-03:24 gateway degradation: warning, then critical, then recovery.
    if between(minute, at(3, 10), at(3, 16)):
        gateway = rng.gauss(150, 10)
    elif between(minute, at(3, 16), at(3, 22)):
        gateway = rng.gauss(260, 20)
    elif between(minute, at(3, 22), at(3, 25)):
        gateway = rng.gauss(110, 5)  # still warning: the incident stays open
    # 06:40 a one-minute blip: nobody should be woken up by it.
    if minute == at(6, 40):
        gateway = 420.0
        lag = 650.0
    # 09:05-09:17 an error storm after a bad deploy, critical for part of it.
    if between(minute, at(9, 5), at(9, 9)):
        errors = rng.gauss(3, 0.4)
    elif between(minute, at(9, 9), at(9, 15)):
        errors = rng.gauss(9, 1)
        p95 = rng.gauss(540, 30)
    # 12:00-12:06 rate-limit pressure from a mass role update.
    if between(minute, at(12, 0), at(12, 6)):
        bucket = rng.gauss(92, 2)
    if between(minute, at(12, 2), at(13, 2)):
        hits = 3.0  # 429s seen in the last hour
    # 13:30-16:00 a memory leak creeping up until the 16:00 restart.
    if between(minute, at(13, 30), at(16)):
        memory = 300 + (minute - at(13, 30)) * 0.9 + rng.gauss(0, 2)
    # 20:00-20:12 slow database (a missing index after a migration).
    if between(minute, at(20), at(20, 12)):
        db = rng.gauss(75, 8)
    # 22:15-22:19 the gateway connection drops; the reconnect backlog stalls the loop.
    if between(minute, at(22, 15), at(22, 19)):
        disconnected = 1.0
        gateway = rng.gauss(45, 6)
    if between(minute, at(22, 19), at(22, 23)):
        lag = rng.gauss(180, 30)
    # 23:00-23:08 the reminder task stops beating.
    if between(minute, at(23), at(23, 8)):
        failures = 1.0

    return {
        "gateway_latency": gateway,
        "command_p95_latency": p95,
        "error_rate": errors,
        "memory_usage": memory,
        "api_rate_limit_usage": bucket,
        "api_rate_limit_hits": hits,
        "database_query_time": db,
        "event_loop_lag": lag,
        "bot_disconnected": disconnected,
        "service_failure": failures,
    }


def main(path: Path) -> None:
    rng = random.Random(570)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("timestamp,metric,value\n")
        for minute in range(MINUTES):
            stamp = (START + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
            for metric, value in readings(minute, rng).items():
                out.write(f"{stamp},{metric},{round(value, 2)}\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
