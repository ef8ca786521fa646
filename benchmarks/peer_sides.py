"""The two systems bench_peer.py compares, behind the same few operations: start, feed the
ten values, inject a value, recognise and date their notifications, saturate ingestion.

Vigil is driven only through its CLI and HTTP API (`vigil serve` as a child process), so this
module does not depend on Vigil's internals.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from peer_config import (
    BIG_GROUP,
    BIG_WARNING,
    BREACHES_REQUIRED,
    INTERVAL,
    NORMAL,
    PROBE,
    RECOVERIES_REQUIRED,
    WORKLOAD,
    Job,
    alertmanager_config,
    big_rules,
    big_values,
    default_rules,
    prometheus_config,
)
from peer_harness import (
    HOST,
    BenchError,
    Children,
    Client,
    Exporter,
    cpu_mark,
    free_port,
    metric_sum,
    own_cpu,
    scrape,
    series_body,
    wait_until,
)

START_TIMEOUT = 90.0


@dataclass(frozen=True, slots=True)
class Saturation:
    samples: float  # stored in the window
    seconds: float
    cpu: float  # CPU seconds of the system's process tree in the window
    load_cpu: float = 0.0  # CPU seconds of the benchmark's own process (pushers, exporter)
    offered: float | None = None  # samples/s the peer's scrape configuration offers
    aborted: int = 0  # peer: scrapes Prometheus hung up on (past their timeout)
    request_ms: float | None = None  # Vigil: median time of one ingest request
    refused: Mapping[int, int] = field(default_factory=dict)  # Vigil: HTTP status -> requests

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds

    @property
    def cpu_per_sample(self) -> float:
        return self.cpu / self.samples if self.samples else float("inf")

    @property
    def saturated(self) -> bool:
        """Vigil's pushers send as fast as it answers: always saturated. Prometheus is if it
        stored clearly less than its scrape configuration offered."""
        return self.offered is None or self.samples_per_s < 0.9 * self.offered

    def describe(self) -> str:
        text = (
            f"{self.samples:,.0f} samples in {self.seconds:.1f} s = {self.samples_per_s:,.0f}/s, "
            f"{self.cpu / self.seconds:.0%} of a core"
        )
        if self.request_ms is not None:
            text += f", requests {self.request_ms:.0f} ms median"
        if self.offered is not None:
            text += f"; offered {self.offered:,.0f}/s"
            text += "" if self.saturated else " (kept up: not saturated)"
        if self.aborted:
            text += f"; {self.aborted} scrapes cut off"
        text += f"; load generator {self.load_cpu / self.seconds:.0%} of a core"
        if self.refused:
            text += "; refused requests " + ", ".join(
                f"HTTP {code}: {n}" for code, n in sorted(self.refused.items())
            )
        return text


def parse_time(text: str) -> float:
    """An RFC 3339 time (Prometheus writes nanoseconds, Vigil microseconds) as epoch seconds."""
    match = re.fullmatch(r"(.+?)(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
    if match is None:
        raise BenchError(f"not a time: {text!r}")
    base, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    return datetime.fromisoformat(f"{base}{(fraction or '.0')[:7]}{zone}").timestamp()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _alive(process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    if process.poll() is not None:
        raise BenchError(f"{what} exited with {process.returncode}:\n{_tail(log)}")


# -- Vigil ----------------------------------------------------------------------------------


class Feeder:
    """The pushing service: the ten current values to POST /api/ingest every ``period``.
    Injections go through the same lock, so no older value is pushed after a newer one."""

    def __init__(self, client: Client, instance: str) -> None:
        self.client = client
        self.instance = instance
        self.values = dict(NORMAL)
        self.period = INTERVAL
        self.error: BaseException | None = None
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
        status, body = self.client.request("POST", "/api/ingest", payload)
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
            _alive(process, self.log, "vigil serve")
            details = reader.json("GET", "/api/health").get("details") or {}
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
        if self.process is not None:
            self.children.stop(self.process)

    def roots(self) -> list[int]:
        if self.process is None:
            raise BenchError("Vigil is not running")
        _alive(self.process, self.log, "vigil serve")
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


# -- Prometheus + Alertmanager --------------------------------------------------------------


@dataclass
class _Instance:
    prometheus: subprocess.Popen[bytes]
    alertmanager: subprocess.Popen[bytes]
    prometheus_port: int
    folder: Path


class PeerSide:
    label = "Prometheus + Alertmanager"

    def __init__(
        self,
        children: Children,
        prometheus: str,
        alertmanager: str,
        folder: Path,
        *,
        receiver: int,
        exporter: Exporter,
        group_interval: float,
    ) -> None:
        self.children = children
        self.binaries = (prometheus, alertmanager)
        self.folder = folder
        self.receiver = receiver
        self.exporter = exporter
        self.group_interval = group_interval
        self.current: _Instance | None = None

    @contextmanager
    def _running(self, name: str, *, jobs: Sequence[Job], rules: str | None) -> Iterator[_Instance]:
        folder = self.folder / name
        folder.mkdir()
        prometheus, alertmanager = self.binaries
        am_port, prom_port = free_port(), free_port()
        (folder / "alertmanager.yml").write_text(
            alertmanager_config(
                receiver_url=f"http://{HOST}:{self.receiver}/am",
                group_interval=self.group_interval,
            )
        )
        rule_file = None
        if rules is not None:
            rule_file = str(folder / "rules.yml")
            Path(rule_file).write_text(rules)
        (folder / "prometheus.yml").write_text(
            prometheus_config(jobs=jobs, rule_file=rule_file, alertmanager=am_port)
        )
        logs = folder / "alertmanager.log", folder / "prometheus.log"
        am = self.children.start(
            [
                alertmanager,
                f"--config.file={folder / 'alertmanager.yml'}",
                f"--storage.path={folder / 'am-data'}",
                f"--web.listen-address={HOST}:{am_port}",
                "--cluster.listen-address=",  # no gossip port: a single instance
                "--log.level=warn",
            ],
            log=logs[0],
        )
        prom = self.children.start(
            [
                prometheus,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'tsdb'}",
                f"--web.listen-address={HOST}:{prom_port}",
                "--log.level=warn",
            ],
            log=logs[1],
        )
        instance = _Instance(prom, am, prom_port, folder)
        try:
            for process, port, log, what in (
                (am, am_port, logs[0], "alertmanager"),
                (prom, prom_port, logs[1], "prometheus"),
            ):

                def ready(
                    process: subprocess.Popen[bytes] = process,
                    port: int = port,
                    log: Path = log,
                    what: str = what,
                ) -> bool:
                    _alive(process, log, what)
                    return Client(port, timeout=5).request("GET", "/-/ready")[0] == 200

                wait_until(ready, timeout=START_TIMEOUT, what=f"{what} to be ready")
            self.current = instance
            yield instance
        finally:
            self.current = None
            self.children.stop(prom)
            self.children.stop(am)

    def query(self, instance: _Instance, promql: str) -> list[dict[str, object]]:
        path = "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        answer = Client(instance.prometheus_port, timeout=10).json("GET", path)
        result = answer["data"]["result"]
        return list(result)

    @contextmanager
    def main(self) -> Iterator[None]:
        """The ten rules, the exporter scraped every second."""
        self.exporter.set(NORMAL)
        jobs = [Job("bench", self.exporter.port, "/metrics", INTERVAL)]
        with self._running("main", jobs=jobs, rules=default_rules()) as instance:
            wait_until(
                lambda: self.query(instance, 'up{job="bench"} == 1'),
                timeout=START_TIMEOUT,
                what="Prometheus to scrape the exporter",
            )
            yield

    def roots(self) -> list[int]:
        if self.current is None:
            raise BenchError("Prometheus is not running")
        for process, what in (
            (self.current.prometheus, "prometheus"),
            (self.current.alertmanager, "alertmanager"),
        ):
            _alive(process, self.current.folder / f"{what}.log", what)
        return [self.current.prometheus.pid, self.current.alertmanager.pid]

    def feed_every(self, period: float) -> None:
        """Nothing to do: Prometheus scrapes at its own interval."""

    def inject(self, values: dict[str, float]) -> float:
        began = time.monotonic()
        self.exporter.set(values)
        return began

    def _probe_alert(self, body: object, path: str) -> dict[str, object] | None:
        if not path.startswith("/am") or not isinstance(body, dict):
            return None
        for alert in body.get("alerts") or []:
            if alert.get("labels", {}).get("alertname") == f"{PROBE}_critical":
                return dict(alert)
        return None

    def is_opened(self, body: object, path: str) -> bool:
        alert = self._probe_alert(body, path)
        return alert is not None and alert.get("status") == "firing"

    def is_resolved(self, body: object, path: str) -> bool:
        alert = self._probe_alert(body, path)
        return alert is not None and alert.get("status") == "resolved"

    def triggered(self, body: object, *, resolved: bool) -> float:
        """startsAt is the Prometheus evaluation that fired the alert (FiredAt), endsAt the
        one that resolved it (ResolvedAt)."""
        alert = self._probe_alert(body, "/am")
        if alert is None:
            raise BenchError(f"no probe alert in {body!r}")
        return parse_time(str(alert["endsAt" if resolved else "startsAt"]))

    def saturate(self, *, targets: int, series: int, interval: float, seconds: float) -> Saturation:
        """A fresh Prometheus scraping ``targets`` exporter paths of ``series`` series each
        every ``interval``: samples appended to its head per second, and its CPU."""
        body = series_body("bench_saturation", [1.0] * series)
        jobs = []
        for k in range(targets):
            self.exporter.serve(f"/saturation/{k}", body)
            jobs.append(Job(f"saturation{k}", self.exporter.port, f"/saturation/{k}", interval))
        with self._running("saturation", jobs=jobs, rules=None) as instance:

            def appended() -> float:
                # registered once the TSDB head is open, a moment after /-/ready
                name = "prometheus_tsdb_head_samples_appended_total"
                found = metric_sum(scrape(instance.prometheus_port), name)
                return -1.0 if found is None else found

            wait_until(
                lambda: appended() >= targets * series,
                timeout=START_TIMEOUT,
                what="prometheus_tsdb_head_samples_appended_total to count the first scrapes",
            )
            time.sleep(max(2.0, 4 * interval))
            count, before = appended(), cpu_mark(self.roots())
            load, aborted = own_cpu(), self.exporter.aborted
            time.sleep(seconds)
            after, count_after = cpu_mark(self.roots()), appended()
            load, aborted = own_cpu() - load, self.exporter.aborted - aborted
        return Saturation(
            samples=count_after - count,
            seconds=after.at - before.at,
            cpu=after.cpu - before.cpu,
            load_cpu=load,
            offered=targets * series / interval,
            aborted=aborted,
        )

    def rule_cycle_ms(self, *, rules: int, samples: int) -> float:
        """prometheus_rule_group_last_duration_seconds of one group holding the two
        thresholds over ``rules`` series, once its alerts fire: the median of ``samples``
        evaluations."""
        values = big_values(rules)
        self.exporter.serve("/many", series_body("bench_value", values))
        expected = sum(1 for v in values if v >= BIG_WARNING)
        jobs = [Job("many", self.exporter.port, "/many", INTERVAL)]
        with self._running("rules", jobs=jobs, rules=big_rules("bench_value")) as instance:

            def firing() -> bool:
                found = self.query(instance, 'count(ALERTS{alertstate="firing"})')
                return bool(found) and int(float(found[0]["value"][1])) == expected  # type: ignore[index]

            wait_until(firing, timeout=START_TIMEOUT, what=f"{expected} alerts firing")
            durations: list[float] = []
            last = None
            deadline = time.monotonic() + samples * INTERVAL * 4 + 30
            while len(durations) < samples and time.monotonic() < deadline:
                metrics = scrape(instance.prometheus_port)
                group = {k: v for k, v in metrics.items() if f';{BIG_GROUP}"' in k}
                at = next(
                    (
                        v
                        for k, v in group.items()
                        if k.startswith("prometheus_rule_group_last_evaluation_timestamp_seconds")
                    ),
                    None,
                )
                took = next(
                    (
                        v
                        for k, v in group.items()
                        if k.startswith("prometheus_rule_group_last_duration_seconds")
                    ),
                    None,
                )
                if at is not None and took is not None and at != last:
                    durations.append(took)
                    last = at
                time.sleep(INTERVAL / 4)
            if len(durations) < samples:
                raise BenchError(f"only {len(durations)} evaluations of the rule group seen")
        durations.sort()
        return durations[len(durations) // 2] * 1e3
