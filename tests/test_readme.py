"""The README is the truth: its configuration reference comes from the Settings class."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from vigil.settings import Settings

ROOT = Path(__file__).parents[1]


def _reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "settings_reference", ROOT / "scripts" / "settings_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_setting_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [
        f"VIGIL_{name.upper()}"
        for name in Settings.model_fields
        if f"VIGIL_{name.upper()}" not in readme
    ]
    assert missing == [], (
        f"README lacks {missing}: run python scripts/settings_reference.py --write"
    )


def test_the_readme_table_is_the_generated_one() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert _reference().block() in readme, (
        "the configuration table in README.md is stale: "
        "run python scripts/settings_reference.py --write"
    )


def test_the_readme_shows_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
