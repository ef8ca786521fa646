"""A package's public names, each imported from its module on first use (PEP 562), so that
importing the package itself stays cheap (``vigil``, ``vigil.notify``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(
    package: str, homes: Mapping[str, tuple[str, ...]], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package``: a name of ``homes`` (module -> names) is
    imported from its module the first time it is used, and kept in ``namespace``."""
    home_of = {name: module for module, names in homes.items() for name in names}

    def __getattr__(name: str) -> Any:
        home = home_of.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value  # found once: later uses are a plain attribute
        return value

    return __getattr__
