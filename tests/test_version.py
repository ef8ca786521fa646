"""One version, written in vigil/_version.py: the installed distribution (vigil-alerts)
reports it, and so does vigil.__version__."""

from __future__ import annotations

import importlib.metadata

import vigil
from vigil._version import __version__


def test_the_distribution_and_the_package_share_one_version() -> None:
    assert importlib.metadata.version("vigil-alerts") == __version__
    assert vigil.__version__ == __version__
