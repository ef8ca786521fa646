"""Run every benchmark and write BENCHMARKS.md: each one's output, the machine and the date.

    python scripts/run_benchmarks.py [BENCHMARKS.md]

A benchmark that fails is recorded as failed (with its output) and makes this script exit
non-zero after the others have run.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{model}, {os.cpu_count()} cores{memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}"
    )


def main(target: Path) -> int:
    scripts = sorted((ROOT / "benchmarks").glob("bench_*.py"))
    sections: list[str] = []
    failed: list[str] = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        began = time.perf_counter()
        run = subprocess.run(
            [sys.executable, str(script)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - began
        output = (run.stdout + (run.stderr if run.returncode else "")).rstrip()
        print(output, flush=True)
        status = "" if run.returncode == 0 else f" — FAILED (exit {run.returncode})"
        if run.returncode:
            failed.append(script.name)
        sections.append(
            f"## {script.name}{status}\n\n{_first_paragraph(script)}\n\n"
            f"Ran in {seconds:.0f} s.\n\n```\n{output}\n```\n"
        )
    header = (
        "# Benchmarks\n\n"
        "Written by `make bench` (scripts/run_benchmarks.py): every script in `benchmarks/` "
        "measures Vigil against its baseline in the same run and prints the ratio.\n\n"
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"
        f"- Machine: {machine()}\n\n"
        "The machines are shared and noisy: compare ratios (measured in one run), not "
        "absolute times across runs.\n\n"
    )
    target.write_text(header + "\n".join(sections), encoding="utf-8")
    print(f"wrote {target}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _first_paragraph(script: Path) -> str:
    source = script.read_text(encoding="utf-8")
    if source.startswith('"""'):
        doc = source[3 : source.index('"""', 3)]
        return doc.strip().split("\n\n")[0].replace("\n", " ")
    return ""


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "BENCHMARKS.md"))
