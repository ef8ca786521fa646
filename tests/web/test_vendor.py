"""The Chart.js the package ships is the one the npm lockfile names, byte for byte.

The file is committed (src/vigil/web/static/vendor/), so a wheel, an sdist or a git URL
installs a dashboard with charts on a machine without npm; this is what keeps the committed
copy honest. `make vendor` refreshes it from node_modules after `npm ci`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]
VENDORED = ROOT / "src" / "vigil" / "web" / "static" / "vendor" / "chart.umd.min.js"
NODE_MODULES = ROOT / "node_modules"


def _locked() -> dict[str, Any]:
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    entry: dict[str, Any] = lock["packages"]["node_modules/chart.js"]
    return entry


def test_the_vendored_chart_js_is_the_locked_version() -> None:
    banner = VENDORED.read_bytes()[:200].decode("ascii")
    found = re.search(r"Chart\.js v(\S+)", banner)
    assert found is not None, f"{VENDORED} does not start with Chart.js's banner"
    assert found.group(1) == _locked()["version"], "run `make vendor` after changing package.json"


def test_the_vendored_chart_js_is_byte_identical_to_the_npm_package() -> None:
    installed = NODE_MODULES / ".package-lock.json"
    if not installed.exists():
        message = f"{NODE_MODULES} is not installed: run `npm ci` (make install does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: this must not be skipped)", pytrace=False)
        pytest.skip(message)
    # npm ci checked the tarball against the lockfile's integrity and recorded it here: the
    # node_modules copy is the registry's package of the locked version, not a stale one.
    entry = json.loads(installed.read_text(encoding="utf-8"))["packages"]["node_modules/chart.js"]
    assert (entry["version"], entry["integrity"]) == (
        _locked()["version"],
        _locked()["integrity"],
    ), "node_modules is not the lockfile's: run `npm ci`"
    package = NODE_MODULES / "chart.js" / "dist" / "chart.umd.min.js"
    assert VENDORED.read_bytes() == package.read_bytes(), "run `make vendor`"
