"""One Vigil instance as an OS process, for the multi-instance tests.

    python -m tests.runtime.instance_main URL NAME INTERVAL READINGS_JSON EVENTS_LOG

Its readings each cycle are whatever READINGS_JSON holds ({metric: value}); every event it
receives live is appended to EVENTS_LOG as a JSON line. It runs until it is killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from vigil.metrics import Reading
from vigil.runtime import Vigil
from vigil.settings import Settings


class FileSource:
    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    async def read(self) -> Reading:
        try:
            values: dict[str, float | None] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return values


async def main(url: str, name: str, interval: float, readings: Path, log: Path) -> None:
    settings = Settings(database_url=url, instance=name, interval=interval)
    async with Vigil(settings, sources=[FileSource(readings)], process_metrics=False) as vigil:
        stream = vigil.subscribe()
        with log.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"ready": name}) + "\n")
            out.flush()
            async for event in stream:
                record = {"id": event.id, "kind": event.kind.value, "metric": event.metric}
                out.write(json.dumps(record) + "\n")
                out.flush()


if __name__ == "__main__":
    url, name, interval, readings, log = sys.argv[1:6]
    asyncio.run(main(url, name, float(interval), Path(readings), Path(log)))
