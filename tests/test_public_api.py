"""The public names are pinned: adding or removing one is a decision, not an accident. And
``import vigil`` stays light: the names load their modules when first used."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import vigil
import vigil.notify

PUBLIC = {
    "DEFAULT_RULES",
    "Aggregate",
    "CleanupReport",
    "DeliveryPolicy",
    "Direction",
    "DuplicateIncidentError",
    "Event",
    "EventKind",
    "HealthRegistry",
    "IllegalTransitionError",
    "Incident",
    "Level",
    "MaintenanceWindow",
    "MetricSource",
    "Metrics",
    "MonitorRunningError",
    "NotFoundError",
    "NotStartedError",
    "Recorder",
    "Resolution",
    "Rule",
    "Sample",
    "Settings",
    "Severity",
    "Snooze",
    "Status",
    "StoredChannel",
    "ValidationError",
    "Vigil",
    "VigilError",
    "VigilStorageError",
    "WindowSource",
    "__version__",
    "dashboard",
}

# What a bot author's process need not load to record metrics: the database, migrations,
# notification, web and Discord libraries (and, for vigil.metrics, what its docstring names).
HEAVY = ("sqlalchemy", "alembic", "apprise", "fastapi", "discord")
METRICS_HEAVY = (*HEAVY, "aiohttp", "psutil")


def test_exported_names_are_pinned() -> None:
    assert set(vigil.__all__) == PUBLIC
    assert len(vigil.__all__) == len(PUBLIC)  # no name twice
    for name in vigil.__all__:
        assert getattr(vigil, name) is not None
    assert PUBLIC <= set(dir(vigil))


@pytest.mark.parametrize(
    ("name", "home"),
    [
        ("Vigil", "vigil.runtime"),
        ("Snooze", "vigil.core.silences"),
        ("Sample", "vigil.core.samples"),
        ("DeliveryPolicy", "vigil.runtime.notifier"),
        ("StoredChannel", "vigil.store"),
        ("CleanupReport", "vigil.store"),
        ("VigilStorageError", "vigil.store"),
        ("MonitorRunningError", "vigil.runtime"),
        ("NotStartedError", "vigil.runtime"),
        ("dashboard", "vigil.web.serve"),
        ("Settings", "vigil.settings"),
    ],
)
def test_a_public_name_is_the_object_its_module_defines(name: str, home: str) -> None:
    assert getattr(vigil, name) is getattr(importlib.import_module(home), name)


def test_type_checkers_see_each_name_where_it_is_loaded_from() -> None:
    """The façade says each name twice, for type checkers (imports under TYPE_CHECKING) and
    for the lazy lookup (its module): both say the same."""
    tree = ast.parse(Path(vigil.__file__).read_text(encoding="utf-8"))
    [guarded] = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    seen = {
        alias.name: node.module or ""
        for node in ast.walk(guarded)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert set(seen) == PUBLIC - {"__version__"}
    for name, module in seen.items():
        assert getattr(importlib.import_module(module), name) is getattr(vigil, name), name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="'vigil' has no attribute 'Vigilant'"):
        vigil.Vigilant  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError, match=r"'vigil\.notify' has no attribute 'sent'"):
        vigil.notify.sent  # type: ignore[attr-defined]  # noqa: B018


def _fresh(code: str) -> list[object]:
    """What ``code`` prints (one JSON value a line), in an interpreter of its own."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_importing_vigil_loads_no_database_web_or_notification_library() -> None:
    loaded, unresolved, still_light = _fresh(
        "import json, sys\n"
        "import vigil\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
        "print(json.dumps([n for n in vigil.__all__ if getattr(vigil, n, None) is None]))\n"
        "print(json.dumps('sqlalchemy' not in sys.modules))\n"
    )
    assert loaded == []
    assert unresolved == []  # every name resolves in a fresh interpreter, too
    assert still_light is False  # ... by loading its module (Vigil needs the store)


def test_the_metrics_and_the_core_load_no_heavy_library_either() -> None:
    [loaded] = _fresh(
        "import json, sys\n"
        "import vigil.core, vigil.metrics\n"
        "vigil.Recorder().record('x', 1.0)\n"
        f"heavy = {METRICS_HEAVY!r}\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    assert loaded == []


def test_the_command_line_loads_a_library_only_for_the_commands_that_use_it() -> None:
    """`vigil --help` and every command's own help load no database, web or notification
    library; a command that opens the store loads it then (and still no aiohttp, which only
    sending needs)."""
    helped, loaded, opened = _fresh(
        "import json, sys\n"
        "import typer\n"
        "from typer.testing import CliRunner\n"
        "from vigil.cli import app\n"
        f"heavy = {METRICS_HEAVY!r}\n"
        "def paths(command, words):\n"
        "    yield words\n"
        "    for name, sub in getattr(command, 'commands', {}).items():  # a group's\n"
        "        yield from paths(sub, [*words, name])\n"
        "helped = 0\n"
        "for words in paths(typer.main.get_command(app), []):\n"
        "    result = CliRunner().invoke(app, [*words, '--help'])\n"
        "    assert result.exit_code == 0, (words, result.output)\n"
        "    helped += 1\n"
        "print(json.dumps(helped))\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
        "import vigil.store\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    assert isinstance(helped, int) and helped > 30  # the root, every group and every command
    assert loaded == []
    assert opened == ["sqlalchemy"]  # Alembic only to migrate (tests/store/test_migrations.py)


def test_a_running_vigil_and_its_app_load_aiohttp_and_apprise_only_to_send(
    tmp_path: Path,
) -> None:
    """They take about a quarter of a second to import, which a process without channels
    (every crash test's child, a bot that only watches) need not pay: the notifier loads them
    when it starts with a channel, or with its first message (tests/runtime/test_notifier.py)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}"
    [loaded] = _fresh(
        "import asyncio, json, sys\n"
        "from vigil import Settings, Vigil\n"
        "from vigil.web import create_app\n"
        "async def main():\n"
        f"    settings = Settings(database_url={url!r}, secret_key='k' * 32)\n"
        "    async with Vigil(settings, process_metrics=False) as vigil:\n"
        "        create_app(vigil)\n"
        "        await vigil.notifier.run_once()\n"
        "asyncio.run(main())\n"
        "print(json.dumps([m for m in ('aiohttp', 'apprise') if m in sys.modules]))\n"
    )
    assert loaded == []


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
