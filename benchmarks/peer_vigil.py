"""Vigil as bench_peer.py drives it: `vigil serve` from this checkout as a child process,
set up and fed only through its CLI and HTTP API (so the harness does not depend on Vigil's
internals), a feeder pushing the ten values, and wrk saturating ingestion (peer_push.lua)."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from peer_config import BREACHES_REQUIRED, INTERVAL, NORMAL, PROBE, RECOVERIES_REQUIRED, WORKLOAD
from peer_harness import (
    HOST,
    BenchError,
    Children,
    Client,
    check_alive,
    cpu_mark,
    cpu_seconds,
    free_port,
    parse_time,
    wait_until,
)
from peer_results import Saturation

START_TIMEOUT = 90.0
SETTLE_SECONDS = 2.0  # wrk's connections open and the server warm before measuring
PUSH_SCRIPT = Path(__file__).with_name("peer_push.lua")


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

    def saturate(
        self, *, wrk: Path, connections: int, batch: int, seconds: float, instances: int = 4
    ) -> Saturation:
        """wrk keeping ``connections`` pushes of ``batch`` samples in flight (peer_push.lua:
        the ten metrics at successive instants 50 ms apart, dated as sent, from ``instances``
        services in turn, as many as the pushing threads this replaced), so that Vigil and not
        the pushers sets the pace. Samples stored are Vigil's own count of accepted ones
        (``vigil_ingested_samples_total``: the feed's ten values every half second are among
        them, 20 samples a second beside a hundred thousand)."""
        values = [f"{t.metric}={t.normal!r}" for t in WORKLOAD]
        command = [
            str(wrk),
            "--threads=1",
            f"--connections={connections}",
            f"--duration={math.ceil(seconds + 2 * SETTLE_SECONDS)}s",
            "--timeout=60s",
            "--latency",
            f"--script={PUSH_SCRIPT}",
            f"http://{HOST}:{self.port}/api/ingest",
            "--",
            self.ingest_token,
            str(batch),
            str(instances),
            *values,
        ]
        load = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(SETTLE_SECONDS)  # connections open, the server warm
            before, stored = cpu_mark(self.roots()), self._ingested()
            load_cpu = cpu_seconds([load.pid])
            time.sleep(seconds)
            after, stored = cpu_mark(self.roots()), self._ingested() - stored
            load_cpu = cpu_seconds([load.pid]) - load_cpu
            out, err = load.communicate(timeout=seconds + 120)
        finally:
            if load.poll() is None:
                load.kill()
                load.wait()
        if load.returncode:
            raise BenchError(f"wrk: exit {load.returncode}: {err.strip()[-300:]}")
        if not stored:
            raise BenchError(f"no pushed sample was stored within {seconds:.0f} s: {out}")
        return Saturation(
            samples=stored,
            seconds=after.at - before.at,
            cpu=after.cpu - before.cpu,
            load_cpu=load_cpu,
            request_ms=_wrk_median_ms(out),
            failed=_wrk_failed(out),
        )

    def _ingested(self) -> float:
        assert self.reader is not None
        status, body = self.reader.request("GET", "/metrics")
        if status != 200:
            raise BenchError(f"GET /metrics: HTTP {status}")
        found = re.search(rb"^vigil_ingested_samples_total ([0-9.e+]+)$", body, re.MULTILINE)
        if found is None:
            raise BenchError("vigil_ingested_samples_total is not in Vigil's /metrics")
        return float(found.group(1))


_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _wrk_median_ms(report: str) -> float:
    """The median request time in wrk's ``--latency`` distribution."""
    found = re.search(r"^\s+50%\s+([0-9.]+)(us|ms|s|m)\s*$", report, re.MULTILINE)
    if found is None:
        raise BenchError(f"no median latency in wrk's report: {report}")
    return float(found.group(1)) * _WRK_UNITS[found.group(2)]


def _wrk_failed(report: str) -> int:
    """Requests wrk saw answered other than 2xx/3xx, or lost to a socket error."""
    failed = 0
    found = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    if found is not None:
        failed += int(found.group(1))
    errors = re.search(r"Socket errors: (.*)$", report, re.MULTILINE)
    if errors is not None:
        failed += sum(int(n) for n in re.findall(r"\d+", errors.group(1)))
    return failed


def _get(body: object, key: str) -> object:
    return body.get(key) if isinstance(body, dict) else None
