"""The web API: ``create_app(vigil)`` builds the FastAPI app; ``vigil serve`` runs it.

FastAPI is imported when ``create_app`` is first used, not with this package, so the CLI's
account commands start quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vigil.web.app import close_streams, create_app

__all__ = ["close_streams", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from vigil.web import app

        return getattr(app, name)
    raise AttributeError(f"module 'vigil.web' has no attribute {name!r}")
