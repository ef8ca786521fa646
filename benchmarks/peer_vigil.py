"""Vigil as bench_peer.py drives it: `vigil serve` from this checkout as a child process,
set up and fed only through its CLI and HTTP API (so the harness does not depend on Vigil's
internals), a feeder pushing the ten values, and pushers saturating ingestion."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from peer_config import BREACHES_REQUIRED, INTERVAL, NORMAL, PROBE, RECOVERIES_REQUIRED, WORKLOAD
from peer_harness import (
    HOST,
    BenchError,
    Children,
    Client,
    check_alive,
    cpu_mark,
    free_port,
    own_cpu,
    parse_time,
    wait_until,
)
from peer_results import Saturation

START_TIMEOUT = 90.0


RETRIES_429 = 40
RETRY_429_SECONDS = 0.25


class Feeder:
    """The pushing service: the ten current values to POST /api/ingest every ``period``.
    Injections go through the same lock, so no older value is pushed after a newer one."""

    def __init__(self, client: Client, instance: str) -> None:
        self.client = client
        self.instance = instance
        self.values = dict(NORMAL)
        self.period = INTERVAL
        self.error: BaseException | None = None
        self.refused = 0  # pushes answered 429 (Vigil shedding load) and sent again
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vigil-feeder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(30)

    def every(self, period: float) -> None:
        self.period = period
        self._wake.set()

    def inject(self, values: Mapping[str, float]) -> float:
        self.check()
        with self._lock:
            self.values.update(values)
            began = time.monotonic()
            self._push()
        return began

    def check(self) -> None:
        if self.error is not None:
            raise BenchError(f"pushing to Vigil failed: {self.error}")

    def _push(self) -> None:
        samples = [{"metric": m, "value": v} for m, v in self.values.items()]
        payload = json.dumps({"instance": self.instance, "samples": samples}).encode()
        for _ in range(RETRIES_429):
            status, body = self.client.request("POST", "/api/ingest", payload)
            if status != 429:
                break
            # Shed under load ("the monitor is behind", a full buffer): as a pusher would,
            # send it again shortly. Counted: a run with refusals says so.
            self.refused += 1
            time.sleep(RETRY_429_SECONDS)
        if status != 200:
            raise BenchError(f"POST /api/ingest: HTTP {status}: {body[:300]!r}")

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            try:
                with self._lock:
                    self._push()
            except Exception as exc:  # reported to the main thread by check()
                self.error = exc
                return
            due = max(due + self.period, time.monotonic() - self.period)
            self._wake.wait(max(0.0, due - time.monotonic()))
            if self._wake.is_set():
                self._wake.clear()
                due = time.monotonic()


class VigilSide:
    label = "Vigil"

    def __init__(self, children: Children, vigil: Path, folder: Path, *, receiver: int) -> None:
        self.children = children
        self.vigil = vigil
        self.folder = folder
        self.receiver = receiver
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
        self.env = {
            **env,
            "VIGIL_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'vigil.db'}",
            "VIGIL_INTERVAL": f"{INTERVAL:g}",
            "VIGIL_HOST": HOST,
            "VIGIL_PORT": str(self.port),
            "VIGIL_INSTANCE": "vigil-bench",
            # Saturation measures what storing samples costs, not the per-token limits that
            # shed a flood (docs/security.md): those are raised out of the way.
            "VIGIL_INGEST_RATE": "10000",
            "VIGIL_INGEST_VOLUME": "1000000",
            # The probe breaches and recovers every few seconds, which flap detection holds
            # open as flapping (by design); Prometheus has none, so the figures compare
            # detection and resolution without it.
            "VIGIL_FLAP_DETECTION": "false",
        }
        self.log = folder / "vigil.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.ingest_token = ""
        self.reader: Client | None = None
        self.feeder: Feeder | None = None

    def cli(self, *args: str) -> str:
        run = subprocess.run(
            [str(self.vigil), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if run.returncode:
            raise BenchError(f"vigil {' '.join(args[:2])}: exit {run.returncode}: {run.stderr}")
        return run.stdout

    def token(self, name: str, role: str) -> str:
        out = self.cli("tokens", "create", name, "--role", role)
        words = [
            line.strip() for line in out.splitlines() if line.strip() and " " not in line.strip()
        ]
        if not words:
            raise BenchError(f"no token in the output of `vigil tokens create`: {out!r}")
        return words[-1]

    def start(self) -> None:
        self.cli("db", "upgrade")
        self.ingest_token = self.token("bench-pusher", "ingest")
        reader_token = self.token("bench-reader", "viewer")
        url = f"json://{HOST}:{self.receiver}/vigil"
        self.cli("channels", "add", "bench", url, "--by", "bench")
        self.process = self.children.start(
            [str(self.vigil), "serve", "--log-level", "warning"], env=self.env, log=self.log
        )
        self.reader = reader = Client(self.port, token=reader_token)
        process = self.process

        def ready() -> bool:
            check_alive(process, self.log, "vigil serve")
            status, body = reader.request("GET", "/api/health")
            details = (json.loads(body).get("details") or {}) if status == 200 else {}
            return bool(details.get("leader")) and int(details.get("cycles", 0)) >= 2

        wait_until(ready, timeout=START_TIMEOUT, what="vigil serve to be up and cycling")
        self._check_rules(reader)
        self.feeder = Feeder(Client(self.port, token=self.ingest_token), "bench-service")
        self.feeder.start()

    def _check_rules(self, reader: Client) -> None:
        """The same workload: the served rules are DESIGN §2's, with the streaks assumed."""
        status, body = reader.request("GET", "/api/alerts/rules")
        if status == 404:
            status, body = reader.request("GET", "/api/alerts/config")
        if status != 200:
            raise BenchError(f"cannot list Vigil's rules: HTTP {status}")
        served = {r["metric"]: r for r in json.loads(body)}
        for t in WORKLOAD:
            rule = served.get(t.metric)
            expected = (t.warning, t.critical, BREACHES_REQUIRED, RECOVERIES_REQUIRED)
            found = rule and (
                rule.get("warning"),
                rule.get("critical"),
                rule.get("breaches_required"),
                rule.get("recoveries_required"),
            )
            if found != expected:
                raise BenchError(f"Vigil's rule for {t.metric} is {found}, expected {expected}")

    def stop(self) -> None:
        if self.feeder is not None:
            self.feeder.stop()
            if self.feeder.refused:
                print(f"  (Vigil answered {self.feeder.refused} pushes 429, sent again)")
        if self.process is not None:
            self.children.stop(self.process)

    def roots(self) -> list[int]:
        if self.process is None:
            raise BenchError("Vigil is not running")
        check_alive(self.process, self.log, "vigil serve")
        return [self.process.pid]

    def feed_every(self, period: float) -> None:
        assert self.feeder is not None
        self.feeder.check()
        self.feeder.every(period)

    def inject(self, values: dict[str, float]) -> float:
        assert self.feeder is not None
        return self.feeder.inject(values)

    # apprise's JSON webhook body: {"version", "title", "message", "attachments", "type"}
    def is_opened(self, body: object, path: str) -> bool:
        return self._about_probe(body, path) and "incident opened" in str(_get(body, "title"))

    def is_resolved(self, body: object, path: str) -> bool:
        return self._about_probe(body, path) and str(_get(body, "title")).startswith("[RESOLVED]")

    def _about_probe(self, body: object, path: str) -> bool:
        return path.startswith("/vigil") and f"Metric: {PROBE}\n" in str(_get(body, "message"))

    def triggered(self, body: object, *, resolved: bool) -> float:
        """triggered_at / resolved_at of the incident the message links to (the webhook body
        carries no time of its own)."""
        found = re.search(r"/incidents/([0-9a-f-]{36})", str(_get(body, "message")))
        if found is None or self.reader is None:
            raise BenchError(f"no incident link in Vigil's message: {body!r}")
        incident = self.reader.json("GET", f"/api/alerts/incidents/{found.group(1)}")
        stamp = incident.get("resolved_at" if resolved else "triggered_at")
        if not stamp:
            raise BenchError(
                f"incident {found.group(1)} has no {'resolved_at' if resolved else 'triggered_at'}"
            )
        return parse_time(stamp)

    def saturate(self, *, pushers: int, batch: int, seconds: float) -> Saturation:
        """``pushers`` threads, each a service pushing ``batch`` samples a request (the ten
        metrics over recent instants) as fast as Vigil answers."""
        stop = threading.Event()
        done: list[list[tuple[float, int, int, float]]] = [[] for _ in range(pushers)]
        failures: list[BaseException] = []

        def push(k: int) -> None:
            client = Client(self.port, token=self.ingest_token, timeout=60)
            try:
                while not stop.is_set():
                    # the ten metrics at successive instants 50 ms apart, newest first
                    now = datetime.now(UTC)
                    steps = -(-batch // len(WORKLOAD))
                    times = [
                        (now - timedelta(milliseconds=50 * j)).isoformat() for j in range(steps)
                    ]
                    samples = [
                        {"metric": t.metric, "value": t.normal, "time": when}
                        for when in times
                        for t in WORKLOAD
                    ][:batch]
                    payload = json.dumps({"instance": f"load-{k}", "samples": samples}).encode()
                    sent = time.monotonic()
                    status, data = client.request("POST", "/api/ingest", payload)
                    accepted = int(json.loads(data)["accepted"]) if status == 200 else 0
                    done[k].append((time.monotonic(), status, accepted, sent))
            except Exception as exc:
                failures.append(exc)
            finally:
                client.close()

        threads = [threading.Thread(target=push, args=(k,), daemon=True) for k in range(pushers)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(2.0)  # connections open, the server warm
            before, load = cpu_mark(self.roots()), own_cpu()
            time.sleep(seconds)
            after, load = cpu_mark(self.roots()), own_cpu() - load
        finally:
            stop.set()
            for thread in threads:
                thread.join(90)
        if failures:
            raise BenchError(f"a pusher failed: {failures[0]!r}")
        window = [r for rows in done for r in rows if before.at < r[0] <= after.at]
        if not window:
            raise BenchError(f"no ingest request completed within {seconds:.0f} s")
        refused = Counter(status for _, status, _, _ in window if status != 200)
        return Saturation(
            samples=sum(accepted for _, _, accepted, _ in window),
            seconds=after.at - before.at,
            cpu=after.cpu - before.cpu,
            load_cpu=load,
            request_ms=statistics.median(end - sent for end, _, _, sent in window) * 1e3,
            refused=dict(refused),
        )


def _get(body: object, key: str) -> object:
    return body.get(key) if isinstance(body, dict) else None
