"""What a repeatable file declares (procedures, functions, views), and what to drop when that changes.

Redshift's ``CREATE OR REPLACE`` only replaces an object with the same identity:

* a procedure or function is identified by its name and input argument types, so
  ``CREATE OR REPLACE PROCEDURE`` with another argument list creates an overload next to
  the old one, and a changed OUT argument or return type is refused ("Naming stored
  procedures": to change the signature, drop the procedure and recreate it);
* ``CREATE OR REPLACE VIEW`` must produce the same column names and data types
  ("CREATE VIEW", OR REPLACE), and the types cannot be known from the text.

So each applied repeatable's declarations are kept in the history table (one canonical
line per object, see ``Declaration.line``); when the file changes, every object the
previous text declared that the new text does not declare identically is dropped first,
in the same transaction as the new definition. A view is identified by its name and a
digest of its definition (comments and spacing ignored): a redefined view is always
dropped and recreated, because only the warehouse knows the new column types.

Pure functions over SQL text, tested with literal SQL; the runner does the catalog look-up
of the views that depend on a view it drops.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from migrations.sql_text import Statement, Token, split_statements

ObjectKind = Literal["procedure", "function", "view"]

# Spellings of one type, so `int` and `integer` are not seen as a signature change.
_TYPE_ALIASES = {
    "int": "integer",
    "int4": "integer",
    "int2": "smallint",
    "int8": "bigint",
    "float": "double precision",
    "float8": "double precision",
    "float4": "real",
    "bool": "boolean",
    "character varying": "varchar",
    "nvarchar": "varchar",
    "text": "varchar",
    "character": "char",
    "nchar": "char",
    "bpchar": "char",
    "decimal": "numeric",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "time without time zone": "time",
    "time with time zone": "timetz",
}
_MULTI_WORD_TYPES = re.compile(
    r"(double precision|character varying|(timestamp|time) with(out)? time zone)"
)
_MODES = ("IN", "OUT", "INOUT")
# Words that end a function's RETURNS type.
_AFTER = {"STABLE", "VOLATILE", "IMMUTABLE", "AS", "LANGUAGE", "SECURITY", "SET"}
_LINE = re.compile(r"(procedure|function|view) (\S+?)(\((.*)\))?( returns (.+?))?( (sha256:\w+))?")


class SignatureError(ValueError):
    """A declaration line or statement cannot be read; the message names it."""


@dataclass(frozen=True)
class Declaration:
    """One object a repeatable file creates, identified the way Redshift identifies it."""

    kind: ObjectKind
    name: str
    arguments: tuple[tuple[str, str], ...] = ()  # (mode, canonical type); routines only
    returns: str = ""  # functions only
    digest: str = ""  # views only

    @property
    def line(self) -> str:
        """The canonical text kept in the history table, e.g. ``procedure s.p(in date)``."""
        if self.kind == "view":
            return f"view {self.name} {self.digest}"
        args = ", ".join(f"{mode} {type_}" for mode, type_ in self.arguments)
        returns = f" returns {self.returns}" if self.returns else ""
        return f"{self.kind} {self.name}({args}){returns}"

    @property
    def drop_sql(self) -> str:
        """The statement that drops this object (routines by all argument types and modes)."""
        if self.kind == "view":
            return f"drop view if exists {self.name}"
        if self.kind == "function":  # DROP FUNCTION takes argument types without modes
            return f"drop function {self.name}({', '.join(t for _, t in self.arguments)})"
        args = ", ".join(f"{mode} {type_}" for mode, type_ in self.arguments)
        return f"drop procedure {self.name}({args})"


def declarations(text: str) -> list[Declaration]:
    """The procedures, functions and views a script creates, in order."""
    found: list[Declaration] = []
    for statement in split_statements(text):
        declaration = declaration_of(statement)
        if declaration is not None:
            found.append(declaration)
    return found


def declaration_of(statement: Statement) -> Declaration | None:
    """The object a CREATE [OR REPLACE] PROCEDURE/FUNCTION/VIEW creates; None for others."""
    tokens = [t for t in statement.tokens if t.significant]
    words = [t.upper for t in tokens]
    if words[:1] != ["CREATE"]:
        return None
    at = 3 if words[1:3] == ["OR", "REPLACE"] else 1
    if at >= len(words) or words[at] not in ("PROCEDURE", "FUNCTION", "VIEW"):
        return None
    kind: ObjectKind = words[at].lower()  # type: ignore[assignment]
    name, at = _qualified_name(tokens, at + 1, statement)
    if kind == "view":
        return Declaration("view", name, digest=_digest(tokens))
    if at >= len(tokens) or tokens[at].text != "(":
        raise SignatureError(f"line {statement.line}: {kind} {name} has no argument list")
    groups, at = _argument_groups(tokens, at, statement)
    arguments = tuple(_argument(group, statement) for group in groups)
    returns = ""
    if kind == "function" and at < len(tokens) and words[at] == "RETURNS":
        end = at + 1
        while end < len(tokens) and tokens[end].kind != "dollar" and words[end] not in _AFTER:
            end += 1
        returns = canonical_type(tokens[at + 1 : end])
    return Declaration(kind, name, arguments, returns)


def canonical_type(tokens: Sequence[Token]) -> str:
    """A type without its length/precision, lower case, one spelling per type."""
    depth, kept = 0, []
    for token in tokens:
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
        elif depth == 0:
            kept.append(token.text.lower().strip('"'))
    text = " ".join(kept)
    return _TYPE_ALIASES.get(text, text)


def parse_lines(stored: str) -> list[Declaration]:
    """The declarations kept in a history row (``Declaration.line`` per line)."""
    result: list[Declaration] = []
    for line in filter(None, (raw.strip() for raw in stored.splitlines())):
        match = _LINE.fullmatch(line)
        if match is None:
            raise SignatureError(f"history declaration {line!r} is not <kind> <name>(...)")
        kind: ObjectKind = match.group(1)  # type: ignore[assignment]
        arguments: tuple[tuple[str, str], ...] = ()
        if match.group(4):
            pairs = [a.strip().split(" ", 1) for a in match.group(4).split(",")]
            arguments = tuple((p[0], p[1]) for p in pairs)
        result.append(
            Declaration(kind, match.group(2), arguments, match.group(6) or "", match.group(8) or "")
        )
    return result


def lines(found: Iterable[Declaration]) -> str:
    return "\n".join(d.line for d in found)


def to_drop(previous: Sequence[Declaration], current: Sequence[Declaration]) -> list[Declaration]:
    """What the previous text declared that the current text does not declare identically."""
    keep = {d.line for d in current}
    return [d for d in previous if d.line not in keep]


def _qualified_name(tokens: list[Token], at: int, statement: Statement) -> tuple[str, int]:
    parts: list[str] = []
    while at < len(tokens) and tokens[at].kind in ("word", "ident_quoted"):
        token = tokens[at]
        parts.append(token.text.strip('"') if token.kind == "ident_quoted" else token.text.lower())
        if at + 1 < len(tokens) and tokens[at + 1].text == ".":
            at += 2
            continue
        at += 1
        break
    if not parts:
        raise SignatureError(f"line {statement.line}: CREATE without an object name")
    return ".".join(parts), at


def _argument_groups(
    tokens: list[Token], at: int, statement: Statement
) -> tuple[list[list[Token]], int]:
    """The tokens of each argument between the parentheses at ``at``, and the index after."""
    groups: list[list[Token]] = [[]]
    depth = 0
    for i in range(at, len(tokens)):
        text = tokens[i].text
        if text == "(":
            depth += 1
            if depth == 1:
                continue
        elif text == ")":
            depth -= 1
            if depth == 0:
                return [g for g in groups if g], i + 1
        elif text == "," and depth == 1:
            groups.append([])
            continue
        groups[-1].append(tokens[i])
    raise SignatureError(f"line {statement.line}: argument list is never closed")


def _argument(group: list[Token], statement: Statement) -> tuple[str, str]:
    """(mode, type) of ``[name] [mode] type`` (Redshift) or ``[mode] [name] type`` (PostgreSQL)."""
    mode = "in"
    rest = list(group)
    for index, token in enumerate(rest[:2]):
        if token.upper in _MODES:
            mode = token.text.lower()
            del rest[index]
            break
    if any(t.upper == "DEFAULT" or t.text == "=" for t in rest):
        cut = next(i for i, t in enumerate(rest) if t.upper == "DEFAULT" or t.text == "=")
        rest = rest[:cut]
    bare = [t for t in rest if t.kind in ("word", "ident_quoted")]
    if not bare:
        raise SignatureError(f"line {statement.line}: an argument has no type")
    words_only = " ".join(t.text.lower() for t in bare)
    if len(bare) > 1 and not _MULTI_WORD_TYPES.fullmatch(words_only):
        rest = rest[rest.index(bare[0]) + 1 :]  # the first word is the argument's name
    return mode, canonical_type(rest)


def _digest(tokens: Sequence[Token]) -> str:
    """A digest of the definition: comments and spacing ignored, keywords case-folded."""
    text = " ".join(t.text.lower() if t.kind == "word" else t.text for t in tokens)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
