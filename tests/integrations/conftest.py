"""discord.py 2.7 imports ``audioop``, which Python 3.11 deprecates (3.13 removed it, and
discord.py then depends on audioop-lts). The warning is discord.py's, raised once at import:
import it here, before any test module, so warnings-as-errors does not fail collection."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord  # noqa: F401
