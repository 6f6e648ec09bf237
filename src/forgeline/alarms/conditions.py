"""Metric conditions: a small safe grammar over one step's properties and metrics, parsed and evaluated, never eval'd.

    condition  := all ("or" all)*
    all        := term ("and" term)*
    term       := "(" condition ")" | path OPERATOR literal
    path       := "steps." STEP "." ("properties" | "metrics" | "outputs" | "return") ("." KEY)*
    OPERATOR   := > >= < <= == !=
    literal    := number | 'text' | "text" | true | false | null

``steps.Compare.properties.deviation.score_drop > 0.05`` reads the Compare step's property document: its
properties, and for a ``@step`` function the keys of the dict it returned. A step inside a ForEach matches by its
body name too (``Compare`` matches ``Package-mailer-Compare``).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from forgeline.errors import AlarmError

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<op>>=|<=|==|!=|>|<)
  | (?P<paren>[()])
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<text>'[^']*'|"[^"]*")
  | (?P<path>[A-Za-z_][\w\-]*(?:\.[\w\-]+)*)
""", re.VERBOSE)
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
}
_WORDS = {"true": True, "false": False, "null": None}
SECTIONS = ("properties", "metrics", "outputs", "return")
"""What a path may read of a step after its name."""


@dataclass(frozen=True)
class Token:
    """One lexical piece of a condition and where it starts (0-based)."""

    kind: str
    text: str
    position: int


@dataclass(frozen=True)
class Comparison:
    """``path OPERATOR literal``: true when the value at the path compares so; false when it is missing."""

    step: str
    section: str
    keys: tuple[str, ...]
    operator: str
    literal: Any

    def holds(self, document: Mapping[str, Any]) -> bool:
        """Compare the value this path finds in a step's property document with the literal."""
        found, value = read_path(document, self.section, self.keys)
        if not found:
            return False
        try:
            return bool(_OPERATORS[self.operator](value, self.literal))
        except TypeError:  # a number against text: the condition does not hold
            return False

    @property
    def path(self) -> str:
        """The path as written."""
        return ".".join(("steps", self.step, self.section, *self.keys))


@dataclass(frozen=True)
class Junction:
    """Several conditions joined by ``and`` (all hold) or ``or`` (one holds)."""

    word: str
    parts: tuple[Comparison | Junction, ...]

    def holds(self, document: Mapping[str, Any]) -> bool:
        """Whether all (``and``) or any (``or``) of the parts hold."""
        results = (part.holds(document) for part in self.parts)
        return all(results) if self.word == "and" else any(results)


@dataclass(frozen=True)
class Condition:
    """A parsed condition over one step; ``holds(document)`` evaluates it on that step's property document."""

    text: str
    step: str
    root: Comparison | Junction

    def holds(self, document: Mapping[str, Any]) -> bool:
        """True when the condition is met by this property document."""
        return self.root.holds(document)

    def comparisons(self) -> list[Comparison]:
        """Every comparison of the condition, in the order written."""
        found: list[Comparison] = []
        pending: list[Comparison | Junction] = [self.root]
        while pending:
            node = pending.pop(0)
            if isinstance(node, Comparison):
                found.append(node)
            else:
                pending[:0] = node.parts
        return found

    def matches_step(self, step_name: str) -> bool:
        """True for the condition's step, and for its copies inside a ForEach (``<Loop>-<item>-<Step>``)."""
        return step_name == self.step or step_name.endswith("-" + self.step)


def parse_condition(text: str) -> Condition:
    """Parse a condition; AlarmError names the token that is wrong and what was expected."""
    tokens = tokenize(text)
    if not tokens:
        raise AlarmError("condition is empty; write e.g. \"steps.Compare.properties.deviation.score_drop > 0.05\"")
    parser = _Parser(text, tokens)
    root = parser.condition()
    if parser.index < len(tokens):
        extra = tokens[parser.index]
        raise AlarmError(f"condition {text!r}: unexpected {extra.text!r} at position {extra.position}; "
                         "join comparisons with 'and' or 'or'")
    steps = sorted({comparison.step for comparison in Condition(text, "", root).comparisons()})
    if len(steps) > 1:
        raise AlarmError(f"condition {text!r} names several steps ({', '.join(steps)}); "
                         "a condition is evaluated when its one step succeeds: make one alarm per step")
    return Condition(text=text, step=steps[0], root=root)


def tokenize(text: str) -> list[Token]:
    """The condition's tokens; AlarmError names the first character no token starts with."""
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise AlarmError(f"condition {text!r}: unexpected {text[position]!r} at position {position}; "
                             "write a path, an operator (> >= < <= == !=) and a number or quoted text")
        kind = match.lastgroup or ""
        if kind != "space":
            word = match.group().lower()
            if kind == "path" and word in ("and", "or"):
                kind = word
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    return tokens


def read_path(document: Mapping[str, Any], section: str, keys: Sequence[str]) -> tuple[bool, Any]:
    """(found, value) at ``section.keys`` of a step's property document.

    ``properties`` reads the whole document (outputs, metrics and properties) and, for a key it lacks, the
    return value of a ``@step`` function; ``metrics``, ``outputs`` and ``return`` read just that part.
    """
    returned = document.get("Return")
    if section == "properties":
        current: Any = document
        if keys and keys[0] not in document and isinstance(returned, Mapping):
            current = returned
    elif section == "return":
        current = returned
    else:
        current = document.get(section, {})
    for key in keys:
        if isinstance(current, Mapping) and key in current:
            current = current[key]
        elif isinstance(current, list) and key.isdigit() and int(key) < len(current):
            current = current[int(key)]
        else:
            return False, None
    return True, current


class _Parser:
    """Recursive descent over the tokens; each method consumes one rule of the grammar."""

    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.index = 0

    def condition(self) -> Comparison | Junction:
        return self._joined("or", self.all_of)

    def all_of(self) -> Comparison | Junction:
        return self._joined("and", self.term)

    def _joined(self, word: str, part: Callable[[], Comparison | Junction]) -> Comparison | Junction:
        parts = [part()]
        while self._peek() is not None and self._peek_kind() == word:
            self.index += 1
            parts.append(part())
        return parts[0] if len(parts) == 1 else Junction(word, tuple(parts))

    def term(self) -> Comparison | Junction:
        token = self._take("a path such as steps.Compare.properties.score or '('")
        if token.kind == "paren" and token.text == "(":
            inner = self.condition()
            closing = self._take("')'")
            if closing.text != ")":
                self._fail(closing, "')'")
            return inner
        if token.kind != "path":
            self._fail(token, "a path such as steps.Compare.properties.score")
        step, section, keys = self._path(token)
        op = self._take("an operator (> >= < <= == !=)")
        if op.kind != "op":
            self._fail(op, "an operator (> >= < <= == !=)")
        return Comparison(step, section, keys, op.text, self._literal())

    def _path(self, token: Token) -> tuple[str, str, tuple[str, ...]]:
        parts = token.text.split(".")
        if parts[0] != "steps" or len(parts) < 4 or parts[2] not in SECTIONS:
            raise AlarmError(
                f"condition {self.text!r}: path {token.text!r} at position {token.position} must read "
                f"steps.<Step>.<{'|'.join(SECTIONS)}>.<key>..., e.g. steps.Compare.properties.deviation.score_drop")
        return parts[1], parts[2], tuple(parts[3:])

    def _literal(self) -> Any:
        token = self._take("a number, quoted text, true, false or null")
        if token.kind == "number":
            return float(token.text) if any(c in token.text for c in ".eE") else int(token.text)
        if token.kind == "text":
            return token.text[1:-1]
        if token.kind == "path" and token.text.lower() in _WORDS:
            return _WORDS[token.text.lower()]
        self._fail(token, "a number, quoted text, true, false or null")
        raise AssertionError("unreachable")

    def _peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _peek_kind(self) -> str:
        token = self._peek()
        return "" if token is None else token.kind

    def _take(self, expected: str) -> Token:
        token = self._peek()
        if token is None:
            raise AlarmError(f"condition {self.text!r} ends too early: expected {expected}")
        self.index += 1
        return token

    def _fail(self, token: Token, expected: str) -> None:
        raise AlarmError(f"condition {self.text!r}: unexpected {token.text!r} at position {token.position}; "
                         f"expected {expected}")
