"""CPU and memory at rest, alone: bench_peer.py's third figure without the rest of its run, so it
can be measured often (before and after a change, with settings varied).

The same setting as bench_peer.py: `vigil serve` from this checkout on a fresh SQLite file with
DESIGN §2's ten rules at a 1 s interval, fed the ten values by one push a second (``--no-feed``:
not fed, the monitor alone), against Prometheus + Alertmanager (Debian's packages) scraping the
same ten values every second and evaluating the same rules. Alternating rounds, Vigil first;
each round's figure is the user+system CPU of the process tree over the window, scaled to five
minutes, and the RSS at its end. Printed: every round, the medians, and the ratio of the
medians (Vigil / peer) with the spread of the per-round ratios. CPU seconds are robust to the
machine's noise; a busy machine still shows as a wider spread.

    python benchmarks/bench_rest.py [--rounds N] [--seconds S] [--no-peer] [--no-feed]
                                    [--env VIGIL_SETTING=value ...] [--vigil COMMAND]

Two rounds of 60 s windows by default (VIGIL_BENCH_QUICK=1: 20 s).

Without Prometheus or Alertmanager the peer is skipped (and said so); `make peers` installs them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_peer import ROOT, find_tools, machine_load
from peer_config import INTERVAL
from peer_harness import (
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
from peer_vigil import VigilSide

WARMUP = 10.0  # start-up work is not rest
MIB = 1024 * 1024


def window(roots: Sequence[int], seconds: float) -> tuple[float, float]:
    """CPU seconds per five minutes and RSS (MiB) of the trees under ``roots``."""
    before = cpu_mark(roots)
    time.sleep(seconds)
    after = cpu_mark(roots)
    per_5_min = (after.cpu - before.cpu) / (after.at - before.at) * 300
    return per_5_min, rss_bytes(process_tree(roots)) / MIB


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    quick = os.environ.get("VIGIL_BENCH_QUICK", "") not in ("", "0")
    parser.add_argument(
        "--seconds", type=float, default=20.0 if quick else 60.0, help="the window per round"
    )
    parser.add_argument("--no-peer", action="store_true", help="Vigil only")
    parser.add_argument("--no-feed", action="store_true", help="no pushes: the monitor alone")
    parser.add_argument("--vigil", type=Path, help="the vigil command (a profiling wrapper)")
    parser.add_argument(
        "--env", action="append", default=[], help="VIGIL_NAME=value for `vigil serve`"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0:
        parser.error("--rounds and --seconds must be positive")
    for item in args.env:
        if not item.startswith("VIGIL_") or "=" not in item:
            parser.error(f"--env takes VIGIL_NAME=value, got {item!r}")
    return args


def main(argv: Sequence[str]) -> int:
    args = parse(argv)
    tools = find_tools()
    peer = not args.no_peer and not isinstance(tools, str)
    if isinstance(tools, str) and not args.no_peer:
        print(f"peer skipped: {tools}")
    vigil_command = args.vigil or Path(sys.executable).with_name("vigil")
    if not vigil_command.exists():
        vigil_command = ROOT / ".venv" / "bin" / "vigil"
    extra = dict(item.split("=", 1) for item in args.env)
    print(f"before: {machine_load()}")
    print(
        f"at rest: 10 rules at {INTERVAL:g} s, {'no pushes' if args.no_feed else 'one push/s'}"
        f"{', ' + ' '.join(args.env) if args.env else ''}; {args.seconds:g} s windows"
    )
    figures: dict[str, list[tuple[float, float]]] = {"vigil": [], "peer": []}
    try:
        with (
            terminate_on_sigterm(),
            tempfile.TemporaryDirectory(prefix="vigil-rest-") as tmp,
        ):
            children = Children()
            receiver, exporter = Receiver(), Exporter()
            try:
                for server in (receiver, exporter):
                    server.start()
                for number in range(1, args.rounds + 1):
                    where = Path(tmp) / f"vigil-{number}"
                    where.mkdir()
                    vigil = VigilSide(children, vigil_command, where, receiver=receiver.port)
                    vigil.env.update(extra)
                    try:
                        vigil.start()
                        if args.no_feed and vigil.feeder is not None:
                            vigil.feeder.stop()
                        time.sleep(WARMUP)
                        figures["vigil"].append(window(vigil.roots(), args.seconds))
                    finally:
                        vigil.stop()
                    print(f"round {number} Vigil: {_show(figures['vigil'][-1])}", flush=True)
                    if not peer or isinstance(tools, str):
                        continue
                    where = Path(tmp) / f"peer-{number}"
                    where.mkdir()
                    side = PeerSide(
                        children,
                        tools.prometheus,
                        tools.alertmanager,
                        where,
                        receiver=receiver.port,
                        exporter=exporter,
                        group_interval=0.001,
                    )
                    with side.main():
                        time.sleep(WARMUP)
                        figures["peer"].append(window(side.roots(), args.seconds))
                    print(f"round {number} peer: {_show(figures['peer'][-1])}", flush=True)
            finally:
                children.close()
                for server in (receiver, exporter):
                    server.close()
    except BenchError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    print(f"after: {machine_load()}")
    vigil_cpu = statistics.median(cpu for cpu, _ in figures["vigil"])
    vigil_rss = statistics.median(rss for _, rss in figures["vigil"])
    print(f"Vigil: CPU {vigil_cpu:.2f} s per 5 min, RSS {vigil_rss:.0f} MiB (medians)")
    if figures["peer"]:
        peer_cpu = statistics.median(cpu for cpu, _ in figures["peer"])
        peer_rss = statistics.median(rss for _, rss in figures["peer"])
        ratios = [v[0] / p[0] for v, p in zip(figures["vigil"], figures["peer"], strict=False)]
        print(f"Prometheus + Alertmanager: CPU {peer_cpu:.2f} s per 5 min, RSS {peer_rss:.0f} MiB")
        print(
            f"ratio CPU at rest {vigil_cpu / peer_cpu:.2f} (rounds {min(ratios):.2f}-"
            f"{max(ratios):.2f}), RSS {vigil_rss / peer_rss:.2f}"
        )
    return 0


def _show(figure: tuple[float, float]) -> str:
    return f"CPU {figure[0]:.2f} s per 5 min, RSS {figure[1]:.0f} MiB"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
