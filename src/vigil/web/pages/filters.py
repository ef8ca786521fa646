"""The history section's query: the filters, page and frequency period a page's URL asks
for, parsed leniently (a bad field is named and left out; the rest still apply) and written
back into links."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from vigil.core import Severity, Status
from vigil.core.validation import METRIC_PATTERN, RULE_NAME_PATTERN
from vigil.web.routes.alerts import MAX_PAGE

FREQUENCY_DAYS = (7, 30, 90)
DEFAULT_DAYS = 30


@dataclass(frozen=True)
class HistoryFilters:
    """The history section's query, parsed from the page's query string. ``errors`` names
    each field that could not be used (the rest still apply)."""

    severity: Severity | None = None
    status: Status | None = None
    metric: str | None = None
    rule: str | None = None
    start_day: date | None = None
    end_day: date | None = None
    page: int = 1
    days: int = DEFAULT_DAYS
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def start(self) -> datetime | None:
        if self.start_day is None:
            return None
        return datetime(self.start_day.year, self.start_day.month, self.start_day.day, tzinfo=UTC)

    @property
    def end(self) -> datetime | None:
        """Exclusive: the day after the last day asked for."""
        if self.end_day is None:
            return None
        last = datetime(self.end_day.year, self.end_day.month, self.end_day.day, tzinfo=UTC)
        return last + timedelta(days=1)

    def query(self, **overrides: Any) -> dict[str, str]:
        """The query string that shows these filters (for links: pages, frequency days)."""
        values: dict[str, Any] = {
            "severity": self.severity.value if self.severity else "",
            "status": self.status.value if self.status else "",
            "metric": self.metric or "",
            "rule": self.rule or "",
            "from": self.start_day.isoformat() if self.start_day else "",
            "to": self.end_day.isoformat() if self.end_day else "",
            "page": self.page,
            "days": self.days,
        }
        values.update(overrides)
        defaults = {"page": 1, "days": DEFAULT_DAYS}
        return {
            key: str(value)
            for key, value in values.items()
            if value not in ("", None) and defaults.get(key) != value
        }

    @property
    def active(self) -> bool:
        return any(
            (self.severity, self.status, self.metric, self.rule, self.start_day, self.end_day)
        )

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> HistoryFilters:
        errors: dict[str, str] = {}

        def choice(name: str, kind: type[Severity] | type[Status]) -> Any:
            raw = params.get(name, "").strip()
            if not raw:
                return None
            try:
                return kind(raw)
            except ValueError:
                errors[name] = f"{raw!r} is not a {name}"
                return None

        def day(name: str) -> date | None:
            raw = params.get(name, "").strip()
            if not raw:
                return None
            try:
                return date.fromisoformat(raw)
            except ValueError:
                errors[name] = "must be a date (YYYY-MM-DD)"
                return None

        severity, status = choice("severity", Severity), choice("status", Status)
        metric = params.get("metric", "").strip() or None
        if metric is not None and not METRIC_PATTERN.fullmatch(metric):
            errors["metric"] = f"{metric[:100]!r} is not a metric name"
            metric = None
        rule = params.get("rule", "").strip() or None
        if rule is not None and not RULE_NAME_PATTERN.fullmatch(rule):
            errors["rule"] = f"{rule[:100]!r} is not a rule name"
            rule = None
        start_day, end_day = day("from"), day("to")
        if start_day and end_day and end_day < start_day:
            errors["to"] = "must be on or after the 'from' day"
            end_day = None
        page = _int(params.get("page"), default=1, low=1, high=MAX_PAGE)
        days = _int(params.get("days"), default=DEFAULT_DAYS, low=1, high=365)
        return cls(
            severity=severity,
            status=status,
            metric=metric,
            rule=rule,
            start_day=start_day,
            end_day=end_day,
            page=page,
            days=days if days in FREQUENCY_DAYS else DEFAULT_DAYS,
            errors=errors,
        )


def _int(raw: str | None, *, default: int, low: int, high: int) -> int:
    try:
        value = int(raw) if raw else default
    except ValueError:
        return default
    return min(max(value, low), high)
