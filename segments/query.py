"""The text form of segment rules: `parse` reads a query, `format_rule` writes one.

A rule is a JSON tree (see `segments.compiler`); a query is the same tree written for
people::

    orders >= 2 and total_spent > 100
    city in ("Utrecht", "Delft") or not gender = "f"
    last_purchase within 30 days and bought_category_within_days("shoes", 90)

`parse(format_rule(rule)) == rule` holds for every tree `format_rule` accepts, and
`format_rule(parse(text))` is the canonical spelling of `text`. The parser checks only
the grammar; whether a field exists and takes that operator and value is checked by
`segments.compiler.rule_check`.

Grammar (keywords are case-insensitive, field names are lower-cased)::

    query      := or_expr
    or_expr    := and_expr ("or" and_expr)*        -> {"any": [...]} for 2 or more
    and_expr   := not_expr ("and" not_expr)*       -> {"all": [...]} for 2 or more
    not_expr   := "not" not_expr | primary         -> {"not": ...}
    primary    := "(" or_expr ")"
                | "true"                           -> {"all": []}
                | "false"                          -> {"any": []}
                | "all" "(" or_expr ")"            -> {"all": [rule]}
                | "any" "(" or_expr ")"            -> {"any": [rule]}
                | CALL_FIELD "(" STRING "," INT ")"
                | FIELD condition
    condition  := ("=" | "!=" | "<" | "<=" | ">" | ">=") value   (also "==" for eq)
                | "in" list | "not" "in" list
                | "between" value "and" value                 -> [low, high]
                | "contains" value
                | "is" "set" | "is" "not" "set"               -> is_set true / false
                | "within" INT "days"                         -> within_days
                | "before" INT "days"                         -> before_days
    list       := "(" [value ("," value)*] ")"
    value      := STRING | NUMBER | "true" | "false"

Precedence is not > and > or, and the `and` inside `between low and high` belongs to
the `between`: `orders between 2 and 5 and city = "Delft"` is an `all` of two leaves.
A chain of `and` (or of `or`) becomes one group, and parentheses keep what they
enclose as one node: `(a and b) and c` is `{"all": [{"all": [a, b]}, c]}`, not a
flat group of three, while `(a)` is just `a`. A group of one child has no infix
spelling, so it is written `all(a)` or `any(a)`; the empty groups are `true` (all of
nothing) and `false` (any of nothing). `format_rule` writes the fewest parentheses
that keep the tree exact: `a and b or c` is `{"any": [{"all": [a, b]}, c]}`.

A CALL_FIELD takes an object value, written like a call: a field registered with an
`argument` (`segments.fields.FieldSpec`), such as `bought_category_within_days` with
"category" or the campaign fields with "campaign". `bought_category_within_days("shoes",
30)` is `{"field": "bought_category_within_days", "op": "eq",
"value": {"category": "shoes", "days": 30}}`; its negation is written with `not`.

Values: strings are double-quoted (single quotes are accepted when parsing) with the
escapes \\" \\' \\\\ \\n \\r \\t; bare words are not values, and there is no null
(`is not set` tests for a missing value). Numbers written without a point or exponent
become `int`, others `float` (written with `repr`, so every finite float round-trips);
JSON has no decimal type, and the compiler reads numbers through `Decimal(str(value))`.

Field names match `[a-z_][a-z0-9_]*` (a query may write them in any case) and may not
be keywords: and, or, not, in,
between, contains, is, set, within, before, days, true, false, null, all, any.
"""

import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CALL_FIELDS",
    "KEYWORDS",
    "MAX_DEPTH",
    "OPERATOR_ORDER",
    "QuerySyntaxError",
    "call_field_register",
    "field_syntax",
    "format_rule",
    "operator_text",
    "parse",
]

KEYWORDS = frozenset(
    {
        "and",
        "or",
        "not",
        "in",
        "between",
        "contains",
        "is",
        "set",
        "within",
        "before",
        "days",
        "true",
        "false",
        "null",
        "all",
        "any",
    }
)

# Deep nesting would otherwise surface as a RecursionError from untrusted input.
MAX_DEPTH = 100

# Fields written like a call, with the key of their first argument: filled by
# `segments.fields.register` (call_field_register) as fields are registered.
CALL_FIELDS: dict[str, str] = {}

_COMPARISONS = {
    "=": "eq",
    "==": "eq",
    "!=": "ne",
    "<": "lt",
    "<=": "lte",
    ">": "gt",
    ">=": "gte",
}
_SYMBOLS = {"eq": "=", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_TIME_OPS = {"within": "within_days", "before": "before_days"}
_TIME_WORDS = {op: word for word, op in _TIME_OPS.items()}
# How each operator of the JSON tree is written in a query, for messages and help.
_OPERATOR_TEXT = {
    **_SYMBOLS,
    "in": "in (...)",
    "not_in": "not in (...)",
    "between": "between ... and ...",
    "contains": "contains",
    "is_set": "is set / is not set",
    "within_days": "within N days",
    "before_days": "before N days",
}
OPERATOR_ORDER = tuple(_OPERATOR_TEXT)
_OPERATOR_HINT = (
    "=, !=, <, <=, >, >=, in, not in, between, contains, is set, is not set, "
    "within or before"
)

_FIELD_RE = re.compile(r"[a-z_][a-z0-9_]*")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_OPERATOR_RE = re.compile(r"[<>=!]+")
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
_STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _line_and_column(text: str, position: int) -> tuple[int, int]:
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return line, column


def _where(text: str, position: int) -> str:
    line, column = _line_and_column(text, position)
    if "\n" in text:
        return f"line {line}, column {column}"
    return f"column {column}"


class QuerySyntaxError(ValueError):
    """A query that does not follow the grammar.

    `position` is the 0-based offset of the problem in `text`; `line` and `column`
    are 1-based. The message says what was expected there and what was found.
    """

    def __init__(self, message: str, *, text: str, position: int):
        super().__init__(message)
        self.message = message
        self.text = text
        self.position = position
        self.line, self.column = _line_and_column(text, position)

    def caret(self) -> str:
        """Return the offending line of the query with a ^ under the error."""
        start = self.text.rfind("\n", 0, self.position) + 1
        end = self.text.find("\n", self.position)
        line = self.text[start : len(self.text) if end == -1 else end].removesuffix(
            "\r"
        )
        # Tabs are kept so the caret lines up however the line is displayed.
        padding = "".join(
            "\t" if char == "\t" else " " for char in line[: self.column - 1]
        )
        return f"{line}\n{padding}^"


def parse(text: str) -> dict:
    """Parse a query into a rule tree; raise `QuerySyntaxError` if it is malformed."""
    return _Parser(text).parse()


def format_rule(rule: dict) -> str:
    """Write a rule tree as its canonical query; raise `ValueError` if it has none."""
    return _format(rule, depth=0)


def operator_text(op: str) -> str:
    """How the JSON operator `op` is written in a query: "gt" is ">"."""
    return _OPERATOR_TEXT.get(op, op)


def call_field_register(name: str, argument: str) -> None:
    """Write field `name` like a call: `name("slug", N)` is the value
    {argument: "slug", "days": N} with the operator eq."""
    CALL_FIELDS[name] = argument


def field_syntax(name: str, ops: frozenset[str] | set[str]) -> str:
    """The query spellings of the conditions on field `name`, for field help."""
    if name in CALL_FIELDS:
        return f'{name}("{CALL_FIELDS[name]}-slug", N)'
    return ", ".join(
        f"{name} {_OPERATOR_TEXT[op]}" for op in OPERATOR_ORDER if op in ops
    )


# Tokens ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    # "name", "string", "number", "operator", "punct", "unknown" or "end"
    kind: str
    text: str
    start: int
    end: int
    value: Any = None

    def is_word(self, *words: str) -> bool:
        return self.kind == "name" and self.text.lower() in words

    def is_punct(self, char: str) -> bool:
        return self.kind == "punct" and self.text == char

    def describe(self) -> str:
        if self.kind == "end":
            return "end of input"
        text = self.text if len(self.text) <= 30 else self.text[:29] + "…"
        if self.kind == "string":
            return f"the text {text}"
        return f'"{text}"'


class _Lexer:
    """Splits the query into tokens on demand, so errors come in text order."""

    def __init__(self, text: str):
        self.text = text
        self._offset = 0
        self._buffer: list[_Token] = []

    def peek(self, ahead: int = 0) -> _Token:
        while len(self._buffer) <= ahead:
            self._buffer.append(self._scan())
        return self._buffer[ahead]

    def advance(self) -> _Token:
        token = self.peek()
        self._buffer.pop(0)
        return token

    def _scan(self) -> _Token:
        text = self.text
        position = self._offset
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            self._offset = position
            return _Token("end", "", position, position)
        char = text[position]
        if char in "\"'":
            token = self._scan_string(position)
        elif match := _NUMBER_RE.match(text, position):
            token = self._number_token(match)
        elif match := _NAME_RE.match(text, position):
            token = _Token("name", match.group(), position, match.end())
        elif match := _OPERATOR_RE.match(text, position):
            token = _Token("operator", match.group(), position, match.end())
        elif char in "(),":
            token = _Token("punct", char, position, position + 1)
        else:
            token = _Token("unknown", char, position, position + 1)
        self._offset = token.end
        return token

    def _scan_string(self, start: int) -> _Token:
        text = self.text
        quote = text[start]
        chars: list[str] = []
        position = start + 1
        while position < len(text):
            char = text[position]
            if char == quote:
                return _Token(
                    "string",
                    text[start : position + 1],
                    start,
                    position + 1,
                    "".join(chars),
                )
            if char == "\\" and position + 1 < len(text):
                escaped = text[position + 1]
                if escaped not in _ESCAPES:
                    raise QuerySyntaxError(
                        f'unknown escape "\\{escaped}" in a string at '
                        f"{_where(text, position)}; write \\\\ for a backslash",
                        text=text,
                        position=position,
                    )
                chars.append(_ESCAPES[escaped])
                position += 2
                continue
            chars.append(char)
            position += 1
        raise QuerySyntaxError(
            f"unterminated string: the {quote} at {_where(text, start)} "
            "is never closed",
            text=text,
            position=start,
        )

    def _number_token(self, match: re.Match) -> _Token:
        literal = match.group()
        start = match.start()
        try:
            if match.group(1) is None and match.group(2) is None:
                value: int | float = int(literal)
            else:
                value = float(literal)
        except ValueError:
            value = math.inf  # more digits than int() accepts
        if isinstance(value, float) and not math.isfinite(value):
            raise QuerySyntaxError(
                f"number out of range at {_where(self.text, start)}: {literal[:30]}",
                text=self.text,
                position=start,
            )
        return _Token("number", literal, start, match.end(), value)


# Parser ----------------------------------------------------------------------------


def _leaf(field: str, op: str, value: Any) -> dict:
    return {"field": field, "op": op, "value": value}


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self._lexer = _Lexer(text)
        self._previous: _Token | None = None
        self._condition_start = 0

    def parse(self) -> dict:
        if self._peek().kind == "end":
            raise self._error(
                0, f"the query is empty: expected a condition at {self._where(0)}"
            )
        rule = self._or(depth=0)
        token = self._peek()
        if token.is_punct(")"):
            raise self._error(
                token.start,
                f'unbalanced parentheses: the ")" at {self._where(token.start)} '
                'has no matching "("',
            )
        if token.kind != "end":
            raise self._expected('"and", "or" or the end of the query')
        return rule

    # Boolean structure

    def _or(self, depth: int) -> dict:
        self._check_depth(depth)
        operands = [self._and(depth)]
        while self._peek().is_word("or"):
            self._advance()
            operands.append(self._and(depth))
        return operands[0] if len(operands) == 1 else {"any": operands}

    def _and(self, depth: int) -> dict:
        operands = [self._not(depth)]
        while self._peek().is_word("and"):
            self._advance()
            operands.append(self._not(depth))
        return operands[0] if len(operands) == 1 else {"all": operands}

    def _not(self, depth: int) -> dict:
        if self._peek().is_word("not"):
            self._advance()
            self._check_depth(depth + 1)
            return {"not": self._not(depth + 1)}
        return self._primary(depth)

    def _primary(self, depth: int) -> dict:
        token = self._peek()
        if token.is_punct("("):
            self._advance()
            return self._group_body(token, depth)
        if token.is_word("true", "false"):
            self._advance()
            return {"all": []} if token.is_word("true") else {"any": []}
        if token.is_word("all", "any"):
            self._advance()
            opener = self._peek()
            if not opener.is_punct("("):
                raise self._expected('"("', after=token.text)
            self._advance()
            return {token.text.lower(): [self._group_body(opener, depth)]}
        if token.kind == "name" and token.text.lower() not in KEYWORDS:
            return self._condition()
        after = self._previous.text if self._previous else None
        raise self._expected("a condition", after=after)

    def _group_body(self, opener: _Token, depth: int) -> dict:
        rule = self._or(depth + 1)
        token = self._peek()
        if token.is_punct(")"):
            self._advance()
            return rule
        opened = self._where(opener.start)
        if token.kind == "end":
            raise self._error(
                token.start,
                f'unbalanced parentheses: expected ")" at {self._where(token.start)} '
                f'to close the "(" at {opened}, got end of input',
            )
        raise self._expected(
            '"and", "or" or ")"', hint=f' (to close the "(" at {opened})'
        )

    # Conditions

    def _condition(self) -> dict:
        name = self._advance()
        self._condition_start = name.start
        field = name.text.lower()
        token = self._peek()
        if token.is_punct("(") and field in CALL_FIELDS:
            return self._call(field)
        if token.kind == "operator" and token.text in _COMPARISONS:
            self._advance()
            return _leaf(field, _COMPARISONS[token.text], self._value())
        if token.is_word("in"):
            self._advance()
            return _leaf(field, "in", self._list())
        if token.is_word("not"):
            self._advance()
            self._keyword("in")
            return _leaf(field, "not_in", self._list())
        if token.is_word("between"):
            self._advance()
            low = self._value()
            self._keyword("and")
            return _leaf(field, "between", [low, self._value()])
        if token.is_word("contains"):
            self._advance()
            return _leaf(field, "contains", self._value())
        if token.is_word("is"):
            self._advance()
            negated = self._peek().is_word("not")
            if negated:
                self._advance()
                self._keyword("set")
            else:
                self._keyword("set", also='"not set"')
            return _leaf(field, "is_set", not negated)
        if token.is_word(*_TIME_OPS):
            self._advance()
            days = self._days()
            self._keyword("days")
            return _leaf(field, _TIME_OPS[token.text.lower()], days)
        if token.kind in ("operator", "name", "unknown"):
            raise self._error(
                token.start,
                f"unknown operator {token.describe()} after "
                f'"{self._context()}" at {self._where(token.start)}; '
                f"expected {_OPERATOR_HINT}",
            )
        raise self._expected("an operator", after=self._context())

    def _call(self, field: str) -> dict:
        argument = CALL_FIELDS[field]
        self._advance()
        token = self._peek()
        if token.kind != "string":
            raise self._expected(f"a quoted {argument} slug", after=self._context())
        self._advance()
        self._punct(",")
        days = self._days()
        self._punct(")")
        return _leaf(field, "eq", {argument: token.value, "days": days})

    def _value(self) -> Any:
        token = self._peek()
        if token.kind in ("string", "number"):
            self._advance()
            return token.value
        if token.is_word("true", "false"):
            self._advance()
            return token.is_word("true")
        hint = ""
        if token.is_word("null"):
            hint = '; there is no null, test a missing value with "is not set"'
        elif token.kind == "name":
            hint = f'; text values must be quoted, as in "{token.text}"'
        raise self._expected("a value", after=self._context(), hint=hint)

    def _list(self) -> list:
        self._punct("(")
        values: list = []
        if self._peek().is_punct(")"):
            self._advance()
            return values
        while True:
            values.append(self._value())
            if self._peek().is_punct(")"):
                self._advance()
                return values
            self._punct(",", also='")"')

    def _days(self) -> int:
        token = self._peek()
        if token.kind == "number" and isinstance(token.value, int):
            self._advance()
            return token.value
        raise self._expected("a whole number of days", after=self._context())

    # Helpers

    def _peek(self) -> _Token:
        return self._lexer.peek()

    def _advance(self) -> _Token:
        self._previous = self._lexer.advance()
        return self._previous

    def _keyword(self, word: str, also: str = "") -> None:
        if not self._peek().is_word(word):
            expected = f'"{word}" or {also}' if also else f'"{word}"'
            raise self._expected(expected, after=self._context())
        self._advance()

    def _punct(self, char: str, also: str = "") -> None:
        if not self._peek().is_punct(char):
            expected = f'"{char}" or {also}' if also else f'"{char}"'
            raise self._expected(expected, after=self._context())
        self._advance()

    def _context(self) -> str:
        """The condition read so far, for messages such as `after "orders >="`."""
        end = self._previous.end if self._previous else 0
        context = " ".join(self.text[self._condition_start : end].split())
        return context if len(context) <= 40 else "…" + context[-39:]

    def _check_depth(self, depth: int) -> None:
        if depth > MAX_DEPTH:
            position = self._peek().start
            raise self._error(
                position,
                f"the query nests deeper than {MAX_DEPTH} levels at "
                f"{self._where(position)}",
            )

    def _where(self, position: int) -> str:
        return _where(self.text, position)

    def _error(self, position: int, message: str) -> QuerySyntaxError:
        return QuerySyntaxError(message, text=self.text, position=position)

    def _expected(
        self, what: str, *, after: str | None = None, hint: str = ""
    ) -> QuerySyntaxError:
        token = self._peek()
        after_text = f' after "{after}"' if after else ""
        return self._error(
            token.start,
            f"expected {what}{after_text} at {self._where(token.start)}, "
            f"got {token.describe()}{hint}",
        )


# Formatter -------------------------------------------------------------------------


def _format(rule: Any, *, depth: int) -> str:
    if depth > MAX_DEPTH:
        raise ValueError(f"the rule nests deeper than {MAX_DEPTH} levels")
    if not isinstance(rule, dict):
        raise ValueError(f"a rule is an object, got {rule!r}")
    keys = set(rule)
    if keys in ({"all"}, {"any"}):
        (group,) = keys
        children = rule[group]
        if not isinstance(children, list):
            raise ValueError(f"{group} takes a list of rules, got {children!r}")
        if not children:
            return "true" if group == "all" else "false"
        if len(children) == 1:
            return f"{group}({_format(children[0], depth=depth + 1)})"
        joiner = " and " if group == "all" else " or "
        return joiner.join(_operand(child, group, depth + 1) for child in children)
    if keys == {"not"}:
        return "not " + _operand(rule["not"], "not", depth + 1)
    if keys == {"field", "op", "value"}:
        return _format_leaf(rule["field"], rule["op"], rule["value"])
    raise ValueError(
        'a rule is {"all": [...]}, {"any": [...]}, {"not": rule} or '
        f'{{"field": ..., "op": ..., "value": ...}}, got keys {sorted(keys)!r}'
    )


def _is_chain(rule: Any) -> str | None:
    """Return "all" or "any" for a group written infix (two or more children)."""
    if isinstance(rule, dict) and len(rule) == 1:
        for group in ("all", "any"):
            children = rule.get(group)
            if isinstance(children, list) and len(children) >= 2:
                return group
    return None


def _operand(rule: Any, parent: str, depth: int) -> str:
    text = _format(rule, depth=depth)
    chain = _is_chain(rule)
    # Parentheses keep a nested group its own node; "a and b or c" needs none
    # because and binds tighter than or.
    if chain and not (parent == "any" and chain == "all"):
        return f"({text})"
    return text


def _format_leaf(field: Any, op: Any, value: Any) -> str:
    if not isinstance(field, str) or not _FIELD_RE.fullmatch(field):
        raise ValueError(f"field names match [a-z_][a-z0-9_]*, got {field!r}")
    if field in KEYWORDS:
        raise ValueError(f"the keyword {field!r} cannot be a field name")
    if op == "eq" and field in CALL_FIELDS and isinstance(value, dict):
        argument = CALL_FIELDS[field]
        if set(value) != {argument, "days"} or not isinstance(value[argument], str):
            raise ValueError(
                f'{field} takes {{"{argument}": slug, "days": N}}, got {value!r}'
            )
        named = _format_value(value[argument])
        return f"{field}({named}, {_format_days(value['days'])})"
    if op in _SYMBOLS:
        return f"{field} {_SYMBOLS[op]} {_format_value(value)}"
    if op in ("in", "not_in"):
        if not isinstance(value, list):
            raise ValueError(f"{op} takes a list, got {value!r}")
        items = ", ".join(_format_value(item) for item in value)
        keyword = "in" if op == "in" else "not in"
        return f"{field} {keyword} ({items})"
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ValueError(f"between takes [low, high], got {value!r}")
        low, high = (_format_value(item) for item in value)
        return f"{field} between {low} and {high}"
    if op == "contains":
        return f"{field} contains {_format_value(value)}"
    if op == "is_set":
        if not isinstance(value, bool):
            raise ValueError(f"is_set takes true or false, got {value!r}")
        return f"{field} is set" if value else f"{field} is not set"
    if op in _TIME_WORDS:
        return f"{field} {_TIME_WORDS[op]} {_format_days(value)} days"
    raise ValueError(f"unknown operator {op!r}")


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"numbers must be finite, got {value!r}")
        return float.__repr__(value)
    if isinstance(value, str):
        escaped = "".join(_STRING_ESCAPES.get(char, char) for char in value)
        return f'"{escaped}"'
    raise ValueError(f"a value is a string, number or boolean, got {value!r}")


def _format_days(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"days are a whole number, got {value!r}")
    return int.__repr__(value)
