"""A small SQL lexer and statement splitter shared by the migration runner and the dialect adapter.

A Data API ExecuteStatement carries exactly one statement, so migration files must be split
on the semicolons that end statements, and only those: a ``;`` inside a string, a quoted
identifier, a comment or a ``$$`` procedure body is text, not a separator. A regex cannot
tell these apart; a lexer that knows the five quoting forms of Redshift/PostgreSQL can.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

TokenKind = Literal[
    "space", "comment", "string", "ident_quoted", "dollar", "word", "number", "param", "punct"
]


class SqlSyntaxError(ValueError):
    """The text cannot be split safely (an unterminated string, comment or body)."""


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str
    line: int

    @property
    def upper(self) -> str:
        return self.text.upper()

    @property
    def significant(self) -> bool:
        return self.kind not in ("space", "comment")


_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_NUMBER = re.compile(r"\d+(\.\d*)?([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?")
_SPACE = re.compile(r"\s+")
_PARAM = re.compile(r":[A-Za-z_][A-Za-z0-9_]*")


def tokenize(sql: str) -> list[Token]:
    """Split text into tokens; concatenating the token texts gives back the input exactly."""
    tokens: list[Token] = []
    pos, line, n = 0, 1, len(sql)
    while pos < n:
        ch = sql[pos]
        kind: TokenKind
        if ch.isspace():
            match = _SPACE.match(sql, pos)
            assert match is not None
            end, kind = match.end(), "space"
        elif sql.startswith("--", pos):
            newline = sql.find("\n", pos)
            end, kind = (n if newline < 0 else newline), "comment"
        elif sql.startswith("/*", pos):
            end, kind = _block_comment_end(sql, pos, line), "comment"
        elif ch == "'":
            end, kind = _quoted_end(sql, pos, "'", line, "string literal"), "string"
        elif ch == '"':
            end, kind = _quoted_end(sql, pos, '"', line, "quoted identifier"), "ident_quoted"
        elif ch == "$" and (tag := _DOLLAR_TAG.match(sql, pos)) is not None:
            close = sql.find(tag.group(0), tag.end())
            if close < 0:
                raise SqlSyntaxError(
                    f"line {line}: dollar-quoted body {tag.group(0)} is never closed"
                )
            end, kind = close + len(tag.group(0)), "dollar"
        elif (word := _WORD.match(sql, pos)) is not None:
            end, kind = word.end(), "word"
        elif ch.isdigit() or (ch == "." and pos + 1 < n and sql[pos + 1].isdigit()):
            match = _NUMBER.match(sql, pos)
            assert match is not None
            end, kind = match.end(), "number"
        elif ch == ":" and not sql.startswith("::", pos) and (p := _PARAM.match(sql, pos)):
            end, kind = p.end(), "param"
        else:
            end, kind = pos + (2 if sql.startswith("::", pos) else 1), "punct"
        text = sql[pos:end]
        tokens.append(Token(kind, text, line))
        line += text.count("\n")
        pos = end
    return tokens


def _block_comment_end(sql: str, pos: int, line: int) -> int:
    """Block comments nest in PostgreSQL and Redshift, so count depth."""
    depth, i = 0, pos
    while i < len(sql):
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    raise SqlSyntaxError(f"line {line}: block comment is never closed")


def _quoted_end(sql: str, pos: int, quote: str, line: int, what: str) -> int:
    """A doubled quote is an escaped quote; backslash escapes are not standard and not used."""
    i = pos + 1
    while True:
        close = sql.find(quote, i)
        if close < 0:
            raise SqlSyntaxError(f"line {line}: {what} starting here is never closed")
        if sql.startswith(quote * 2, close):
            i = close + 2
            continue
        return close + 1


def dollar_body(token: Token) -> tuple[str, str]:
    """The (delimiter, body) of a dollar-quoted token, e.g. ('$$', 'begin ... end;')."""
    match = _DOLLAR_TAG.match(token.text)
    assert token.kind == "dollar" and match is not None
    tag = match.group(0)
    return tag, token.text[len(tag) : -len(tag)]


@dataclass(frozen=True)
class Statement:
    """One statement of a script: its text without the trailing ``;`` and its first line."""

    text: str
    line: int

    @property
    def tokens(self) -> list[Token]:
        return tokenize(self.text)

    def words(self, count: int = 4) -> list[str]:
        """The first significant tokens, upper-cased: enough to classify the statement."""
        out: list[str] = []
        for token in self.tokens:
            if token.significant:
                out.append(token.upper)
                if len(out) == count:
                    break
        return out


def split_statements(sql: str) -> list[Statement]:
    """Statements of a script; leading and comment-only pieces are dropped, inner comments kept."""
    return list(_split(tokenize(sql)))


def _split(tokens: list[Token]) -> Iterator[Statement]:
    current: list[Token] = []
    for token in [*tokens, Token("punct", ";", tokens[-1].line if tokens else 1)]:
        if token.kind == "punct" and token.text == ";":
            first = next((t for t in current if t.significant), None)
            if first is not None:
                start = current.index(first)
                text = "".join(t.text for t in current[start:]).rstrip()
                yield Statement(text, first.line)
            current = []
        else:
            current.append(token)
