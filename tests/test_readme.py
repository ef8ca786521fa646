"""The README is the truth: its configuration reference comes from the Settings class, and its
Python snippets compile and import what they say, from the public façade."""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
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


def _snippets() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", readme, flags=re.MULTILINE | re.DOTALL)


def _imports(snippet: str) -> list[ast.Import | ast.ImportFrom]:
    # The snippets run inside a bot's coroutine: ``async with`` at the top level is fine.
    tree = compile(snippet, "README.md", "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    assert isinstance(tree, ast.Module)
    return [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]


def test_the_readme_snippets_import_from_the_facade_and_their_imports_run() -> None:
    snippets = _snippets()
    assert len(snippets) >= 3
    statements = [node for snippet in snippets for node in _imports(snippet)]
    modules = {node.module for node in statements if isinstance(node, ast.ImportFrom)}
    vigil_modules = {name for name in modules if name and name.split(".")[0] == "vigil"}
    # A bot author imports Vigil's names from ``vigil``; only an integration has its own module.
    assert vigil_modules and all(
        name == "vigil" or name.startswith("vigil.integrations.") for name in vigil_modules
    ), vigil_modules
    code = "\n".join(ast.unparse(node) for node in statements)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"{code}\n{result.stderr}"
