"""Vigil side by side with Prometheus + Alertmanager (Debian's packages): the same ten rules at
a 1 s interval, alternating runs (Vigil, then the peer, round after round), every figure with
its baseline, the ratio Vigil / peer and the spread of that ratio over the rounds.

Everything runs on 127.0.0.1 with ephemeral ports and temporary directories; every child is
stopped at the end, also on failure. Without Prometheus or Alertmanager the benchmark says so
and exits 0 (`make bench` installs them with apt-get when it can).

The workload (benchmarks/peer_config.py): DESIGN §2's ten rules. Vigil is `vigil serve` from
this checkout on a fresh SQLite file, VIGIL_INTERVAL=1, samples pushed to POST /api/ingest
with an ingest token, a JSON webhook channel (apprise `json://`) to the benchmark's receiver.
Prometheus scrapes the benchmark's exporter and evaluates every 1 s, one alert per rule and
level with `for: 1s` (firing on the 2nd breaching evaluation, as Vigil opens on the 2nd
breaching reading) and `keep_firing_for: 2s` (resolved on the 3rd normal evaluation, as Vigil
resolves on the 3rd normal reading); Alertmanager sends to the same receiver, group_wait 0.

Figures, and exactly what is measured:
1. bad value -> alert received (and normal value -> resolution received): from just before the
   bad value is made available (the ingest POST is sent / the exporter's value is set; the
   moment is drawn at random within the 1 s grid) to the webhook request arriving at the
   receiver; median and p95 over the repetitions of all rounds, after one unmeasured
   repetition (the first notification after start pays one-off costs: it is shown apart).
2. of which trigger -> receiver: Vigil: the incident's triggered_at (resolved_at), read from the
   API by the id in the message, which is the start of the cycle that opened it; peer: the
   alert's startsAt (endsAt) in the webhook, which is the timestamp of the Prometheus
   evaluation that fired (resolved) it. Both include that evaluation, then the send.
3. CPU at rest per 5 minutes: user+system CPU of the whole process tree (Vigil: the serve
   process; peer: Prometheus and Alertmanager) from /proc over a window, scaled to 300 s,
   while fed the ten values each second (one push of 10 samples / one scrape) and no alert
   open; memory at rest: resident set (RSS) of the same tree at the end of the window.
4. CPU per ingested sample: the same tree's CPU over a saturation window divided by the
   samples stored in it (Vigil: vigil_ingested_samples_total, pushed by wrk with enough
   pushes in flight that Vigil sets the pace, benchmarks/peer_push.lua; peer:
   prometheus_tsdb_head_samples_appended_total, scraping an exporter with many series at a
   short interval); samples/s: those samples over the window. When Prometheus
   keeps up with the offered load it is not saturated, and the ratio is an upper bound.
5. 10,000 rules, one cycle: Vigil's monitor cycle with storage, in process as in
   bench_monitor.py (benchmarks/peer_rules.py), against Prometheus's
   prometheus_rule_group_last_duration_seconds for one group evaluating the same two
   thresholds over 10,000 series; 1 in 50 breaching in both.

    python benchmarks/bench_peer.py [--quick] [--rounds N] [--reps N] [--rest-seconds S] ...

VIGIL_BENCH_QUICK=1 (or --quick) makes a short run (2 rounds, 3 repetitions, a 20 s rest window).
VIGIL_BENCH_PROMETHEUS, VIGIL_BENCH_ALERTMANAGER and VIGIL_BENCH_WRK name other binaries than
those on PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peer_config import BAD, GOOD, INTERVAL, NORMAL, PROBE, WORKLOAD
from peer_harness import (
    Arrival,
    BenchError,
    Children,
    Exporter,
    Receiver,
    cpu_mark,
    process_tree,
    rss_bytes,
    terminate_on_sigterm,
)
from peer_prometheus import PeerSide
from peer_results import Options, Round, report
from peer_rules import build_rule_database, cycle_ms
from peer_vigil import VigilSide

ROOT = Path(__file__).resolve().parents[1]
ALERT_TIMEOUT = 30.0  # a notification later than this is a failure, not a figure


def parse_options(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    quick_env = os.environ.get("VIGIL_BENCH_QUICK", "") not in ("", "0")
    parser.add_argument("--quick", action="store_true", default=quick_env)
    parser.add_argument("--rounds", type=int, help="alternating rounds (3; quick 2)")
    parser.add_argument("--reps", type=int, help="detections per round (10; quick 3)")
    parser.add_argument("--rest-seconds", type=float, help="CPU-at-rest window (60; quick 20)")
    parser.add_argument("--saturation-seconds", type=float, help="(30; quick 8)")
    parser.add_argument(
        "--connections", type=int, default=32, help="Vigil pushes in flight at saturation"
    )
    parser.add_argument("--batch", type=int, default=100, help="samples per push")
    parser.add_argument("--sat-targets", type=int, default=4, help="Prometheus targets")
    parser.add_argument("--sat-series", type=int, default=10_000, help="series per target")
    parser.add_argument("--sat-interval", type=float, default=0.25, help="their scrape interval")
    parser.add_argument("--big-rules", type=int, default=10_000)
    parser.add_argument("--big-cycles", type=int, help="cycles measured (20; quick 8)")
    parser.add_argument(
        "--group-interval",
        type=float,
        default=0.001,
        help="Alertmanager's group_interval in s: the smallest it takes (it refuses 0)",
    )
    parser.add_argument("--deadline", type=float, help="whole run, s (5400; quick 1800)")
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    for name, value in vars(args).items():
        if isinstance(value, int | float) and not isinstance(value, bool) and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {value}")
    if args.big_rules < len(WORKLOAD):
        parser.error(f"--big-rules must be at least the {len(WORKLOAD)} default rules")

    def pick(value: float | None, full: float, short: float) -> float:
        return value if value is not None else (short if quick else full)

    return Options(
        rounds=int(pick(args.rounds, 3, 2)),
        reps=int(pick(args.reps, 10, 3)),
        warmup=5.0 if quick else 10.0,
        rest_seconds=pick(args.rest_seconds, 60, 20),
        saturation_seconds=pick(args.saturation_seconds, 30, 8),
        connections=args.connections,
        batch=args.batch,
        sat_targets=args.sat_targets,
        sat_series=args.sat_series,
        sat_interval=args.sat_interval,
        big_rules=args.big_rules,
        big_cycles=int(pick(args.big_cycles, 20, 8)),
        group_interval=args.group_interval,
        deadline=pick(args.deadline, 5400, 1800),
        seed=args.seed,
        quick=quick,
    )


# -- what a system under test offers the phases ----------------------------------------------


class Side(Protocol):
    label: str

    def roots(self) -> list[int]: ...
    def inject(self, values: dict[str, float]) -> float: ...
    def is_opened(self, body: object, path: str) -> bool: ...
    def is_resolved(self, body: object, path: str) -> bool: ...
    def triggered(self, body: object, *, resolved: bool) -> float: ...
    def feed_every(self, period: float) -> None: ...


def at_rest(side: Side, seconds: float) -> tuple[float, float]:
    side.feed_every(INTERVAL)
    before = cpu_mark(side.roots())
    time.sleep(seconds)
    after = cpu_mark(side.roots())
    per_5_min = (after.cpu - before.cpu) / (after.at - before.at) * 300
    return per_5_min, float(rss_bytes(process_tree(side.roots())))


def detections(side: Side, receiver: Receiver, reps: int, rng: random.Random, out: Round) -> None:
    """``reps`` times: break the probe, wait for the alert, repair it, wait for the
    resolution. One more time first, kept apart: a system's first notification after start
    pays one-off costs (Vigil's apprise loads its plugins then)."""
    # Vigil reads a pushed metric's newest sample of the last interval: a pusher at exactly the
    # interval would leave some cycles without data, so the feed runs at twice the rate here.
    side.feed_every(INTERVAL / 2)
    time.sleep(2 * INTERVAL)
    for rep in range(reps + 1):
        first = Round()
        into = first if rep == 0 else out
        for bad, series, deliveries, match in (
            (True, into.detect, into.deliver_open, side.is_opened),
            (False, into.resolve, into.deliver_resolve, side.is_resolved),
        ):
            time.sleep(rng.uniform(0, INTERVAL))  # a random phase against both 1 s grids
            since = receiver.mark()
            began = side.inject({PROBE: BAD if bad else GOOD})
            arrival = receiver.wait(_matching(match), since=since, timeout=ALERT_TIMEOUT)
            series.append(arrival.mono - began)
            deliveries.append(arrival.wall - side.triggered(_body(arrival.body), resolved=not bad))
        if rep == 0:
            out.first_detect, out.first_deliver = first.detect[0], first.deliver_open[0]
        time.sleep(INTERVAL)


def _matching(match: Callable[[object, str], bool]) -> Callable[[Arrival], bool]:
    return lambda arrival: match(_body(arrival.body), arrival.path)


def _body(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return None


# -- the run ------------------------------------------------------------------------------------


@dataclass
class Tools:
    vigil: Path
    prometheus: str
    alertmanager: str
    wrk: Path


def find_tools() -> Tools | str:
    """The programs, or why the benchmark cannot run here."""
    if not Path("/proc/self/stat").exists():
        return "needs Linux (/proc) to measure CPU and memory"
    prometheus = shutil.which(os.environ.get("VIGIL_BENCH_PROMETHEUS") or "prometheus")
    alertmanager = shutil.which(
        os.environ.get("VIGIL_BENCH_ALERTMANAGER") or "prometheus-alertmanager"
    ) or shutil.which("alertmanager")
    wrk = shutil.which(os.environ.get("VIGIL_BENCH_WRK") or "wrk")
    found = (("prometheus", prometheus), ("alertmanager", alertmanager), ("wrk", wrk))
    missing = [name for name, path in found if not path]
    if missing or prometheus is None or alertmanager is None or wrk is None:
        return (
            f"{' and '.join(missing)} not installed (`make bench` installs Debian's "
            "prometheus, prometheus-alertmanager and wrk with apt-get when it can; it could "
            "not here)"
        )
    vigil = Path(sys.executable).with_name("vigil")
    if not vigil.exists():
        vigil = ROOT / ".venv" / "bin" / "vigil"
    if not vigil.exists():
        raise BenchError("no `vigil` command beside this Python or in .venv: run `make install`")
    return Tools(vigil, prometheus, alertmanager, Path(wrk))


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    def expired(signum: int, frame: FrameType | None) -> None:
        raise BenchError(f"the run exceeded its deadline of {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(max(1, round(seconds)))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(options: Options, tools: Tools) -> dict[str, list[Round]]:
    rng = random.Random(options.seed)
    results: dict[str, list[Round]] = {"vigil": [], "peer": []}
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="vigil-peer-") as tmp:
        children = Children()
        stack.callback(children.close)
        receiver, exporter = Receiver(), Exporter()
        for server in (receiver, exporter):
            server.start()
            stack.callback(server.close)
        folder = Path(tmp)
        template = folder / "template" / "rules.db"
        template.parent.mkdir()
        took = build_rule_database(template, options.big_rules)
        print(
            f"({options.big_rules:,} Vigil rules written in {took:.0f} s, once, copied per round)"
        )
        for number in range(1, options.rounds + 1):
            for key in ("vigil", "peer"):
                where = folder / f"{key}-{number}"
                where.mkdir()
                began = time.monotonic()
                out = Round()
                if key == "vigil":
                    vigil = VigilSide(children, tools.vigil, where, receiver=receiver.port)
                    try:
                        vigil.start()
                        measure(vigil, options, receiver, rng, out)
                        out.saturation = vigil.saturate(
                            wrk=tools.wrk,
                            connections=options.connections,
                            batch=options.batch,
                            seconds=options.saturation_seconds,
                        )
                    finally:
                        vigil.stop()
                    out.cycle_ms = cycle_ms(template, where, cycles=options.big_cycles)
                else:
                    peer = PeerSide(
                        children,
                        tools.prometheus,
                        tools.alertmanager,
                        where,
                        receiver=receiver.port,
                        exporter=exporter,
                        group_interval=options.group_interval,
                    )
                    with peer.main():
                        measure(peer, options, receiver, rng, out)
                    out.saturation = peer.saturate(
                        targets=options.sat_targets,
                        series=options.sat_series,
                        interval=options.sat_interval,
                        seconds=options.saturation_seconds,
                    )
                    out.cycle_ms = peer.rule_cycle_ms(
                        rules=options.big_rules, samples=options.big_cycles
                    )
                results[key].append(out)
                print(f"(round {number}: {key} done in {time.monotonic() - began:.0f} s)")
    return results


def measure(
    side: Side, options: Options, receiver: Receiver, rng: random.Random, out: Round
) -> None:
    side.feed_every(INTERVAL)
    time.sleep(options.warmup)  # start-up work is not rest
    out.rest_cpu, out.rest_rss = at_rest(side, options.rest_seconds)
    detections(side, receiver, options.reps, rng, out)


# -- the report -----------------------------------------------------------------------------


def machine_load() -> str:
    try:
        one, five, _ = Path("/proc/loadavg").read_text().split()[:3]
    except (OSError, ValueError):
        return ""
    cores = os.cpu_count() or 1
    note = "  (BUSY: figures are noisy)" if float(five) > 0.5 * cores else ""
    return f"load average {one} (1 min), {five} (5 min) on {cores} cores{note}"


def main(argv: Sequence[str]) -> int:
    options = parse_options(argv)
    tools = find_tools()
    if isinstance(tools, str):
        print(f"skipped: {tools}")
        return 0
    print(
        f"Vigil ({tools.vigil}) vs Prometheus ({tools.prometheus}) + Alertmanager "
        f"({tools.alertmanager}); {'quick' if options.quick else 'full'} run"
    )
    print(f"before: {machine_load()}")
    metrics = ", ".join(t.metric for t in WORKLOAD)
    print(f"workload: {len(WORKLOAD)} rules ({metrics}); probe {PROBE}: {GOOD:g} -> {BAD:g}")
    assert set(NORMAL) == {t.metric for t in WORKLOAD}
    try:
        with terminate_on_sigterm(), deadline(options.deadline):
            results = run(options, tools)
    except BenchError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    print(f"after: {machine_load()}")
    report(results, options)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
