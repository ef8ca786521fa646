"""scripts/run_benchmarks.py: every benchmark into BENCHMARKS.md, or chosen ones replacing only
their own sections."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).parents[1]


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "run_benchmarks", ROOT / "scripts" / "run_benchmarks.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench(root: Path, name: str, prints: str, *, exit_code: int = 0) -> None:
    (root / "benchmarks" / f"{name}.py").write_text(
        f'"""{name} against its baseline.\n\nMore."""\n'
        f"import sys\nprint({prints!r})\nsys.exit({exit_code})\n",
        encoding="utf-8",
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "benchmarks").mkdir()
    _bench(tmp_path, "bench_a", "a: 1.5x")
    _bench(tmp_path, "bench_b", "b: 0.9x")
    return tmp_path


def test_every_benchmark_gets_its_section(project: Path) -> None:
    target = project / "BENCHMARKS.md"
    assert _runner().main(target, root=project) == 0
    text = target.read_text(encoding="utf-8")
    assert text.index("## bench_a.py") < text.index("## bench_b.py")
    assert "bench_a against its baseline." in text and "More." not in text
    assert "a: 1.5x" in text and "b: 0.9x" in text


def test_chosen_benchmarks_replace_only_their_sections(project: Path) -> None:
    target = project / "BENCHMARKS.md"
    runner = _runner()
    assert runner.main(target, root=project) == 0
    _bench(project, "bench_a", "a: 1.1x")
    _bench(project, "bench_b", "b: 5.0x")
    assert runner.main(target, ["bench_a"], root=project) == 0
    text = target.read_text(encoding="utf-8")
    assert "a: 1.1x" in text and "a: 1.5x" not in text
    assert "b: 0.9x" in text and "b: 5.0x" not in text  # not rerun: kept as it was
    assert text.count("## bench_") == 2


def test_a_failed_benchmark_is_recorded_and_fails_the_run(project: Path) -> None:
    _bench(project, "bench_b", "broke", exit_code=3)
    target = project / "BENCHMARKS.md"
    assert _runner().main(target, root=project) == 1
    text = target.read_text(encoding="utf-8")
    assert "## bench_b.py — FAILED (exit 3)" in text and "broke" in text
    assert "a: 1.5x" in text


def test_an_unknown_name_is_refused_and_the_file_left_alone(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = project / "BENCHMARKS.md"
    target.write_text("kept\n", encoding="utf-8")
    assert _runner().main(target, ["bench_nope"], root=project) == 2
    assert target.read_text(encoding="utf-8") == "kept\n"
    assert "no such benchmark: bench_nope" in capsys.readouterr().err
