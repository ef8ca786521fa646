"""Run the benchmarks and write BENCHMARKS.md: each one's output, the machine and the date.

    python scripts/run_benchmarks.py [BENCHMARKS.md] [bench_peer bench_api ...]

With no names every script in benchmarks/ runs and the file is written anew. With names only
those run, and their sections replace the ones of the same name in the file (the others are
kept as they were, each with the date it ran). A benchmark that fails is recorded as failed
(with its output) and makes this script exit non-zero after the others have run.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Sequence
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


def main(target: Path, names: Sequence[str] = (), *, root: Path = ROOT) -> int:
    scripts = sorted((root / "benchmarks").glob("bench_*.py"))
    if names:
        known = {script.stem: script for script in scripts}
        unknown = [name for name in names if name.removesuffix(".py") not in known]
        if unknown:
            print(
                f"no such benchmark: {', '.join(unknown)} (benchmarks/ has "
                f"{', '.join(sorted(known))})",
                file=sys.stderr,
            )
            return 2
        scripts = sorted({known[name.removesuffix(".py")] for name in names})
    sections = _sections(target) if names else {}
    failed: list[str] = []
    here = machine()
    for script in scripts:
        print(f"== {script.name}", flush=True)
        began = time.perf_counter()
        run = subprocess.run(
            [sys.executable, str(script)],
            cwd=root,
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
        sections[script.name] = (
            f"## {script.name}{status}\n\n{_first_paragraph(script)}\n\n"
            f"Ran in {seconds:.0f} s on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {here}.\n\n"
            f"```\n{output}\n```\n"
        )
    header = (
        "# Benchmarks\n\n"
        "Written by `make bench` (scripts/run_benchmarks.py): every script in `benchmarks/` "
        "measures Vigil against its baseline in the same run and prints the ratio.\n\n"
        "Each section says when and on which machine it ran. The machines are shared and "
        "noisy: compare ratios (measured in one run), not absolute times across runs.\n\n"
    )
    body = "\n".join(sections[name] for name in sorted(sections))
    target.write_text(header + body, encoding="utf-8")
    print(f"wrote {target}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _sections(target: Path) -> dict[str, str]:
    """The file's sections by script name (``## bench_x.py ...`` up to the next one)."""
    if not target.exists():
        return {}
    found: dict[str, str] = {}
    for chunk in re.split(r"^(?=## )", target.read_text(encoding="utf-8"), flags=re.MULTILINE):
        if chunk.startswith("## "):
            name = chunk[3:].split(maxsplit=1)[0]
            found[name] = chunk.rstrip("\n") + "\n"
    return found


def _first_paragraph(script: Path) -> str:
    source = script.read_text(encoding="utf-8")
    if source.startswith('"""'):
        doc = source[3 : source.index('"""', 3)]
        return doc.strip().split("\n\n")[0].replace("\n", " ")
    return ""


if __name__ == "__main__":
    arguments = sys.argv[1:]
    file = ROOT / "BENCHMARKS.md"
    if arguments and arguments[0].endswith(".md"):
        file, arguments = Path(arguments[0]), arguments[1:]
    sys.exit(main(file, arguments))
