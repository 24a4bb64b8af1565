"""Migration planning: which files of sql/ to apply, in which order, in what transaction.

Pure functions over file texts and the history table's rows, so every rule (an edited
versioned file is refused, a changed repeatable is re-applied, parameters are validated)
is tested with literal inputs; ``migrations.runner`` only does the Data API calls.

File names (the scheme is documented in docs/warehouse.md):

* ``V<version>__<description>.sql`` - versioned, applied once, in version order
  (``V004__stg_mystore.dw_incremental_dates.sql``); never edited once applied.
* ``R__<description>.sql`` - repeatable (views, functions, procedures), applied after
  the versioned files, in name order, again whenever its checksum changes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from migrations.signatures import Declaration, SignatureError, declarations, parse_lines, to_drop
from migrations.sql_text import Statement, split_statements, tokenize

Kind = Literal["V", "R"]

_VERSIONED = re.compile(r"V(?P<version>\d{3,9})__(?P<description>[a-z0-9_]+(\.[a-z0-9_]+)*)\.sql")
_REPEATABLE = re.compile(r"R__(?P<description>[a-z0-9_]+(\.[a-z0-9_]+)*)\.sql")
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
NO_TRANSACTION_DIRECTIVE = "-- migrate:no-transaction"
# A BatchExecuteStatement holds at most 40 statements; one is the history update.
MAX_BATCH_STATEMENTS = 39

# Migration parameters: the only values that are substituted into SQL text, because DDL
# such as CREATE EXTERNAL SCHEMA takes no bind parameters. Each must match its pattern in
# full, and placeholders may only appear inside string literals.
PARAMETER_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "glue_database": (
        re.compile(r"[a-z0-9_]{1,255}"),
        "a Glue database name: 1-255 lower-case letters, digits and underscores",
    ),
    "iam_role_arn": (
        re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}"),
        "an IAM role ARN: arn:aws:iam::<12-digit account>:role/<name>",
    ),
}


class MigrationError(ValueError):
    """The migrations cannot be planned or applied as they are; the message says why."""


@dataclass(frozen=True)
class MigrationFile:
    name: str
    kind: Kind
    version: int | None
    text: str

    @property
    def checksum(self) -> str:
        return checksum(self.text)

    @property
    def sort_key(self) -> tuple[int, int, str]:
        return (0, self.version or 0, "") if self.kind == "V" else (1, 0, self.name)


@dataclass(frozen=True)
class AppliedMigration:
    """One row of the history table."""

    installed_rank: int
    script: str
    kind: Kind
    checksum: str
    success: bool
    declares: str | None = None
    """``migrations.signatures`` lines of what the file created; None before they were kept."""


@dataclass(frozen=True)
class Step:
    file: MigrationFile
    reason: Literal["new", "changed"]
    drops: tuple[Declaration, ...] = ()
    """Objects the previously applied text declared and this one does not: dropped first."""
    note: str = ""


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    next_rank: int = 1
    undeclared: list[MigrationFile] = field(default_factory=list)
    """Up-to-date repeatables whose history row lacks declarations (applied before they were
    kept): the applied text is the file's text (same checksum), so the runner records them."""


def checksum(text: str) -> str:
    """SHA-256 of the file with line endings normalised, so a Windows checkout matches."""
    return hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8")).hexdigest()


def parse_name(name: str, text: str = "") -> MigrationFile:
    """A migration file from its name, or MigrationError naming the allowed patterns."""
    if match := _VERSIONED.fullmatch(name):
        return MigrationFile(name, "V", int(match.group("version")), text)
    if _REPEATABLE.fullmatch(name):
        return MigrationFile(name, "R", None, text)
    raise MigrationError(
        f"{name!r} is not a migration file name; expected V<3-9 digits>__<description>.sql"
        " (versioned) or R__<description>.sql (repeatable), description in lower-case"
        " letters, digits, '_' and '.'"
    )


def read_directory(sql_dir: Path) -> list[MigrationFile]:
    """Every migration of a directory, in apply order; other files are an error."""
    if not sql_dir.is_dir():
        raise MigrationError(f"migration directory {str(sql_dir)!r} does not exist")
    files = [
        parse_name(path.name, path.read_text(encoding="utf-8"))
        for path in sorted(sql_dir.iterdir())
        if path.is_file() and not path.name.startswith(".")
    ]
    return order(files)


def order(files: Iterable[MigrationFile]) -> list[MigrationFile]:
    """Versioned by version, then repeatables by name; two files of one version are refused."""
    ordered = sorted(files, key=lambda f: f.sort_key)
    versions: dict[int, str] = {}
    for f in ordered:
        if f.version is not None:
            if f.version in versions:
                raise MigrationError(
                    f"{versions[f.version]} and {f.name} have the same version {f.version}"
                )
            versions[f.version] = f.name
    return ordered


def validate_parameters(values: Mapping[str, str]) -> dict[str, str]:
    """Migration parameters checked against their rules; unknown names are refused."""
    for name, value in values.items():
        if name not in PARAMETER_RULES:
            known = ", ".join(sorted(PARAMETER_RULES))
            raise MigrationError(f"unknown migration parameter {name!r}; known: {known}")
        pattern, allowed = PARAMETER_RULES[name]
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise MigrationError(f"migration parameter {name} = {value!r} is not {allowed}")
    return dict(values)


def render(file: MigrationFile, values: Mapping[str, str]) -> str:
    """The file's text with its ``${name}`` placeholders replaced by validated values."""
    validate_parameters(values)
    tokens = tokenize(file.text)
    code = "".join(
        re.sub(r"[^\n]", " ", t.text) if t.kind in ("string", "comment") else t.text for t in tokens
    )
    if (at := code.find("${")) >= 0:
        raise MigrationError(
            f"{file.name} line {code.count(chr(10), 0, at) + 1}: placeholders may only appear"
            " inside string literals ('${name}'), where a validated value cannot change the SQL"
        )
    rendered: list[str] = []
    for token in tokens:
        if token.kind != "string":
            rendered.append(token.text)
            continue
        missing = [n for n in _PLACEHOLDER.findall(token.text) if n not in values]
        if missing:
            options = ", ".join(f"--{n.replace('_', '-')}" for n in missing)
            raise MigrationError(f"{file.name} needs migration parameter(s) {options}")
        rendered.append(_PLACEHOLDER.sub(lambda m: values[m.group(1)], token.text))
    return "".join(rendered)


def transaction_blocker(statements: Sequence[Statement], text: str = "") -> str | None:
    """Why a file cannot run as one transaction batch with its history update, or None.

    Redshift commits implicitly on TRUNCATE, refuses some statements inside a transaction
    block, and a CALLed procedure may COMMIT: such files run statement by statement.
    """
    if NO_TRANSACTION_DIRECTIVE in text:
        return f"the file says {NO_TRANSACTION_DIRECTIVE!r}"
    for statement in statements:
        words = statement.words(4)
        head = " ".join(words[:2])
        if words[:1] in (["TRUNCATE"], ["VACUUM"], ["CALL"]):
            return f"line {statement.line}: {words[0]} commits or cannot run in a transaction"
        if head in ("CREATE DATABASE", "DROP DATABASE", "ALTER DATABASE", "CREATE LIBRARY"):
            return f"line {statement.line}: {head} cannot run in a transaction block"
        if words[1:2] == ["EXTERNAL"] and words[0] in ("CREATE", "DROP", "ALTER"):
            return f"line {statement.line}: {head} {words[2]} cannot run in a transaction block"
        if words[:2] == ["ALTER", "TABLE"] and "APPEND" in statement.text.upper().split():
            return f"line {statement.line}: ALTER TABLE APPEND cannot run in a transaction block"
    return None


def statements_of(file: MigrationFile, values: Mapping[str, str]) -> list[Statement]:
    statements = split_statements(render(file, values))
    if not statements:
        raise MigrationError(f"{file.name} contains no SQL statement")
    return statements


def plan(
    files: Sequence[MigrationFile], applied: Sequence[AppliedMigration], *, repair: bool = False
) -> Plan:
    """What to apply now, or MigrationError when the history and the files disagree."""
    unfinished = [a for a in applied if not a.success]
    if unfinished and not repair:
        names = ", ".join(a.script for a in unfinished)
        raise MigrationError(
            f"an earlier run left {names} unfinished (history row with success = false): it is"
            " still running in another runner, or it stopped part-way. Check the warehouse"
            " (a non-transactional file may be partly applied), then run again with --repair"
            " to clear the row and retry"
        )
    latest: dict[str, AppliedMigration] = {}
    for done in sorted((a for a in applied if a.success), key=lambda a: a.installed_rank):
        latest[done.script] = done
    on_disk = {f.name for f in files}
    gone = sorted(n for n, a in latest.items() if a.kind == "V" and n not in on_disk)
    if gone:
        raise MigrationError(
            f"applied versioned migration(s) {', '.join(gone)} are missing from the directory;"
            " is this the right sql directory?"
        )
    highest = max(
        (parse_name(n).version or 0 for n, a in latest.items() if a.kind == "V"), default=0
    )
    result = Plan(next_rank=max((a.installed_rank for a in applied), default=0) + 1)
    for f in order(files):
        row = latest.get(f.name)
        if row is None:
            if f.kind == "V" and (f.version or 0) < highest:
                raise MigrationError(
                    f"{f.name} is new but version {highest} is already applied; versioned files"
                    " apply in order, so give it a version above the highest applied one"
                )
            result.steps.append(Step(f, "new"))
        elif row.checksum == f.checksum:
            result.up_to_date.append(f.name)
            if f.kind == "R" and row.declares is None:
                result.undeclared.append(f)
        elif f.kind == "V":
            raise MigrationError(
                f"{f.name} was applied with checksum {row.checksum[:12]}... but the file now has"
                f" {f.checksum[:12]}...: an applied versioned file must not change; put the"
                " change in a new versioned file"
            )
        else:
            result.steps.append(changed_repeatable(f, row))
    return result


def declarations_of(file: MigrationFile) -> list[Declaration]:
    """What a file creates (``migrations.signatures``), or MigrationError naming the file."""
    try:
        return declarations(file.text)
    except (SignatureError, ValueError) as exc:
        raise MigrationError(f"{file.name}: {exc}") from exc


def changed_repeatable(file: MigrationFile, applied: AppliedMigration) -> Step:
    """The step of an edited repeatable: what its previous text declared and this one does not
    (another procedure signature, another view definition, a renamed object) is dropped first,
    because Redshift's CREATE OR REPLACE would add an overload or refuse the new columns."""
    if applied.declares is None:
        return Step(
            file,
            "changed",
            note="its previous declarations are unknown (applied before they were recorded):"
            " nothing is dropped first",
        )
    try:
        previous = parse_lines(applied.declares)
    except SignatureError as exc:
        raise MigrationError(f"history row {applied.installed_rank} of {file.name}: {exc}") from exc
    return Step(file, "changed", tuple(to_drop(previous, declarations_of(file))))
