"""Push metrics to Vigil from another process, the way any language would: HTTP and JSON.

Nothing here imports Vigil: a Node, Go or Rust service does the same with its own HTTP
client. Create a token with the ingest scope first:

    vigil tokens create shard-pusher --role ingest

then run this beside a `vigil serve` (or a bot embedding Vigil with its dashboard):

    VIGIL_URL=http://127.0.0.1:8000 VIGIL_TOKEN=... python examples/push_metrics.py

Each round it sends this machine's load average and a made-up queue depth as the instance
"worker-1". The leader combines them with the other instances' values per each rule's
`aggregate` on its next cycle; a metric without a rule is stored as history.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

URL = os.environ.get("VIGIL_URL", "http://127.0.0.1:8000").rstrip("/")
TOKEN = os.environ.get("VIGIL_TOKEN", "")
INSTANCE = os.environ.get("VIGIL_PUSH_INSTANCE", "worker-1")
EVERY = float(os.environ.get("VIGIL_PUSH_EVERY", "10"))


def push(samples: list[dict[str, object]]) -> dict[str, object]:
    body = json.dumps({"instance": INSTANCE, "samples": samples}).encode()
    request = urllib.request.Request(
        f"{URL}/api/ingest",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, object] = json.load(response)
        return answer


def reading() -> list[dict[str, object]]:
    now = datetime.now(UTC).isoformat()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return [
        {"metric": "worker_load", "value": load, "time": now},
        {"metric": "queue_depth", "value": float(random.randint(0, 40)), "time": now},
    ]


def main(rounds: int | None = None) -> int:
    if not TOKEN:
        print("set VIGIL_TOKEN to a token with the ingest scope", file=sys.stderr)
        return 2
    done = 0
    while rounds is None or done < rounds:
        try:
            print("accepted:", push(reading()))
        except urllib.error.HTTPError as error:  # 401, 403, 422: the body says what was wrong
            print(f"refused ({error.code}): {error.read().decode()}", file=sys.stderr)
            return 1
        except urllib.error.URLError as error:
            print(f"Vigil unreachable ({error.reason}); retrying", file=sys.stderr)
        done += 1
        if rounds is None or done < rounds:
            time.sleep(EVERY)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else None))
