"""The demo: a simulated Discord bot (``bot``) and the whole of Vigil fed by it on one
machine (``server``), which ``vigil demo`` runs."""
