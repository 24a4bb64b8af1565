"""The Redshift compatibility gate: refuses PostgreSQL-only SQL before the local warehouse runs it.

The embedded warehouse is PostgreSQL, which accepts much that Redshift rejects; without a
gate, SQL that passes every local test could fail on the first night on Redshift. The
dialect adapter (local.dialect) covers the other direction (Redshift-only forms that
PostgreSQL lacks). Every rule here names the Redshift developer-guide page it comes from, and
its error names the construct, the line and that page.

Pure functions over text (no I/O): the local Data API executor calls :func:`check` on every
statement it runs (procedure bodies included, since they arrive inside CREATE PROCEDURE),
and :func:`transaction_control_violation` for a CALL inside a transaction block, giving it a
lookup of procedure bodies. Users who deliberately run plain PostgreSQL turn it off with
``MYSTORE_LOCAL_REDSHIFT_GATE=off`` (:func:`gate_enabled`).

Rules work on the tokens of ``deployments.sql_text`` (strings, quoted identifiers and
comments are never mistaken for code), one statement at a time; a ``$$`` body of CREATE
PROCEDURE / FUNCTION or DO is split into its own statements and checked with the same rules
plus the PL/pgSQL ones. The rules themselves (construct, reason, guide page) are listed in
redshift_rules.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from local.warehouse.dialect import translate_statement
from local.warehouse.redshift_rules import RULES, Rule
from migrations.sql_text import Token, dollar_body, split_statements, tokenize

GATE_VARIABLE = "MYSTORE_LOCAL_REDSHIFT_GATE"

_RAISE_LEVELS = frozenset({"NOTICE", "INFO", "LOG", "WARNING", "EXCEPTION"})
_ARRAY_FUNCTIONS = frozenset(
    {"STRING_AGG", "ARRAY_AGG", "UNNEST", "ARRAY_TO_STRING", "STRING_TO_ARRAY", "ARRAY_LENGTH"}
)
# The leader node-only page, plus generate_series (a set-returning function Redshift runs
# only on the leader node) and the deprecated leader-node date functions.
_LEADER_NODE_FUNCTIONS = frozenset(
    {
        "GENERATE_SERIES",
        "CURRENT_SCHEMAS",
        "HAS_DATABASE_PRIVILEGE",
        "HAS_SCHEMA_PRIVILEGE",
        "HAS_TABLE_PRIVILEGE",
        "FACTORIAL",
        "AGE",
        "NOW",
        "ISFINITE",
    }
)
_CATALOG_PREFIXES = ("PG_", "INFORMATION_SCHEMA")
_WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "CALL", "CREATE", "ALTER"})


class RedshiftCompatibilityError(ValueError):
    """SQL that PostgreSQL runs but Redshift rejects; names the construct, line and doc page."""

    def __init__(self, construct: str, line: int, reason: str, doc_url: str) -> None:
        self.construct, self.line, self.reason, self.doc_url = construct, line, reason, doc_url
        super().__init__(
            f"line {line}: {construct} is PostgreSQL-only and Redshift rejects it: {reason}."
            f" See {doc_url} (set {GATE_VARIABLE}=off to run plain PostgreSQL locally)"
        )

    def __reduce__(self) -> tuple[type[RedshiftCompatibilityError], tuple[str, int, str, str]]:
        return type(self), (self.construct, self.line, self.reason, self.doc_url)


@dataclass(frozen=True)
class Violation:
    rule: Rule
    line: int
    detail: str = ""

    def error(self) -> RedshiftCompatibilityError:
        construct = f"{self.rule.construct} ({self.detail})" if self.detail else self.rule.construct
        return RedshiftCompatibilityError(construct, self.line, self.rule.reason, self.rule.doc_url)


def gate_enabled(environ: Mapping[str, str]) -> bool:
    """Whether the gate runs: ``MYSTORE_LOCAL_REDSHIFT_GATE`` is ``on`` (default) or ``off``."""
    value = environ.get(GATE_VARIABLE, "on").strip().lower()
    if value not in ("on", "off"):
        raise ValueError(f"{GATE_VARIABLE}={value!r} is not valid; expected on or off")
    return value == "on"


def check(sql: str, *, in_transaction_block: bool = False) -> None:
    """Raise RedshiftCompatibilityError for the first PostgreSQL-only form in ``sql``."""
    found = violations(sql, in_transaction_block=in_transaction_block)
    if found:
        raise found[0].error()


def check_script(sql: str) -> None:
    """Check every statement of a script (e.g. a file of sql/), with script line numbers."""
    for statement in split_statements(sql):
        found = violations(statement.text)
        if found:
            first = found[0]
            raise Violation(first.rule, first.line + statement.line - 1, first.detail).error()


def violations(sql: str, *, in_transaction_block: bool = False) -> list[Violation]:
    """Every PostgreSQL-only form of one statement (its procedure bodies included)."""
    tokens = tokenize(sql)
    words = _words(tokens)
    found = _statement_violations(tokens, plpgsql=False)
    head = [t.upper for t in words[:2]]
    if in_transaction_block and head[:1] == ["TRUNCATE"]:
        found.append(Violation(RULES["truncate_commit"], words[0].line, "in a transaction batch"))
    defines_code = "PROCEDURE" in [t.upper for t in words[:6]] or "FUNCTION" in [
        t.upper for t in words[:6]
    ]
    if defines_code or head[:1] == ["DO"]:
        for token in tokens:
            if token.kind == "dollar":
                found.extend(_body_violations(token))
    return sorted(found, key=lambda v: v.line)


def procedure_calls(sql: str) -> list[str]:
    """The lower-case names of the procedures a statement (or body) CALLs, in order."""
    names: list[str] = []
    for tokens in _segments(tokenize(sql)):
        words = _words(tokens)
        starts = [k for k, t in enumerate(words) if t.upper == "CALL" and t.kind == "word"]
        for start in starts[:1]:
            name = []
            for token in words[start + 1 :]:
                if token.text == "(":
                    break
                name.append(token.text.lower().strip('"'))
            names.append("".join(name))
    return names


def transaction_control_violation(
    sql: str, body_of: Callable[[str], str | None], line: int = 1
) -> Violation | None:
    """For a CALL run inside a transaction block: does the procedure (or one it calls) end
    the transaction? ``body_of`` returns a procedure's body by name, or None if unknown."""
    seen: set[str] = set()
    pending = procedure_calls(sql)
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        body = body_of(name)
        if body is None:
            continue
        for tokens in _segments(tokenize(body)):
            words = [t.upper for t in _words(tokens)]
            if words[:1] in (["COMMIT"], ["ROLLBACK"], ["TRUNCATE"]):
                return Violation(RULES["transaction_control"], line, f"{words[0]} in {name}")
        pending.extend(procedure_calls(body))
    return None


def _words(tokens: list[Token]) -> list[Token]:
    return [t for t in tokens if t.significant]


def _segments(tokens: list[Token]) -> list[list[Token]]:
    """Split tokens on ``;`` (bodies are single tokens, so their semicolons do not count)."""
    segments: list[list[Token]] = [[]]
    for token in tokens:
        if token.kind == "punct" and token.text == ";":
            segments.append([])
        else:
            segments[-1].append(token)
    return [s for s in segments if _words(s)]


def _body_violations(token: Token) -> list[Violation]:
    _, body = dollar_body(token)
    offset = token.line - 1
    found: list[Violation] = []
    segments = _segments(tokenize(body))
    statement_heads = [_plpgsql_head(_words(s)) for s in segments]
    has_other_writes = any(h in _WRITES for h in statement_heads)
    for tokens, head in zip(segments, statement_heads, strict=True):
        for v in _statement_violations(tokens, plpgsql=True):
            found.append(Violation(v.rule, v.line + offset, v.detail))
        if head == "TRUNCATE" and has_other_writes:
            line = next(t.line for t in _words(tokens) if t.upper == "TRUNCATE")
            found.append(Violation(RULES["truncate_commit"], line + offset, "in a procedure"))
    return found


def _plpgsql_head(words: list[Token]) -> str:
    """The SQL command a body segment runs, past block keywords (BEGIN, THEN, LOOP, ...)."""
    skip = {"DECLARE", "BEGIN", "THEN", "ELSE", "LOOP", "END", "IF", "EXCEPTION", "WHEN", "OTHERS"}
    for token in words:
        if token.kind == "word" and token.upper not in skip:
            return token.upper
    return ""


def _statement_violations(tokens: list[Token], *, plpgsql: bool) -> list[Violation]:
    words = _words(tokens)
    up = [t.upper if t.kind == "word" else t.text for t in words]
    found: list[Violation] = []

    def at(k: int, rule: str, detail: str = "") -> None:
        found.append(Violation(RULES[rule], words[k].line, detail))

    user_tables = _touches_user_tables(words, up)
    for k, token in enumerate(words):
        word = up[k]
        nxt = up[k + 1] if k + 1 < len(up) else ""
        after_dot = k > 0 and up[k - 1] == "."
        if token.kind == "punct" and word == "[" and nxt == "]" and k > 0:
            at(k, "array_type", f"{words[k - 1].text}[]")
        if token.kind != "word" or after_dot:
            continue
        if word == "ON" and nxt == "CONFLICT":
            at(k, "on_conflict")
        elif word == "RETURNING":
            at(k, "returning")
        elif word == "FILTER" and nxt == "(" and up[k + 2 : k + 3] == ["WHERE"]:
            at(k, "aggregate_filter")
        elif word == "DISTINCT" and nxt == "ON":
            at(k, "distinct_on")
        elif word in _ARRAY_FUNCTIONS and nxt == "(":
            at(k, "array_function", token.text)
        elif word == "ARRAY" and (nxt == "[" or (nxt == "(" and up[k + 2 : k + 3] == ["SELECT"])):
            at(k, "array_type", f"ARRAY{nxt}")
        elif word in _LEADER_NODE_FUNCTIONS and nxt == "(" and user_tables:
            at(k, "leader_node_function", token.text)
        elif word == "CREATE" and (
            nxt == "INDEX" or (nxt == "UNIQUE" and up[k + 2 : k + 3] == ["INDEX"])
        ):
            at(k, "create_index")
        elif plpgsql and word == "RAISE":
            found.extend(_raise_violations(words, up, k))
        elif (
            plpgsql
            and word == "EXCEPTION"
            and (k == 0 or up[k - 1] != "RAISE")
            and nxt == "WHEN"
            and up[k + 2 : k + 4] != ["OTHERS", "THEN"]
        ):
            at(k, "exception_condition", f"WHEN {words[k + 2].text}" if k + 2 < len(up) else "")
    return found


def _raise_violations(words: list[Token], up: list[str], k: int) -> list[Violation]:
    """RAISE level 'format' [, variable ...]; a bare RAISE (re-raise) is left alone."""
    rest = words[k + 1 :]
    if not rest:
        return []
    line = words[k].line
    if up[k + 1] not in _RAISE_LEVELS or len(rest) < 2 or rest[1].kind != "string":
        return [Violation(RULES["raise_form"], line, " ".join(t.text for t in rest[:3]))]
    args = rest[2:]
    if args and args[0].text != ",":
        return [Violation(RULES["raise_form"], line, args[0].text)]
    found: list[Violation] = []
    depth, current = 0, list[Token]()
    for token in [*args, Token("punct", ",", line)]:
        depth += {"(": 1, ")": -1}.get(token.text, 0)
        if token.text == "," and depth == 0:
            if current and not _is_variable(current):
                text = "".join(t.text for t in current)
                found.append(Violation(RULES["raise_argument"], current[0].line, text))
            current = []
        elif token.text != "," or depth > 0:
            current.append(token)
    return found


def _is_variable(tokens: list[Token]) -> bool:
    """A name, or record.field: what Redshift calls a simple variable."""
    if len(tokens) == 1:
        return tokens[0].kind in ("word", "ident_quoted") and tokens[0].upper not in (
            "NULL",
            "TRUE",
            "FALSE",
        )
    return (
        len(tokens) == 3
        and tokens[1].text == "."
        and all(t.kind in ("word", "ident_quoted") for t in (tokens[0], tokens[2]))
    )


def _touches_user_tables(words: list[Token], up: list[str]) -> bool:
    """Whether a statement writes, or reads a relation other than the catalog and functions."""
    if any(w in ("INSERT", "UPDATE", "DELETE", "MERGE") for w in up):
        return True
    for k, word in enumerate(up):
        if word in ("FROM", "JOIN") and k + 1 < len(up) and words[k + 1].kind == "word":
            name = up[k + 1]
            call = k + 2 < len(up) and up[k + 2] == "("
            if not call and not name.startswith(_CATALOG_PREFIXES):
                return True
    return False


def local_statements(
    sql: str,
    *,
    gate: bool = True,
    in_transaction_block: bool = False,
    body_of: Callable[[str], str | None] | None = None,
) -> list[str]:
    """What the local warehouse runs for one Redshift statement a client sent: the gate's
    checks (unless ``gate`` is off), then the dialect adapter's translation."""
    if gate:
        check(sql, in_transaction_block=in_transaction_block)
        if in_transaction_block and body_of is not None:
            found = transaction_control_violation(sql, body_of)
            if found is not None:
                raise found.error()
    return translate_statement(sql)


def preflight(sql: str) -> list[str]:
    """The migration runner's pre-flight check on the embedded default: what the local Data
    API will do with ``sql`` (gate as configured by the environment, then translation), so
    a migration with a construct the local warehouse refuses fails before writing."""
    return local_statements(sql, gate=gate_enabled(os.environ))
