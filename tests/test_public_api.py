"""The public names are pinned: adding or removing one is a decision, not an accident."""

from __future__ import annotations

import subprocess
import sys

import vigil

PUBLIC = {
    "DEFAULT_RULES",
    "Aggregate",
    "Direction",
    "DuplicateIncidentError",
    "Event",
    "EventKind",
    "HealthRegistry",
    "IllegalTransitionError",
    "Incident",
    "Level",
    "MetricSource",
    "Metrics",
    "NotFoundError",
    "Recorder",
    "Resolution",
    "Rule",
    "Settings",
    "Severity",
    "Status",
    "ValidationError",
    "Vigil",
    "VigilError",
    "WindowSource",
    "__version__",
}


def test_exported_names_are_pinned() -> None:
    assert set(vigil.__all__) == PUBLIC
    for name in vigil.__all__:
        assert getattr(vigil, name) is not None


BLOCK_OPTIONAL = """
import sys
from importlib.abc import MetaPathFinder

class Missing(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"discord", "numpy"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Missing())
"""


def test_vigil_works_without_its_optional_extras() -> None:
    """Neither discord.py (the discord extra) nor numpy (speedups) is needed to import
    Vigil, record and summarise a window (pure Python), or evaluate."""
    code = BLOCK_OPTIONAL + (
        "import vigil\n"
        "from array import array\n"
        "from vigil.metrics.windows import summarize\n"
        "r = vigil.Recorder()\n"
        "[r.record('x', float(i)) for i in range(1000)]\n"
        "print(r.window('x', 60).p95)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) == 949.05


def test_the_discord_integration_says_how_to_install_discord_py() -> None:
    code = BLOCK_OPTIONAL + "import vigil.integrations.discord\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "pip install 'vigil-alerts[discord]'" in result.stderr
