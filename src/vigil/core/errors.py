"""Domain errors. Adapters translate these to HTTP codes, CLI messages or log lines."""

from __future__ import annotations


class VigilError(Exception):
    """Base class of every error Vigil raises on purpose."""


class ValidationError(VigilError, ValueError):
    """Invalid input. ``field`` names what was wrong, so a caller can point at it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NameTakenError(ValidationError):
    """A new rule (or other named thing) whose name is already in use."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__("name", f"a {kind} named {name!r} already exists")
        self.kind = kind
        self.name = name


class NotFoundError(VigilError, LookupError):
    """An id or name that does not exist."""

    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"{kind} {key!s} not found")
        self.kind = kind
        self.key = key


class IllegalTransitionError(VigilError):
    """An incident action that its current status does not allow."""

    def __init__(self, incident_id: object, status: str, action: str) -> None:
        super().__init__(f"cannot {action} incident {incident_id}: it is {status}")
        self.incident_id = incident_id
        self.status = status
        self.action = action


class DuplicateIncidentError(VigilError):
    """A second open incident for one rule: the invariant the core and the store both guard."""

    def __init__(self, metric: str, series: str = "") -> None:
        where = f" on {series}" if series else ""
        super().__init__(f"rule {metric!r} already has an open incident{where}")
        self.metric = metric  # the rule's name
        self.series = series
