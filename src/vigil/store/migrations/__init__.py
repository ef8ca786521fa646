"""Alembic migrations of Vigil's schema. Applied by ``vigil db upgrade`` or ``Store.open``."""
