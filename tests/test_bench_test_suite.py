"""benchmarks/bench_test_suite.py's own logic: reading pytest's summary, the caches it removes
before a run, the ratios it prints. (The benchmark itself runs two whole test suites.)"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The benchmark as a module, imported as it imports itself (beside bench_peer.py)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(
        "bench_test_suite", ROOT / "benchmarks" / "bench_test_suite.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
        del sys.modules[spec.name]
    return module


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            "...\n=== 2766 passed in 339.22s (0:05:39) ===\n",
            ("2766 passed", 339.22),
        ),
        (
            "=== 1177 passed, 4 failed in 1090.70s (0:18:10) ===\nmake: *** [test] Error 1\n",
            ("1177 passed, 4 failed", 1090.7),
        ),
        ("==== 3 passed, 1 skipped in 0.51s ====", ("3 passed, 1 skipped", 0.51)),
        # The last summary wins: an earlier one is a child pytest's echoed output.
        ("= 1 passed in 1.00s =\nlog\n= 9 passed in 9.00s =", ("9 passed", 9.0)),
        ("error: mypy found 3 errors\nmake: *** [test] Error 1", ("no pytest summary", None)),
    ],
)
def test_the_summary_is_pytests_last_line(
    bench: ModuleType, output: str, expected: tuple[str, float | None]
) -> None:
    assert bench.summary(output) == expected


def test_a_run_starts_without_the_caches_a_fresh_clone_has_not(
    bench: ModuleType, tmp_path: Path
) -> None:
    caches = [
        tmp_path / ".mypy_cache" / "3.11" / "x.json",
        tmp_path / ".pytest_cache" / "v" / "x",
        tmp_path / ".ruff_cache" / "x",
        tmp_path / "src" / "vigil" / "__pycache__" / "x.pyc",
        tmp_path / "tests" / "web" / "__pycache__" / "x.pyc",
    ]
    kept = [
        tmp_path / "src" / "vigil" / "x.py",
        tmp_path / ".venv" / "lib" / "__pycache__" / "x.pyc",  # installed, as on any machine
        tmp_path / "node_modules" / "__pycache__" / "x.pyc",
    ]
    for path in caches + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    for name in (".coverage", ".coverage.worker.1"):
        (tmp_path / name).write_text("x")

    bench.clean(tmp_path)

    assert [path for path in caches if path.exists()] == []
    assert list(tmp_path.glob(".coverage*")) == []
    assert [path for path in kept if not path.exists()] == []


def test_the_ratio_is_of_the_medians_and_says_when_a_side_was_not_measured(
    bench: ModuleType,
) -> None:
    assert bench.ratio("pytest", [100.0, 120.0, 110.0], [50.0, 60.0, 70.0]) == (
        "pytest: base 110.0 s, head 60.0 s, ratio 0.545"
    )
    assert bench.ratio("pytest", [None], [50.0]) == "pytest: not measured"


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--pairs", "0"], "--pairs must be at least 1"),
        (["--keep", str(ROOT / "kept")], "--keep must be outside this checkout"),
    ],
)
def test_bad_options_are_one_clear_line(
    bench: ModuleType, argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        bench.parse(argv)
    assert exited.value.code == 2
    assert said in capsys.readouterr().err


@pytest.mark.parametrize(
    ("base", "head", "said"),
    [
        (
            [(200.0, 0), (210.0, 0)],
            [(90.0, 0), (100.0, 0)],
            "0.450, 0.476 (target <= 0.5: met in every pair)",
        ),
        ([(200.0, 0), (200.0, 0)], [(90.0, 0), (110.0, 0)], "0.450, 0.550 (target <= 0.5: missed)"),
        ([(200.0, 2)], [(90.0, 0)], "0.450 (target <= 0.5: not judged: the base failed)"),
        ([(200.0, 0)], [(90.0, 1)], "(target <= 0.5: not judged: the head failed)"),
    ],
)
def test_the_target_is_judged_on_every_pair_and_only_on_passing_runs(
    bench: ModuleType,
    base: list[tuple[float, int]],
    head: list[tuple[float, int]],
    said: str,
) -> None:
    def runs(walls: list[tuple[float, int]]) -> list[object]:
        return [bench.Run(wall, wall, wall, "outcome", code) for wall, code in walls]

    assert said in bench.verdict(runs(base), runs(head))


def test_a_run_started_in_the_background_still_takes_ctrl_c(bench: ModuleType) -> None:
    """A shell without job control starts ``&`` jobs ignoring SIGINT; the suites' runs must
    not inherit that (their Ctrl-C tests would fail)."""
    child = [
        sys.executable,
        "-c",
        "import signal; print(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)",
    ]
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ignored = subprocess.run(child, capture_output=True, text=True, check=True).stdout
        bench.interruptible()
        restored = subprocess.run(child, capture_output=True, text=True, check=True).stdout
    finally:
        signal.signal(signal.SIGINT, before)
    assert (ignored, restored) == ("True\n", "False\n")
