"""The checks every layer makes on input it did not build itself: names, times, numbers, choices.

Each check raises ``ValidationError`` naming the field and saying what was expected, or returns
the value (as the type it was checked to be), so a caller checks and assigns in one line. The
domain types (``Rule``, ``Snooze``, ``Channel``...), the store and the command line use these
and nothing of their own, so one kind of input is refused with one message everywhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from vigil.core.errors import ValidationError

METRIC_PATTERN = re.compile(r"[a-z0-9_.]{1,100}")
"""A rule's metric: what readings, incidents, events and API paths are keyed by."""

RULE_NAME_PATTERN = re.compile(r"[a-z0-9_.-]{1,100}")
"""A rule's name: the key of incidents, events, snoozes, API paths and notifications."""

NAME_PATTERN = re.compile(r"[a-z0-9_-]{1,50}")
"""A notification channel's or a maintenance window's name."""

MAX_TEXT = 100
"""The longest name of a person, a token or an instance."""

E = TypeVar("E", bound=StrEnum)


def check_metric(field: str, value: object) -> str:
    if not isinstance(value, str) or not METRIC_PATTERN.fullmatch(value):
        raise ValidationError(field, f"{value!r} must be 1-100 characters of a-z, 0-9, '_' and '.'")
    return value


def check_rule_name(field: str, value: object) -> str:
    if not isinstance(value, str) or not RULE_NAME_PATTERN.fullmatch(value):
        raise ValidationError(
            field, f"{value!r} must be 1-100 characters of a-z, 0-9, '_', '.' and '-'"
        )
    return value


def check_name(field: str, value: object) -> str:
    """A channel's or a maintenance window's name (``NAME_PATTERN``)."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise ValidationError(field, f"{value!r} must be 1-50 characters of a-z, 0-9, '_' and '-'")
    return value


def check_text(field: str, value: object, *, max_length: int = MAX_TEXT) -> str:
    """A required text (a person, a reason, an instance...): not blank, at most ``max_length``
    characters. Returned as given; a caller that keeps it trimmed strips it."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, "is required")
    if len(value) > max_length:
        raise ValidationError(field, f"must be at most {max_length} characters")
    return value


def check_aware(field: str, value: object) -> datetime:
    """A moment: a ``datetime`` that knows its offset from UTC."""
    if not isinstance(value, datetime):
        raise ValidationError(field, f"must be a date and time, got {value!r}")
    if value.utcoffset() is None:
        raise ValidationError(field, "must include a time zone offset")
    return value


def parse_datetime(field: str, value: object) -> datetime:
    """A ``datetime``, or ISO-8601 text read as one (its offset is for ``check_aware``)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ValidationError(field, f"must be an ISO-8601 date and time, got {value!r}")


def check_int(field: str, value: object, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``; ``True`` is not one."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValidationError(field, f"must be between {low} and {high}, got {value}")
    return value


def check_bool(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(field, f"must be true or false, got {value!r}")
    return value


def check_finite(field: str, value: object) -> float:
    """A finite number (an ``int`` or a ``float``, not a ``bool``), as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(field, f"must be a finite number, got {value!r}")
    return float(value)


def check_optional_finite(field: str, value: object) -> float | None:
    """``check_finite``, where ``None`` (nothing set) is allowed."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(field, f"must be a number or null, got {value!r}")
    return check_finite(field, value)


def check_choice(kind: type[E], field: str, value: object) -> E:
    """A member of the enum ``kind``, or its value as text."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    allowed = ", ".join(member.value for member in kind)
    raise ValidationError(field, f"must be one of {allowed}, got {value!r}")


def check_keys(data: Mapping[str, Any], allowed: Iterable[str], what: str) -> None:
    """Refuse a mapping with a key ``allowed`` does not hold, naming the first (in order)."""
    unknown = sorted(set(data).difference(allowed))
    if unknown:
        raise ValidationError(unknown[0], f"is not {what} field")


def frozen(values: Any) -> Any:
    """A frozenset of an iterable; anything else (None, a lone string) is left for the check
    that follows to refuse with a message of its own."""
    if values is None or isinstance(values, str | bytes) or not isinstance(values, Iterable):
        return values
    return frozenset(values)
