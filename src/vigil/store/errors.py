"""The storage error, and the one place vendor exceptions are translated into it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from vigil.core.errors import VigilError


class VigilStorageError(VigilError):
    """The database failed or refused a request: unreachable, locked too long, or corrupt.

    The runtime catches it, logs it and retries on the next cycle; nothing was committed.
    """


@contextmanager
def translated_errors(action: str) -> Iterator[None]:
    """Turn SQLAlchemy and driver errors raised inside into ``VigilStorageError``.

    Domain errors (``VigilError`` subclasses) pass through untouched.
    """
    try:
        yield
    except VigilError:
        raise
    except sa_exc.SQLAlchemyError as exc:
        detail = getattr(exc, "orig", None) or exc
        raise VigilStorageError(f"{action} failed: {type(detail).__name__}: {detail}") from exc
    except (OSError, TimeoutError) as exc:
        # asyncpg raises these directly when the server cannot be reached at connect time.
        raise VigilStorageError(f"{action} failed: cannot reach the database: {exc}") from exc
