"""The one place Vigil's version is written: setuptools reads it (pyproject.toml's dynamic
version) and ``vigil.__version__`` re-exports it."""

__version__ = "0.2.0.dev0"
