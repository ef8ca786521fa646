"""The layering rule (DESIGN.md section 6), checked on the source: every module under
src/vigil is parsed and every ``import`` it makes, at the top or inside a function (and under
``TYPE_CHECKING``), is held against the rule.

The rule:

- ``vigil.core`` imports nothing but the standard library and ``vigil.core`` itself: it is
  pure, and runs anywhere.
- The layers, lowest first: ``core`` < ``metrics``, ``notify``, ``settings``, ``backtest`` <
  ``store``, ``preview`` < ``runtime`` < ``web`` < ``cli``. A module imports its own package and the
  packages of lower layers, never a higher layer nor another package of its own layer
  (``metrics`` and ``notify`` know nothing of each other).
- ``integrations`` and ``demo`` stand beside the layers: they may import anything but
  ``cli``, and only ``cli``, ``demo`` and ``integrations`` may import them.
- The façade (``vigil/__init__.py``) may import anything but ``cli``; nothing imports it back
  (a module names the module that defines what it uses).
- Every top-level module or package of ``vigil`` has its place here: a new one is refused
  until it is given one.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).parents[1] / "src"
FACADE = "vigil"

LAYERS = {
    "_version": 0,
    "_lazy": 0,  # the lazy names of the façade and of vigil.notify
    "core": 0,
    "logmask": 0,
    "metrics": 1,
    "notify": 1,
    "settings": 1,
    "backtest": 1,
    "rulesfile": 1,
    "preview": 2,  # reads history through a store-like port, replays with backtest
    "store": 2,
    "runtime": 3,
    "web": 4,
    "cli": 5,
}
BESIDE = {"integrations", "demo"}  # anything but cli; imported only by cli and each other
TOP = "cli"


@dataclass(frozen=True, order=True)
class Import:
    module: str  # the importing module, e.g. vigil.web.pages.alerts
    target: str  # what it imports, e.g. vigil.store or sqlalchemy.ext
    line: int

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def module_name(path: Path, *, root: Path = SOURCE) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, *, root: Path = SOURCE) -> list[Import]:
    """Every module ``path`` (a file under ``root``) imports, relative imports resolved to the
    package they name."""
    name = module_name(path, root=root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [Import(name, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, *([target] if target else [])])
            found.append(Import(name, target, node.lineno))
    return found


def every_import() -> list[Import]:
    return sorted(i for path in (SOURCE / "vigil").rglob("*.py") for i in imports_of(path))


def part(module: str) -> str:
    """The top-level package (or module) of ``vigil`` that ``module`` belongs to."""
    if module == FACADE:
        return FACADE
    return module.split(".")[1]


def is_vigil(module: str) -> bool:
    return module == FACADE or module.startswith(FACADE + ".")


def problem(item: Import) -> str | None:
    """What is wrong with ``item`` by the rule, or None."""
    source = part(item.module)
    if source == "core":
        if is_vigil(item.target):
            return None if part(item.target) == "core" else "core imports only vigil.core"
        top = item.target.split(".")[0]
        return None if top in sys.stdlib_module_names else "core imports only the stdlib"
    if not is_vigil(item.target):
        return None
    target = part(item.target)
    if target == source:
        return None
    if target == FACADE:
        return "nothing imports the façade: name the defining module"
    if source == FACADE or source in BESIDE:
        return "only the cli imports the cli" if target == TOP else None
    if target in BESIDE:
        return None if source == TOP else f"only {TOP}, demo and integrations import {target}"
    if source not in LAYERS:
        return f"vigil.{source} has no place in the layers"
    if target not in LAYERS:
        return f"vigil.{target} has no place in the layers"
    if LAYERS[target] >= LAYERS[source]:
        return f"{source} (layer {LAYERS[source]}) imports {target} (layer {LAYERS[target]})"
    return None


def test_the_source_keeps_the_layering_rule() -> None:
    wrong = [f"{item}: {why}" for item in every_import() if (why := problem(item)) is not None]
    assert wrong == [], "\n".join(wrong)


def test_every_part_of_vigil_has_a_place() -> None:
    parts = {
        part(module_name(path))
        for path in (SOURCE / "vigil").rglob("*.py")
        if module_name(path) != FACADE
    }
    assert parts - set(LAYERS) - BESIDE == set()


# -- the checker itself: each kind of wrong import is caught -------------------------------


def test_the_checker_catches_each_kind_of_wrong_import() -> None:
    def check(module: str, target: str) -> str | None:
        return problem(Import(module, target, 1))

    assert check("vigil.core.rules", "vigil.core.errors") is None
    assert check("vigil.core.rules", "zoneinfo") is None
    assert check("vigil.core.rules", "pydantic") == "core imports only the stdlib"
    assert check("vigil.core.rules", "vigil.metrics") == "core imports only vigil.core"
    assert check("vigil.store._base", "vigil.core.validation") is None
    assert check("vigil.store._outbox", "vigil.notify.format") is None  # notify is lower
    assert check("vigil.notify.cli", "vigil.store") == "notify (layer 1) imports store (layer 2)"
    assert (
        check("vigil.metrics.hub", "vigil.notify") == "metrics (layer 1) imports notify (layer 1)"
    )
    assert check("vigil.web.app", "vigil.cli") == "web (layer 4) imports cli (layer 5)"
    assert check("vigil.cli.serve", "vigil.web.serve") is None
    assert check("vigil.demo.server", "vigil.web.app") is None
    assert check("vigil.demo.server", "vigil.cli") == "only the cli imports the cli"
    assert check("vigil.runtime.vigil", "vigil.integrations.discord") == (
        "only cli, demo and integrations import integrations"
    )
    assert check("vigil.cli.demo", "vigil.demo") is None
    assert (
        check("vigil.web.serve", "vigil") == "nothing imports the façade: name the defining module"
    )
    assert check("vigil", "vigil.web.serve") is None
    assert check("vigil.shiny", "vigil.core") == "vigil.shiny has no place in the layers"
    assert check("vigil.web.app", "sqlalchemy") is None  # third parties: the core's rule only


def test_imports_inside_functions_and_relative_ones_are_seen(tmp_path: Path) -> None:
    source = tmp_path / "vigil" / "store" / "thing.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        "from . import models\n"
        "from ..web import app\n"
        "def later():\n"
        "    import vigil.runtime.vigil\n",
        encoding="utf-8",
    )
    found = [(i.target, i.line) for i in imports_of(source, root=tmp_path)]
    assert found == [("vigil.store", 1), ("vigil.web", 2), ("vigil.runtime.vigil", 4)]
    assert [problem(i) for i in imports_of(source, root=tmp_path)] == [
        None,
        "store (layer 2) imports web (layer 4)",
        "store (layer 2) imports runtime (layer 3)",
    ]
