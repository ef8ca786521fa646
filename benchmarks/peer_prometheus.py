"""Prometheus + Alertmanager as bench_peer.py drives them: a fresh pair per phase (the ten
rules; saturation; the 10,000-series group) on temporary directories and ephemeral ports,
scraping the benchmark's exporter and notifying its receiver."""

from __future__ import annotations

import subprocess
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from peer_config import (
    BIG_GROUP,
    BIG_WARNING,
    INTERVAL,
    NORMAL,
    PROBE,
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
    check_alive,
    cpu_mark,
    free_port,
    metric_sum,
    own_cpu,
    parse_time,
    scrape,
    series_body,
    wait_until,
)
from peer_results import Saturation

START_TIMEOUT = 90.0


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
        am_port = prom_port = free_port()
        while prom_port == am_port:
            prom_port = free_port()
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
                    check_alive(process, log, what)
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
            check_alive(process, self.current.folder / f"{what}.log", what)
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
                value = found[0].get("value") if found else None
                return isinstance(value, list) and int(float(value[1])) == expected

            wait_until(firing, timeout=START_TIMEOUT, what=f"{expected} alerts firing")
            durations: list[float] = []
            last = None
            deadline = time.monotonic() + samples * INTERVAL * 4 + 30
            while len(durations) < samples and time.monotonic() < deadline:
                metrics = scrape(instance.prometheus_port)
                at = _of_group(metrics, "prometheus_rule_group_last_evaluation_timestamp_seconds")
                took = _of_group(metrics, "prometheus_rule_group_last_duration_seconds")
                if at is not None and took is not None and at != last:
                    durations.append(took)
                    last = at
                time.sleep(INTERVAL / 4)
            if len(durations) < samples:
                raise BenchError(f"only {len(durations)} evaluations of the rule group seen")
        durations.sort()
        return durations[len(durations) // 2] * 1e3


def _of_group(metrics: Mapping[str, float], name: str) -> float | None:
    """The value of ``name`` for the 10,000-series rule group."""
    group = f';{BIG_GROUP}"'
    return next((v for k, v in metrics.items() if k.startswith(name + "{") and group in k), None)
