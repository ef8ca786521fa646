"""Rules as code: the YAML rules file that ``vigil rules export`` writes and ``vigil rules
apply`` (and ``VIGIL_RULES_FILE`` at start-up) reads.

The shape is the one a Prometheus user would guess::

    rules:
      - name: gateway_latency
        metric: gateway_latency
        warning: 100
        critical: 200
      - name: slow_and_failing
        kind: composite
        condition: command_p95_latency >= 500 and error_rate >= 5

Each entry holds the JSON field names of a rule (DESIGN section 1); ``absent_for``,
``stale_after``, ``horizon``, ``lookback`` and ``min_history`` also take durations such as
``90s``, ``5m`` or ``1h30m``. A file is checked
whole before anything is used: the first problem raises ``RulesFileError`` naming the file,
the line and the field, so a bad file changes nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from vigil.core.errors import ValidationError, VigilError
from vigil.core.rules import Rule

MAX_FILE_BYTES = 10_000_000
"""Far above any real rules file (1,000 rules are ~200 kB); a bigger file is a mistake."""

DURATION_FIELDS = frozenset({"absent_for", "stale_after", "horizon", "lookback", "min_history"})
NOT_IN_FILE = frozenset({"updated_at", "updated_by"})  # Vigil sets these on every change
FIRST_FIELDS = ("name", "kind", "metric", "condition")  # the order a reader looks for

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)(ms|s|m|h|d))+")
_SECONDS = re.compile(r"\d+(?:\.\d+)?")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class RulesFileError(VigilError):
    """A rules file that cannot be used, and where: ``path``, 1-based ``line`` (0 when the
    problem is the file as a whole) and ``field`` (``rules[2].warning``; ``None`` for a
    problem of the file's syntax)."""

    def __init__(self, path: str, line: int, field: str | None, reason: str) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {field}: {reason}" if field else f"{where}: {reason}")
        self.path = path
        self.line = line
        self.field = field
        self.reason = reason


def load(path: str | Path) -> list[Rule]:
    """The rules of the file at ``path``, in file order; ``RulesFileError`` if any is bad."""
    name = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise RulesFileError(name, 0, None, exc.strerror or str(exc)) from None
    if len(raw) > MAX_FILE_BYTES:
        raise RulesFileError(name, 0, None, f"is larger than {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RulesFileError(name, line, None, "is not UTF-8 text") from None
    return loads(text, source=name)


def loads(text: str, *, source: str = "<rules>") -> list[Rule]:
    """The rules of a rules file's ``text``; ``source`` is the name errors give it."""
    loader = _Loader(text, source)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        reason = exc.problem or exc.context or "is not valid YAML"
        raise RulesFileError(source, line, None, f"not valid YAML: {reason}") from None
    except yaml.YAMLError as exc:
        raise RulesFileError(source, 0, None, f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    items = _rule_nodes(root, source)
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for index, node in enumerate(items):
        rule = _rule(loader, node, index, source)
        line = node.start_mark.line + 1
        if rule.name in seen:
            raise RulesFileError(
                source,
                line,
                f"rules[{index}].name",
                f"{rule.name!r} is already the name of the rule on line {seen[rule.name]}",
            )
        seen[rule.name] = line
        rules.append(rule)
    return rules


def dump(rules: Iterable[Rule]) -> str:
    """A rules file holding ``rules``: ``loads(dump(rules))`` gives them back (all but
    ``updated_at`` and ``updated_by``, which Vigil sets). Fields at their default are left
    out, so the file says only what was chosen."""
    entries = [_entry(rule) for rule in rules]
    body: str = yaml.safe_dump(
        {"rules": entries}, sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    header = "# Vigil rules: `vigil rules apply FILE` makes the rules match this file.\n"
    return header + body


# -- reading ----------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML has no type hints
    """The safe loader, refusing anchors and aliases: a rules file has no use for them, and
    they are how a small file expands into a huge one."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self.source = source

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise RulesFileError(
                self.source,
                event.start_mark.line + 1,
                None,
                "anchors and aliases (&name, *name) are not supported in a rules file",
            )
        event = self.peek_event()
        if getattr(event, "anchor", None) is not None:
            raise RulesFileError(
                self.source,
                event.start_mark.line + 1,
                None,
                "anchors and aliases (&name, *name) are not supported in a rules file",
            )
        return super().compose_node(parent, index)


def _rule_nodes(root: yaml.Node | None, source: str) -> list[yaml.MappingNode]:
    shape = "expected a mapping with a 'rules' list, e.g. 'rules:\\n  - name: ...'"
    if root is None:
        raise RulesFileError(source, 0, None, f"the file is empty; {shape}")
    if not isinstance(root, yaml.MappingNode):
        raise RulesFileError(source, root.start_mark.line + 1, None, shape)
    found: yaml.Node | None = None
    for key, value in root.value:
        name = key.value if isinstance(key, yaml.ScalarNode) else None
        if name != "rules":
            raise RulesFileError(
                source, key.start_mark.line + 1, str(name), "unknown top-level key; " + shape
            )
        if found is not None:
            raise RulesFileError(source, key.start_mark.line + 1, "rules", "is given twice")
        found = value
    if found is None:
        raise RulesFileError(source, root.start_mark.line + 1, None, shape)
    if isinstance(found, yaml.ScalarNode) and found.tag == "tag:yaml.org,2002:null":
        return []  # "rules:" with nothing under it: no rules
    if not isinstance(found, yaml.SequenceNode):
        raise RulesFileError(
            source, found.start_mark.line + 1, "rules", "must be a list of rules ('- name: ...')"
        )
    items: list[yaml.MappingNode] = []
    for index, item in enumerate(found.value):
        if not isinstance(item, yaml.MappingNode):
            raise RulesFileError(
                source,
                item.start_mark.line + 1,
                f"rules[{index}]",
                "must be a mapping of rule fields (name: ..., metric: ...)",
            )
        items.append(item)
    return items


def _rule(loader: _Loader, node: yaml.MappingNode, index: int, source: str) -> Rule:
    where = f"rules[{index}]"
    data: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode):
            raise RulesFileError(source, line, where, "a field name must be plain text")
        key = str(key_node.value)
        if key in data:
            raise RulesFileError(
                source, line, f"{where}.{key}", f"is given twice (first on line {lines[key]})"
            )
        if key in NOT_IN_FILE:
            raise RulesFileError(
                source, line, f"{where}.{key}", "is set by Vigil on every change, not by a file"
            )
        value = loader.construct_object(value_node, deep=True)
        if key in DURATION_FIELDS:
            try:
                value = parse_duration(value)
            except ValueError as exc:
                raise RulesFileError(source, line, f"{where}.{key}", str(exc)) from None
        data[key] = value
        lines[key] = value_node.start_mark.line + 1
    try:
        return Rule.from_dict(data)
    except ValidationError as exc:
        line = lines.get(exc.field, node.start_mark.line + 1)
        name = data.get("name") or data.get("metric")  # the name defaults to the metric
        label = f"{where} ({name})" if isinstance(name, str) else where
        raise RulesFileError(source, line, f"{label}.{exc.field}", exc.message) from None


def parse_duration(value: object) -> object:
    """Seconds as a number, or a duration text (``90s``, ``5m``, ``1h30m``) as seconds; any
    other value is left for the rule's own check to refuse."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if _SECONDS.fullmatch(text):
        seconds = float(text)
        return int(seconds) if seconds.is_integer() else seconds
    if not _DURATION.fullmatch(text):
        raise ValueError(
            f"{value!r} is not a duration: give seconds (120) or a duration such as 90s, 5m, 1h30m"
        )
    seconds = sum(
        float(amount) * _UNIT_SECONDS[unit] for amount, unit in _DURATION_PART.findall(text)
    )
    return int(seconds) if float(seconds).is_integer() else seconds


# -- writing ----------------------------------------------------------------------------------


def _entry(rule: Rule) -> dict[str, Any]:
    data = {key: value for key, value in rule.to_dict().items() if key not in NOT_IN_FILE}
    order = [key for key in FIRST_FIELDS if key in data]
    order += [key for key in data if key not in order]
    entry: dict[str, Any] = {}
    for key in order:
        if key in FIRST_FIELDS[:1] or not _is_default(rule, data, key):
            entry[key] = _plain(data[key])
    return entry


def _is_default(rule: Rule, data: dict[str, Any], key: str) -> bool:
    """Whether leaving ``key`` out of the file would give the rule the same value (a
    declared default, or one derived from other fields, like ``display_name``)."""
    without = {k: v for k, v in data.items() if k != key}
    try:
        rebuilt = Rule.from_dict(without)
    except (ValidationError, TypeError):
        return False
    return bool(getattr(rebuilt, key) == getattr(rule, key))


def _plain(value: Any) -> Any:
    """A value as YAML should show it: whole numbers without ``.0``."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(item) for item in value]
    return value
