"""Integrations with frameworks Vigil watches. Each lives in its own module and imports its
framework there, so ``import vigil`` never needs them: ``vigil.integrations.discord``."""
