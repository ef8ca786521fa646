"""Alembic migrations of Vigil's schema. Applied with ``vigil db upgrade`` or ``Store.upgrade``."""
