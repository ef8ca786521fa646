"""The test suite's time against an earlier commit's, back to back: ``make test`` in a clean
worktree of each commit, alternating, the earlier first.

    python benchmarks/bench_test_suite.py [--base COMMIT] [--head COMMIT] [--pairs N]
                                          [--keep DIR]

``--base`` defaults to 1641bc7, the commit the issue "a test suite twice as fast" was filed at
(its target: ``make test`` in at most half that commit's time, on the same machine in the same
conditions); ``--head`` to HEAD (what is committed, not the working tree). Each commit gets a
worktree with its own virtual environment (``make install``, not measured); before every run
the bytecode, mypy, ruff, pytest and coverage caches are removed, as on a fresh clone.

Printed per run: the wall time of ``make test``, pytest's own time, the user+system CPU of
everything it ran and its summary line; then the ratios of the medians (head / base), and each
pair's ``make test`` ratio against the target (met only if met in every pair). The CPU
is what ``make`` and its children used, not the database server's. The machine is shared:
its load is printed before and after, and only runs of the same pair compare well. Each pair is
two whole test suites, 10 to 30 minutes here; ``--keep DIR`` keeps the worktrees (and their
virtual environments) for the next run.
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_peer import ROOT, machine_load

BASE = "1641bc7"
TARGET = 0.5
CACHES = (".mypy_cache", ".pytest_cache", ".ruff_cache")
# pytest's last line: "==== 2766 passed, 3 skipped in 339.22s (0:05:39) ====".
SUMMARY = re.compile(r"^=+ (?P<outcome>.+?) in (?P<seconds>[\d.]+)s(?: \([\d:]+\))? =+$")


@dataclass(frozen=True)
class Run:
    wall: float
    pytest: float | None  # None when pytest printed no summary (it did not get to run)
    cpu: float
    outcome: str
    exit_code: int


def summary(output: str) -> tuple[str, float | None]:
    """pytest's outcome and its own seconds, from its last summary line in ``output``."""
    for line in reversed(output.splitlines()):
        found = SUMMARY.match(line.strip())
        if found:
            return found["outcome"], float(found["seconds"])
    return "no pytest summary", None


def clean(tree: Path) -> None:
    """The caches a fresh clone has not: what a run left must not speed up the next."""
    for name in CACHES:
        shutil.rmtree(tree / name, ignore_errors=True)
    for data in tree.glob(".coverage*"):
        data.unlink()
    for folder in ("src", "tests", "benchmarks", "scripts", "examples"):
        for cache in sorted((tree / folder).rglob("__pycache__")):
            shutil.rmtree(cache, ignore_errors=True)


def run_suite(tree: Path, log: Path) -> Run:
    clean(tree)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(["make", "test"], cwd=tree, stdout=out, stderr=subprocess.STDOUT)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    outcome, seconds = summary(log.read_text(errors="replace"))
    return Run(wall, seconds, cpu, outcome, done.returncode)


def add_worktree(commit: str, where: Path) -> Path:
    """A worktree of ``commit`` at ``where`` (kept if it is there already)."""
    if not (where / "Makefile").exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(where), commit],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
    return where


def install(tree: Path, log: Path) -> None:
    with log.open("w") as out:
        subprocess.run(["make", "install"], cwd=tree, check=True, stdout=out, stderr=out)


def resolve(commit: str) -> str:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError:
        raise SystemExit(f"no such commit here: {commit!r}") from None
    return found.stdout.strip()


def tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def show(run: Run) -> str:
    pytest = "-" if run.pytest is None else f"{run.pytest:.1f} s"
    failed = "" if run.exit_code == 0 else f", exit code {run.exit_code}"
    return (
        f"make test {run.wall:.1f} s, pytest {pytest}, CPU {run.cpu:.0f} s, {run.outcome}{failed}"
    )


def ratio(name: str, base: Sequence[float | None], head: Sequence[float | None]) -> str:
    base_known = [value for value in base if value is not None]
    head_known = [value for value in head if value is not None]
    if not base_known or not head_known:
        return f"{name}: not measured"
    base_median, head_median = statistics.median(base_known), statistics.median(head_known)
    return (
        f"{name}: base {base_median:.1f} s, head {head_median:.1f} s, "
        f"ratio {head_median / base_median:.3f}"
    )


def interruptible() -> None:
    """Started in the background (``&`` without job control), this process and so every test
    run would ignore SIGINT, and the suites' Ctrl-C tests fail (1641bc7's four do). With
    Python's own handler here, the children start with SIGINT's default."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def verdict(base: Sequence[Run], head: Sequence[Run]) -> str:
    """Each pair's ``make test`` ratio against the target: met only if met in every pair, and
    judged only if every run passed (a failed test may end early, or wait out a deadline)."""
    walls = [h.wall / b.wall for b, h in zip(base, head, strict=True)]
    failed = [
        side for side, runs in (("base", base), ("head", head)) if any(r.exit_code for r in runs)
    ]
    if failed:
        judged = f"not judged: the {' and the '.join(failed)} failed"
    else:
        judged = "met in every pair" if max(walls) <= TARGET else "missed"
    each = ", ".join(f"{wall:.3f}" for wall in walls)
    return f"make test ratio per pair: {each} (target <= {TARGET}: {judged})"


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default=BASE, help=f"the earlier commit (default {BASE})")
    parser.add_argument("--head", default="HEAD", help="the later commit (default HEAD)")
    parser.add_argument("--pairs", type=int, default=1, help="base-then-head pairs (default 1)")
    parser.add_argument("--keep", type=Path, help="keep the worktrees in this folder")
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    if args.keep is not None and args.keep.resolve().is_relative_to(ROOT):
        parser.error(f"--keep must be outside this checkout ({ROOT}), or git sees its worktrees")
    return args


def main(argv: Sequence[str]) -> int:
    args = parse(argv)
    interruptible()
    commits = {"base": resolve(args.base), "head": resolve(args.head)}
    folder = args.keep or Path(tempfile.mkdtemp(prefix="vigil-suite-"))
    folder.mkdir(parents=True, exist_ok=True)
    trees: dict[str, Path] = {}
    try:
        for side, commit in commits.items():
            log = folder / f"{side}-install.log"
            try:
                trees[side] = add_worktree(commit, folder / f"{side}-{commit[:12]}")
                install(trees[side], log)
            except subprocess.CalledProcessError as exc:
                print(f"failed: {' '.join(exc.cmd)} for the {side}, {commit[:12]}")
                print(tail(log) or exc.stderr or "")
                return 1
        print(f"base {commits['base'][:12]}, head {commits['head'][:12]}; {args.pairs} pair(s)")
        print(f"before: {machine_load()}", flush=True)
        runs: dict[str, list[Run]] = {"base": [], "head": []}
        for number in range(1, args.pairs + 1):
            for side, tree in trees.items():
                run = run_suite(tree, folder / f"{side}-{number}.log")
                runs[side].append(run)
                print(f"pair {number} {side}: {show(run)}", flush=True)
        print(f"after: {machine_load()}")
        print(ratio("make test", [r.wall for r in runs["base"]], [r.wall for r in runs["head"]]))
        print(ratio("pytest", [r.pytest for r in runs["base"]], [r.pytest for r in runs["head"]]))
        print(ratio("CPU", [r.cpu for r in runs["base"]], [r.cpu for r in runs["head"]]))
        print(verdict(runs["base"], runs["head"]))
        for side, side_runs in runs.items():
            failed = [n for n, run in enumerate(side_runs, 1) if run.exit_code != 0]
            if failed:
                print(f"failed: the {side}'s make test failed in pair {failed[0]}; its end:")
                print(tail(folder / f"{side}-{failed[0]}.log"))
                return 1
    finally:
        if args.keep is None:
            for tree in trees.values():
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(tree)],
                    cwd=ROOT,
                    check=False,
                    capture_output=True,
                )
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
