"""The Chart.js and Swagger UI the package ships are the ones the npm lockfile names, byte for
byte.

The files are committed (src/vigil/web/static/vendor/), so a wheel, an sdist or a git URL
installs a dashboard with charts and an API reference on a machine without npm; this is what
keeps the committed copies honest. `make vendor` refreshes them from node_modules after
`npm ci`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]
VENDOR = ROOT / "src" / "vigil" / "web" / "static" / "vendor"
VENDORED = VENDOR / "chart.umd.min.js"
SWAGGER_UI = VENDOR / "swagger-ui"
SWAGGER_UI_FILES = (
    "swagger-ui-bundle.js",
    "swagger-ui-bundle.js.LICENSE.txt",
    "swagger-ui.css",
    "LICENSE",
    "NOTICE",
)
NODE_MODULES = ROOT / "node_modules"


def _locked(package: str = "chart.js") -> dict[str, Any]:
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    entry: dict[str, Any] = lock["packages"][f"node_modules/{package}"]
    return entry


def test_the_vendored_chart_js_is_the_locked_version() -> None:
    banner = VENDORED.read_bytes()[:200].decode("ascii")
    found = re.search(r"Chart\.js v(\S+)", banner)
    assert found is not None, f"{VENDORED} does not start with Chart.js's banner"
    assert found.group(1) == _locked()["version"], "run `make vendor` after changing package.json"


def _installed(package: str) -> Path:
    """``node_modules/<package>``, checked to be the lockfile's version."""
    installed = NODE_MODULES / ".package-lock.json"
    if not installed.exists():
        message = f"{NODE_MODULES} is not installed: run `npm ci` (make install does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: this must not be skipped)", pytrace=False)
        pytest.skip(message)
    # npm ci checked the tarball against the lockfile's integrity and recorded it here: the
    # node_modules copy is the registry's package of the locked version, not a stale one.
    packages = json.loads(installed.read_text(encoding="utf-8"))["packages"]
    entry = packages[f"node_modules/{package}"]
    assert (entry["version"], entry["integrity"]) == (
        _locked(package)["version"],
        _locked(package)["integrity"],
    ), "node_modules is not the lockfile's: run `npm ci`"
    return NODE_MODULES / package


def test_the_vendored_chart_js_is_byte_identical_to_the_npm_package() -> None:
    package = _installed("chart.js") / "dist" / "chart.umd.min.js"
    assert VENDORED.read_bytes() == package.read_bytes(), "run `make vendor`"


def test_the_vendored_swagger_ui_is_byte_identical_to_the_npm_package() -> None:
    package = _installed("swagger-ui-dist")
    for name in SWAGGER_UI_FILES:
        copy = SWAGGER_UI / name
        assert copy.read_bytes() == (package / name).read_bytes(), f"{name}: run `make vendor`"
    assert sorted(path.name for path in SWAGGER_UI.iterdir()) == sorted(SWAGGER_UI_FILES)
