"""Data API ``:name`` parameters bound as values, never spliced into SQL text.

The SQL is scanned once: ``:name`` outside string literals, quoted identifiers, comments,
dollar-quoted bodies and ``::`` casts becomes a psycopg ``%(name)s`` placeholder, and every
literal ``%`` is doubled so psycopg leaves it alone. psycopg's ClientCursor then renders each
value as a properly quoted literal of type ``unknown``, which PostgreSQL casts to the type
the context needs, as Redshift does with the Data API's string values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from local.redshift_data.exceptions import invalid

_NAME_RE = re.compile(r"[0-9A-Za-z_]+")
_DOLLAR_TAG_RE = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


@dataclass(frozen=True)
class BoundSql:
    """SQL in psycopg's pyformat style, and the names it references (in order, unique)."""

    sql: str
    names: tuple[str, ...]


def _skip_quoted(sql: str, start: int, quote: str) -> int:
    """Index just past the literal or identifier opened at ``start`` (doubled quotes escape)."""
    i = start + 1
    while i < len(sql):
        if sql[i] == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return len(sql)


def _skip_block_comment(sql: str, start: int) -> int:
    depth, i = 0, start
    while i < len(sql):
        if sql.startswith("/*", i):
            depth += 1
            i += 2
        elif sql.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(sql)


def to_pyformat(sql: str) -> BoundSql:
    """Rewrite ``:name`` placeholders to ``%(name)s`` and escape ``%``; see the module doc."""
    out: list[str] = []
    names: list[str] = []
    i = 0
    n = len(sql)
    while i < n:
        ch = sql[i]
        if ch in ("'", '"'):
            end = _skip_quoted(sql, i, ch)
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif sql.startswith("/*", i):
            end = _skip_block_comment(sql, i)
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif ch == "$" and (match := _DOLLAR_TAG_RE.match(sql, i)) and not _in_word(sql, i):
            tag = match.group(0)
            close = sql.find(tag, match.end())
            end = n if close < 0 else close + len(tag)
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif sql.startswith("::", i):
            out.append("::")
            i += 2
        elif ch == ":" and (match := _NAME_RE.match(sql, i + 1)) and not _in_word(sql, i):
            name = match.group(0)
            out.append(f"%({name})s")
            if name not in names:
                names.append(name)
            i = match.end()
        elif ch == "%":
            out.append("%%")
            i += 1
        else:
            out.append(ch)
            i += 1
    return BoundSql(sql="".join(out), names=tuple(names))


def _in_word(sql: str, i: int) -> bool:
    """A ``$`` or ``:`` glued to an identifier (``a$1``, ``arr[1:2]`` is not) is not special."""
    return i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")


def bind_parameters(
    sqls: list[str], parameters: list[dict[str, str]] | None
) -> tuple[list[str], dict[str, str] | None]:
    """The SQL texts to run and the values to bind; a missing or unused parameter is an error.

    Without parameters the SQL runs as written (no ``%`` escaping, no placeholder scan),
    exactly as the real API runs a statement that has none.
    """
    if not parameters:
        return sqls, None
    values = {param["name"]: param["value"] for param in parameters}
    bound = [to_pyformat(sql) for sql in sqls]
    used = {name for item in bound for name in item.names}
    missing = [name for item in bound for name in item.names if name not in values]
    if missing:
        raise invalid(
            f"Parameter :{missing[0]} is used in the SQL but has no value in Parameters "
            f"(provided: {', '.join(sorted(values)) or 'none'}).",
        )
    unused = sorted(set(values) - used)
    if unused:
        raise invalid(
            f"Parameter {unused[0]!r} is provided in Parameters but not used in the SQL "
            f"(placeholders in the SQL: {', '.join(':' + n for n in sorted(used)) or 'none'}).",
        )
    return [item.sql for item in bound], values
