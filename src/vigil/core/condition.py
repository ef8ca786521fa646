"""Composite conditions: ``command_p95_latency >= 500 and error_rate >= 5``.

A small recursive-descent parser (never ``eval``) over this grammar, ``and`` binding tighter
than ``or``::

    condition := conjunction ("or" conjunction)*
    conjunction := atom ("and" atom)*
    atom := "(" condition ")" | metric (">" | ">=" | "<" | "<=") number

Every error is a ``ConditionError`` carrying the 0-based offset of what was wrong, so an editor
can point at it.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from vigil.core.errors import ValidationError
from vigil.core.validation import METRIC_PATTERN

MAX_LENGTH = 1000
MAX_DEPTH = 20
MAX_TERMS = 50

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_WORD = re.compile(r"[A-Za-z0-9_.]+")
_KEYWORDS = frozenset({"and", "or"})


class ConditionError(ValidationError):
    """A condition that does not parse; ``position`` is the 0-based offset of the culprit."""

    def __init__(self, message: str, position: int, *, field: str = "condition") -> None:
        super().__init__(field, f"{message} at position {position}")
        self.position = position


@dataclass(frozen=True, slots=True)
class Term:
    metric: str
    op: str
    number: float

    def holds(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.number)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {_number_text(self.number)}"


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every item holds (``and``)."""

    items: tuple[Node, ...]

    def __str__(self) -> str:
        return " and ".join(
            f"({item})" if isinstance(item, AnyOf) else str(item) for item in self.items
        )


@dataclass(frozen=True, slots=True)
class AnyOf:
    """At least one item holds (``or``)."""

    items: tuple[Node, ...]

    def __str__(self) -> str:
        return " or ".join(str(item) for item in self.items)


Node = Term | AllOf | AnyOf
Predicate = Callable[[Mapping[str, float | None]], bool]


@dataclass(frozen=True, slots=True)
class Condition:
    root: Node
    metrics: tuple[str, ...]  # in order of first appearance, each once
    _check: Predicate = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_check", _compiled(self.root))

    def holds(self, values: Mapping[str, float | None]) -> bool | None:
        """Whether the condition holds for ``values``; ``None`` when a term has no data (a
        metric missing from ``values`` or ``None`` there): then the whole condition is no data."""
        for metric in self.metrics:
            if values.get(metric) is None:
                return None
        return self._check(values)

    def terms(self) -> list[Term]:
        found: list[Term] = []
        _collect(self.root, found)
        return found

    def __str__(self) -> str:
        return str(self.root)


def _holds(node: Node, values: Mapping[str, float | None]) -> bool:
    if isinstance(node, Term):
        value = values[node.metric]
        assert value is not None
        return node.holds(value)
    if isinstance(node, AllOf):
        return all(_holds(item, values) for item in node.items)
    return any(_holds(item, values) for item in node.items)


def _compiled(node: Node) -> Predicate:
    """The node as nested closures (no ``eval``): what a cycle calls for every composite."""
    if isinstance(node, Term):
        metric, number, op = node.metric, node.number, OPERATORS[node.op]
        return lambda values: op(values[metric], number)  # type: ignore[arg-type]
    parts = tuple(_compiled(item) for item in node.items)
    if len(parts) == 2:  # the common case, without a generator per call
        first, second = parts
        if isinstance(node, AllOf):
            return lambda values: first(values) and second(values)
        return lambda values: first(values) or second(values)
    if isinstance(node, AllOf):
        return lambda values: all(part(values) for part in parts)
    return lambda values: any(part(values) for part in parts)


def _collect(node: Node, found: list[Term]) -> None:
    if isinstance(node, Term):
        found.append(node)
    else:
        for item in node.items:
            _collect(item, found)


def _number_text(number: float) -> str:
    text = repr(number)
    return text[:-2] if text.endswith(".0") else text


def parse(text: str) -> Condition:
    """Parse ``text``; ``ConditionError`` (with a position) for anything that is not a
    condition."""
    if not isinstance(text, str):
        raise ConditionError(f"must be text, got {type(text).__name__}", 0)
    return _parse(text)


@functools.lru_cache(maxsize=4096)  # rules parse their condition on every construction
def _parse(text: str) -> Condition:
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"is longer than {MAX_LENGTH} characters", MAX_LENGTH)
    parser = _Parser(text)
    root = parser.condition(depth=0)
    token = parser.peek()
    if token.kind != "end":
        raise ConditionError(f"expected 'and', 'or' or the end, found {token.shown}", token.at)
    metrics = tuple(dict.fromkeys(term.metric for term in _terms(root)))
    return Condition(root, metrics)


def _terms(node: Node) -> list[Term]:
    found: list[Term] = []
    _collect(node, found)
    return found


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "word", "number", "op", "(", ")", "end"
    text: str
    at: int

    @property
    def shown(self) -> str:
        return "the end" if self.kind == "end" else repr(self.text)


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "()":
            tokens.append(_Token(char, char, i))
            i += 1
        elif char in "<>":
            op = text[i : i + 2] if text[i + 1 : i + 2] == "=" else char
            tokens.append(_Token("op", op, i))
            i += len(op)
        elif char in "=!":
            shown = text[i : i + 2] if text[i + 1 : i + 2] == "=" else char
            raise ConditionError(f"unknown operator {shown!r} (use >, >=, < or <=)", i)
        else:
            number = _NUMBER.match(text, i)
            word = _WORD.match(text, i)
            if number and (word is None or number.end() >= word.end()):
                tokens.append(_Token("number", number.group(), i))
                i = number.end()
            elif word:
                tokens.append(_Token("word", word.group(), i))
                i = word.end()
            else:
                raise ConditionError(f"unexpected character {char!r}", i)
    tokens.append(_Token("end", "", n))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0
        self.count = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token.kind == "word" and token.text.lower() == word:
            self.index += 1
            return True
        return False

    def condition(self, *, depth: int) -> Node:
        items = [self.conjunction(depth=depth)]
        while self.keyword("or"):
            items.append(self.conjunction(depth=depth))
        flat: list[Node] = []
        for item in items:  # (a or b) or c is a or b or c
            flat.extend(item.items if isinstance(item, AnyOf) else (item,))
        return items[0] if len(items) == 1 else AnyOf(tuple(flat))

    def conjunction(self, *, depth: int) -> Node:
        items = [self.atom(depth=depth)]
        while self.keyword("and"):
            items.append(self.atom(depth=depth))
        if len(items) == 1:
            return items[0]
        flat: list[Node] = []
        for item in items:  # (a and b) and c is a and b and c
            flat.extend(item.items if isinstance(item, AllOf) else (item,))
        return AllOf(tuple(flat))

    def atom(self, *, depth: int) -> Node:
        token = self.take()
        if token.kind == "(":
            if depth >= MAX_DEPTH:
                raise ConditionError(f"nests parentheses deeper than {MAX_DEPTH}", token.at)
            inner = self.condition(depth=depth + 1)
            closing = self.take()
            if closing.kind != ")":
                raise ConditionError(f"expected ')', found {closing.shown}", closing.at)
            return inner
        if token.kind == "end":
            raise ConditionError(
                "expected a term such as 'error_rate >= 5', found the end", token.at
            )
        if token.kind != "word" or token.text.lower() in _KEYWORDS:
            raise ConditionError(f"expected a metric name, found {token.shown}", token.at)
        if not METRIC_PATTERN.fullmatch(token.text):
            raise ConditionError(
                f"{token.text!r} is not a metric name (1-100 characters of a-z, 0-9, '_', '.')",
                token.at,
            )
        op = self.take()
        if op.kind != "op":
            raise ConditionError(
                f"expected >, >=, < or <= after {token.text!r}, found {op.shown}", op.at
            )
        number = self.take()
        if number.kind != "number":
            raise ConditionError(
                f"expected a number after {op.text!r}, found {number.shown}", number.at
            )
        value = float(number.text)
        if not math.isfinite(value):
            raise ConditionError(f"{number.text!r} is not a finite number", number.at)
        self.count += 1
        if self.count > MAX_TERMS:
            raise ConditionError(f"has more than {MAX_TERMS} terms", token.at)
        return Term(token.text, op.text, value)
