"""Escalation policies: who hears of an unacknowledged incident, and when.

A policy is named and has ordered steps. Step 1 tells its channels when the incident opens;
each step waits ``wait_minutes`` and, if the incident is still unacknowledged, the next step's
channels are told. After the last step the policy either stops or tells the last step's
channels again every ``repeat_minutes``. Acknowledging or resolving the incident stops it.

A policy applies to the incidents of the rules it names, and, for incidents of rules that no
policy names, to the severities it is the default for. Which policy applies is decided with the
incident's current severity (``policy_for``).

Everything here is pure: the incident's trigger time, its state and ``now`` are passed in, and
``due_notices`` answers which step notifications are due, each with a stable key so that writing
them again (another round, another leader, a restart) adds nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from vigil.core.errors import ValidationError
from vigil.core.incidents import Incident, Severity, Status
from vigil.core.validation import (
    check_aware,
    check_choice,
    check_keys,
    check_name,
    check_rule_name,
)

MAX_STEPS = 10
MAX_CHANNELS = 20
MAX_MINUTES = 7 * 24 * 60  # a week
MAX_DESCRIPTION = 500
_KEY_NAMESPACE = uuid.UUID("3b8c1f52-5e0f-4f3f-9a53-5c2f1c7e0d11")


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """Tell ``channels``; if still unacknowledged ``wait_minutes`` later, go to the next step
    (the last step's ``wait_minutes`` is how long before it repeats, when the policy repeats)."""

    channels: tuple[str, ...]
    wait_minutes: int = 15

    def to_dict(self) -> dict[str, Any]:
        return {"channels": list(self.channels), "wait_minutes": self.wait_minutes}


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalationPolicy:
    name: str
    steps: tuple[Step, ...]
    repeat_minutes: int | None = None  # after the last step: again every M minutes, or stop
    rules: frozenset[str] = frozenset()  # the rules whose incidents follow it
    severities: frozenset[Severity] = frozenset()  # the default for these severities
    description: str = ""
    channels: frozenset[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_name("name", self.name)
        if not isinstance(self.description, str) or len(self.description) > MAX_DESCRIPTION:
            raise ValidationError(
                "description", f"must be text of at most {MAX_DESCRIPTION} characters"
            )
        object.__setattr__(self, "steps", _steps(self.steps))
        if self.repeat_minutes is not None:
            _minutes("repeat_minutes", self.repeat_minutes)
        rules = _collection("rules", self.rules)
        for n, rule in enumerate(rules):
            check_rule_name(f"rules[{n}]", rule)
        object.__setattr__(self, "rules", frozenset(rules))
        severities = [
            check_choice(Severity, f"severities[{n}]", value)
            for n, value in enumerate(_collection("severities", self.severities))
        ]
        object.__setattr__(self, "severities", frozenset(severities))
        object.__setattr__(
            self, "channels", frozenset(name for step in self.steps for name in step.channels)
        )

    def starts(self, triggered_at: datetime) -> list[datetime]:
        """When each step is reached, for an incident that stays unacknowledged."""
        at, found = triggered_at, []
        for step in self.steps:
            found.append(at)
            at += timedelta(minutes=step.wait_minutes)
        return found

    def reached(self, *, triggered_at: datetime, at: datetime) -> frozenset[str]:
        """The channels told of the incident by ``at`` had it stayed unacknowledged until then."""
        return frozenset(
            name
            for step, start in zip(self.steps, self.starts(triggered_at), strict=True)
            if start <= at
            for name in step.channels
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "steps": [step.to_dict() for step in self.steps],
            "repeat_minutes": self.repeat_minutes,
            "rules": sorted(self.rules),
            "severities": [s.value for s in Severity if s in self.severities],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EscalationPolicy:
        if not isinstance(data, Mapping):
            raise ValidationError("policy", "must be an object")
        check_keys(data, _FIELDS, "an escalation policy")
        for required in ("name", "steps"):
            if required not in data:
                raise ValidationError(required, "is required")
        values = dict(data)
        values["steps"] = _steps(values["steps"])
        return cls(**values)


_FIELDS = frozenset({"name", "description", "steps", "repeat_minutes", "rules", "severities"})


@dataclass(frozen=True, slots=True)
class Notice:
    """One step notification that is due: tell ``channel`` of the incident (step ``step``,
    counted from 0; ``repeat`` > 0 for the last step's repeats). ``ordinal`` numbers the
    incident's step notifications in time order (0 is the opening, told at once)."""

    incident_id: uuid.UUID
    policy: str
    step: int
    repeat: int
    ordinal: int
    channel: str
    due_at: datetime

    @property
    def key(self) -> str:
        """Stable for (incident, policy, step, repeat, channel): its outbox idempotency key."""
        name = f"escalation/{self.incident_id}/{self.policy}/{self.step}/{self.repeat}"
        return str(uuid.uuid5(_KEY_NAMESPACE, f"{name}/{self.channel}"))


def due_notices(
    policy: EscalationPolicy,
    *,
    incident_id: uuid.UUID,
    triggered_at: datetime,
    status: Status,
    now: datetime,
) -> list[Notice]:
    """The step notifications due by ``now`` for an incident under ``policy``: one for each
    channel of each step reached, and for a repeating policy the latest repeat of the last step
    only (missed repeats, say while no instance was running, are not sent in a burst). Nothing
    once the incident is acknowledged or resolved.

    Writing the answer of every round keyed by ``Notice.key`` sends each notice exactly once.
    """
    check_aware("triggered_at", triggered_at)
    check_aware("now", now)
    if status is not Status.ACTIVE:
        return []
    starts = policy.starts(triggered_at)
    found: list[Notice] = []
    ordinal = 0
    for index, (step, start) in enumerate(zip(policy.steps, starts, strict=True)):
        if start > now:
            break
        repeat = 0
        if index == len(policy.steps) - 1 and policy.repeat_minutes is not None:
            first_repeat = start + timedelta(minutes=step.wait_minutes)
            if now >= first_repeat:
                every = timedelta(minutes=policy.repeat_minutes)
                repeat = 1 + (now - first_repeat) // every
                start = first_repeat + (repeat - 1) * every
        found += [
            Notice(
                incident_id=incident_id,
                policy=policy.name,
                step=index,
                repeat=repeat,
                ordinal=ordinal + repeat,
                channel=channel,
                due_at=start,
            )
            for channel in step.channels
        ]
        ordinal += 1
    return found


def next_due(
    policy: EscalationPolicy, *, triggered_at: datetime, status: Status, now: datetime
) -> datetime | None:
    """When the next step notification after ``now`` falls due (None: never, as things are)."""
    if status is not Status.ACTIVE:
        return None
    starts = policy.starts(triggered_at)
    for start in starts:
        if start > now:
            return start
    if policy.repeat_minutes is None:
        return None
    first_repeat = starts[-1] + timedelta(minutes=policy.steps[-1].wait_minutes)
    if now < first_repeat:
        return first_repeat
    every = timedelta(minutes=policy.repeat_minutes)
    return first_repeat + (1 + (now - first_repeat) // every) * every


def policy_for(incident: Incident, policies: Iterable[EscalationPolicy]) -> EscalationPolicy | None:
    """The policy an incident follows: the one naming its rule, else the default for its
    current severity, else none (it is notified as channels say, reminders and all)."""
    by_severity = None
    for policy in policies:
        if incident.rule in policy.rules:
            return policy
        if by_severity is None and incident.severity in policy.severities:
            by_severity = policy
    return by_severity


def check_unique(policies: Iterable[EscalationPolicy]) -> None:
    """A rule, or a severity, follows at most one policy: ``ValidationError`` naming the one
    claimed twice."""
    rules: dict[str, str] = {}
    severities: dict[Severity, str] = {}
    for policy in policies:
        for rule in sorted(policy.rules):
            if rule in rules and rules[rule] != policy.name:
                raise ValidationError(
                    "rules", f"rule {rule!r} already follows policy {rules[rule]!r}"
                )
            rules[rule] = policy.name
        for severity in policy.severities:
            if severity in severities and severities[severity] != policy.name:
                raise ValidationError(
                    "severities",
                    f"{severity.value} already defaults to policy {severities[severity]!r}",
                )
            severities[severity] = policy.name


def _steps(value: object) -> tuple[Step, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValidationError("steps", "must be a list of steps")
    items = list(value)
    if not 1 <= len(items) <= MAX_STEPS:
        raise ValidationError("steps", f"must have 1 to {MAX_STEPS} steps")
    return tuple(_step(n, item) for n, item in enumerate(items))


def _step(n: int, item: object) -> Step:
    where = f"steps[{n}]"
    if isinstance(item, Step):
        data: Mapping[str, Any] = item.to_dict()
    elif isinstance(item, Mapping):
        data = item
    else:
        raise ValidationError(where, "must be an object with channels and wait_minutes")
    check_keys(data, ("channels", "wait_minutes"), f"a step ({where})")
    channels = _collection(f"{where}.channels", data.get("channels"))
    if not 1 <= len(channels) <= MAX_CHANNELS:
        raise ValidationError(f"{where}.channels", f"must name 1 to {MAX_CHANNELS} channels")
    for m, channel in enumerate(channels):
        check_name(f"{where}.channels[{m}]", channel)
    if len(set(channels)) != len(channels):
        raise ValidationError(f"{where}.channels", "names a channel twice")
    wait = data.get("wait_minutes", 15)
    _minutes(f"{where}.wait_minutes", wait)
    return Step(channels=tuple(channels), wait_minutes=wait)


def _minutes(field_name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field_name, f"must be whole minutes, got {value!r}")
    if not 1 <= value <= MAX_MINUTES:
        raise ValidationError(field_name, f"must be between 1 and {MAX_MINUTES} (a week)")
    return value


def _collection(field_name: str, value: object) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValidationError(field_name, "must be a list")
    return list(value)
