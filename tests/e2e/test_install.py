"""The install path, as a bot author takes it: build the sdist and the wheel (from the sdist,
as pip does with a git URL), install the wheel into a fresh virtual environment outside the
repository, run that environment's `vigil serve` on a new SQLite file, and look at the
dashboard in Chromium: the charts are drawn with the Chart.js inside the package."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from vigil._version import __version__

from .support import new_tab

ROOT = Path(__file__).parents[2]
CHART_JS = "vigil/web/static/vendor/chart.umd.min.js"
PASSWORD = "a long enough password"
STEP_TIMEOUT = 600  # seconds for one build or install step: a bound, never a wait
MISSING = "The chart library is missing"


@dataclass
class Installed:
    venv: Path
    sdist: Path
    wheel: Path
    work: Path  # a directory outside the repository, the processes' working directory
    env: dict[str, str]

    def run(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            args,
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.work,
            env=self.env,
            timeout=STEP_TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout


def clean_environment() -> dict[str, str]:
    """This process's environment without what would point Python or Vigil at the repository
    or at this test run's settings."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"} and not key.startswith("VIGIL_")
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def installed(tmp_path: Path) -> Installed:
    work = tmp_path / "elsewhere"
    work.mkdir()
    dist = tmp_path / "dist"
    env = clean_environment()
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)],
        capture_output=True,
        cwd=work,
        env=env,
        timeout=STEP_TIMEOUT,
        check=True,
    )
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)],
        cwd=work,
        env=env,
        timeout=STEP_TIMEOUT,
        check=True,
    )
    found = Installed(venv, sdist, wheel, work, env | {"PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    # The dependencies come from the package index (or pip's cache); Vigil only from the wheel.
    # This environment's pip installs into the new one (``--python``), without compiling: the
    # same files at a fifth of the CPU of the new environment's own pip (bootstrapped, then
    # compiling every module of every dependency).
    found.run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(venv / "bin" / "python"),
        "install",
        "--quiet",
        "--no-compile",
        str(wheel),
    )
    return found


@dataclass
class Server:
    url: str
    log: Path


@pytest.fixture
def served(installed: Installed) -> Iterator[Server]:
    database = installed.work / "vigil.db"
    port = free_port()
    env = installed.env | {
        "VIGIL_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "VIGIL_HOST": "127.0.0.1",
        "VIGIL_PORT": str(port),
    }
    vigil = str(installed.venv / "bin" / "vigil")
    added = subprocess.run(
        [vigil, "users", "add", "admin", "--role", "admin", "--password-stdin"],
        input=PASSWORD,
        capture_output=True,
        text=True,
        cwd=installed.work,
        env=env,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    log = installed.work / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [vigil, "serve"], cwd=installed.work, env=env, stdout=output, stderr=output
        )
    url = f"http://127.0.0.1:{port}"
    try:
        give_up = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"vigil serve exited:\n{log.read_text()}"
            try:
                if httpx.get(f"{url}/login", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < give_up, f"vigil serve did not answer:\n{log.read_text()}"
            time.sleep(0.1)
        yield Server(url, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@pytest.mark.slow
async def test_a_wheel_installed_elsewhere_serves_a_dashboard_with_charts(
    installed: Installed, served: Server, browser: Browser
) -> None:
    python = str(installed.venv / "bin" / "python")
    where = installed.run(python, "-c", "import vigil; print(vigil.__file__)").strip()
    assert Path(where).is_relative_to(installed.venv), f"vigil imported from {where}"
    versions = installed.run(
        python, "-c", "import importlib.metadata as m; print(m.version('vigil-alerts'))"
    )
    assert versions.strip() == __version__

    tab = await new_tab(browser)
    page = tab.page
    await page.goto(f"{served.url}/alerts")
    await page.get_by_label("User name").fill("admin")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{served.url}/alerts")
    drawn = "() => !!window.Chart?.getChart(document.querySelector('#frequency-chart'))"
    # Checked while the page after signing in may still be loading: no body yet is "not yet".
    missing = f"!!document.body?.innerText.includes({MISSING!r})"
    await page.wait_for_function(f"{drawn} || {missing}")
    assert MISSING not in await page.inner_text("body")
    assert await page.evaluate(drawn)
    tab.assert_clean()
    await tab.context.close()

    vendored = (ROOT / "src" / CHART_JS).read_bytes()
    async with httpx.AsyncClient(base_url=served.url) as client:  # the file the page loads
        script = await client.get(f"/static/{CHART_JS.removeprefix('vigil/web/static/')}")
    assert script.status_code == 200, "the installed package does not serve Chart.js"
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert script.content == vendored

    # What pip installs from a git URL or an sdist is built from the sdist: both carry the file.
    with tarfile.open(installed.sdist) as sdist:
        (member,) = [m for m in sdist.getmembers() if m.name.endswith(f"src/{CHART_JS}")]
        packed = sdist.extractfile(member)
        assert packed is not None and packed.read() == vendored
    with zipfile.ZipFile(installed.wheel) as wheel:
        assert wheel.read(CHART_JS) == vendored
