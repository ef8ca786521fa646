"""bench_peer.py's settings, the figures of one round, and the report: the table of figures
with baseline, ratio and spread, and what each one measures."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from peer_harness import CLOCK_TICKS, BenchError


@dataclass(frozen=True, slots=True)
class Options:
    rounds: int
    reps: int
    warmup: float
    rest_seconds: float
    saturation_seconds: float
    connections: int
    batch: int
    sat_targets: int
    sat_series: int
    sat_interval: float
    big_rules: int
    big_cycles: int
    group_interval: float
    deadline: float
    seed: int
    quick: bool


@dataclass(frozen=True, slots=True)
class Saturation:
    samples: float  # stored in the window
    seconds: float
    cpu: float  # CPU seconds of the system's process tree in the window
    load_cpu: float = 0.0  # CPU seconds of the load generator (Vigil: wrk; peer: the exporter)
    offered: float | None = None  # samples/s the peer's scrape configuration offers
    aborted: int = 0  # peer: scrapes Prometheus hung up on (past their timeout)
    request_ms: float | None = None  # Vigil: median time of one ingest request
    failed: int = 0  # Vigil: requests not answered 2xx or lost, over wrk's whole run

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds

    @property
    def cpu_per_sample(self) -> float:
        return self.cpu / self.samples if self.samples else float("inf")

    @property
    def saturated(self) -> bool:
        """Vigil is: wrk keeps pushes waiting on every connection, so Vigil sets the pace.
        Prometheus is if it stored clearly less than its scrape configuration offered."""
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
        if self.failed:
            text += f"; {self.failed:,} requests not answered 2xx"
        return text


@dataclass
class Round:
    """One system's figures in one round."""

    detect: list[float] = field(default_factory=list)
    resolve: list[float] = field(default_factory=list)
    deliver_open: list[float] = field(default_factory=list)
    deliver_resolve: list[float] = field(default_factory=list)
    rest_cpu: float = 0.0  # CPU seconds per 5 minutes
    rest_rss: float = 0.0  # bytes
    saturation: Saturation | None = None
    cycle_ms: float = 0.0
    first_detect: float = 0.0  # the first alert after start, not in the figures
    first_deliver: float = 0.0


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    per_round: Callable[[Round], float]  # a round's figure (for the spread)
    overall: Callable[[list[Round]], float]  # all rounds' figure
    show: Callable[[float], str]


def pooled(pick: Callable[[Round], list[float]], q: float) -> Callable[[list[Round]], float]:
    return lambda rounds: quantile([v for r in rounds for v in pick(r)], q)


def median_of(pick: Callable[[Round], float]) -> Callable[[list[Round]], float]:
    return lambda rounds: statistics.median(pick(r) for r in rounds)


def _s(v: float) -> str:
    return f"{v:.2f} s"


def _ms(v: float) -> str:
    return f"{v * 1e3:.0f} ms" if v >= 0.01 else f"{v * 1e3:.1f} ms"


def _sat(r: Round) -> Saturation:
    if r.saturation is None:
        raise BenchError("a round has no saturation figure")
    return r.saturation


def figures(big_rules: int) -> list[Figure]:
    def latency(
        name: str, pick: Callable[[Round], list[float]], show: Callable[[float], str]
    ) -> list[Figure]:
        return [
            Figure(f"{name}, median", lambda r: quantile(pick(r), 0.5), pooled(pick, 0.5), show),
            Figure(f"{name}, p95", lambda r: quantile(pick(r), 0.95), pooled(pick, 0.95), show),
        ]

    def sample_cpu(r: Round) -> float:
        return _sat(r).cpu_per_sample

    def rate(r: Round) -> float:
        return _sat(r).samples_per_s

    return [
        *latency("bad value -> alert received", lambda r: r.detect, _s),
        *latency("normal value -> resolution received", lambda r: r.resolve, _s),
        *latency("of which trigger -> receiver (alert)", lambda r: r.deliver_open, _ms),
        *latency("of which trigger -> receiver (resolution)", lambda r: r.deliver_resolve, _ms),
        Figure(
            "CPU at rest, per 5 minutes", lambda r: r.rest_cpu, median_of(lambda r: r.rest_cpu), _s
        ),
        Figure(
            "memory at rest (RSS)",
            lambda r: r.rest_rss,
            median_of(lambda r: r.rest_rss),
            lambda v: f"{v / 2**20:.0f} MiB",
        ),
        Figure(
            "CPU per ingested sample",
            sample_cpu,
            median_of(sample_cpu),
            lambda v: f"{v * 1e6:.2f} µs",
        ),
        Figure("samples/s at saturation", rate, median_of(rate), lambda v: f"{v:,.0f}"),
        Figure(
            f"{big_rules:,} rules: one cycle",
            lambda r: r.cycle_ms / 1e3,
            median_of(lambda r: r.cycle_ms / 1e3),
            _ms,
        ),
    ]


def report(results: dict[str, list[Round]], options: Options) -> None:
    vigil, peer = results["vigil"], results["peer"]
    peer_saturated = all(_sat(r).saturated for r in peer)
    header = f"  {'figure':<52}{'Vigil':>10}{'Prom+AM':>10}{'ratio':>8}   spread (per round)"
    print(header)
    print("  " + "-" * (len(header) - 2))
    for figure in figures(options.big_rules):
        v, p = figure.overall(vigil), figure.overall(peer)
        ratios = [
            figure.per_round(a) / figure.per_round(b) if figure.per_round(b) else float("inf")
            for a, b in zip(vigil, peer, strict=True)
        ]
        bound = "<" if figure.name.startswith("samples/s") and not peer_saturated else ""
        ratio = f"{bound}{v / p:.2f}" if p else "inf"
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        print(f"  {figure.name:<52}{figure.show(v):>10}{figure.show(p):>10}{ratio:>8}   {spread}")
    print()
    for key, rounds in results.items():
        for number, r in enumerate(rounds, 1):
            print(
                f"  {key} round {number}: first alert after start (not in the figures) "
                f"{r.first_detect:.2f} s, trigger -> receiver {_ms(r.first_deliver)}; "
                f"saturation {_sat(r).describe()}"
            )
    if not peer_saturated:
        print(
            "  Prometheus kept up with the offered load (not saturated): its samples/s is a "
            "lower bound and the samples/s ratio an upper bound; raise --sat-series or lower "
            "--sat-interval"
        )
    o = options
    for line in (
        f"{o.rounds} alternating rounds (Vigil, then Prometheus + Alertmanager); spread: the "
        "lowest and highest per-round ratio; medians and p95 pooled over the rounds.",
        f"detection: {o.reps} a round after one unmeasured (the first alert), from just "
        "before the bad value is pushed to Vigil "
        "(POST /api/ingest) / set on the exporter Prometheus scrapes, at a random phase of "
        "the 1 s grid, to the webhook arriving; Vigil's feed pushes every 0.5 s meanwhile.",
        "trigger -> receiver: Vigil: the incident's triggered_at / resolved_at (start of the "
        "cycle that opened / resolved it, from the API) to arrival; Prometheus: the alert's "
        "startsAt / endsAt (the evaluation that fired / resolved it) to arrival; Alertmanager "
        f"group_wait 0, group_interval {o.group_interval * 1e3:g} ms.",
        f"at rest: CPU of the process tree (vigil serve / prometheus + alertmanager; /proc, "
        f"{1000 / CLOCK_TICKS:g} ms ticks) over "
        f"{o.rest_seconds:.0f} s scaled to 5 min, both fed the ten values once a second, no "
        "alert open; memory: RSS of the same tree.",
        f"per sample: the tree's CPU over {o.saturation_seconds:.0f} s of saturation / samples "
        f"stored (Vigil: wrk holding {o.connections} pushes of {o.batch} samples in flight, "
        f"from 4 services, each dated as sent; Prometheus: {o.sat_targets} targets x "
        f"{o.sat_series:,} series every {o.sat_interval:g} s, by "
        "prometheus_tsdb_head_samples_appended_total).",
        f"{o.big_rules:,} rules: Vigil's monitor cycle with storage in process on SQLite "
        f"(benchmarks/peer_rules.py: the defaults and a user rule per extra metric, applied "
        f"in one transaction), median of {o.big_cycles}; Prometheus: "
        "prometheus_rule_group_last_duration_seconds of one group holding the two thresholds "
        f"over {o.big_rules:,} series; 1 in 50 breaching in both.",
    ):
        print(f"  - {line}")
