"""Apply sql/ to a warehouse through the Redshift Data API: the runner behind ``python -m migrations``.

One code path deploys to Redshift and to any other warehouse behind a Data API endpoint:
the runner only talks to the Data API and always sends the Redshift SQL of sql/ unchanged.
A warehouse that is not Redshift translates it itself (the embedded default's local Data
API gates and translates every statement it runs), so this package knows nothing of it.
``check`` (optional) is a pre-flight check of every statement, run before anything is
written: the embedded default passes its compatibility gate and dialect adapter, so a
construct it cannot run fails the whole migration up front. Planning rules live in
``migrations.planning``; this module does the calls and keeps the history table.

Atomicity: a file is applied as one BatchExecuteStatement (one transaction) together with
the update that marks its history row successful, so a file is either applied and
recorded or neither. Files that cannot run in a transaction (TRUNCATE, CALL, external
objects...) run statement by statement; if one of those fails part-way, its history row
stays ``success = false`` and the next run refuses until ``--repair``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from migrations.data_api import execute, fetch_rows
from migrations.planning import (
    MAX_BATCH_STATEMENTS,
    AppliedMigration,
    MigrationError,
    Plan,
    Step,
    plan,
    read_directory,
    statements_of,
    transaction_blocker,
    validate_parameters,
)
from tasks.redshift_data import RedshiftTarget, StatementError

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
DEFAULT_HISTORY_TABLE = "public.schema_migration_history"
Dialect = Literal["redshift", "postgres"]
Check = Callable[[str], object]
"""A pre-flight check of one Redshift statement: raises (with a message) to refuse it."""
_TABLE_NAME = re.compile(r"([a-z_][a-z0-9_]{0,126})\.([a-z_][a-z0-9_]{0,126})")


@dataclass
class Report:
    plan: Plan
    applied: list[str] = field(default_factory=list)
    dry_run: bool = False


def history_table_sql(name: str) -> str:
    """The quoted schema.table of the history table, or MigrationError naming the rule."""
    match = _TABLE_NAME.fullmatch(name)
    if match is None:
        raise MigrationError(
            f"history table {name!r} is not valid; expected schema.table in lower-case letters,"
            " digits and underscores"
        )
    return f'"{match.group(1)}"."{match.group(2)}"'


def detect_dialect(version_text: str) -> Dialect:
    """Redshift reports 'PostgreSQL 8.0.2 ... Redshift 1.0.x'; anything else is PostgreSQL."""
    return "redshift" if "redshift" in version_text.lower() else "postgres"


def warehouse_version(client: RedshiftDataAPIServiceClient, target: RedshiftTarget) -> str:
    """What the warehouse says it is (``select version()``), to know what the migration runs on."""
    statement_id = execute(client, target, "select version() as version", name="mystore-migrate")
    return str(fetch_rows(client, statement_id)[0]["version"])


class Runner:
    """The Data API side of a migration run; every statement goes through ``execute``."""

    def __init__(
        self,
        client: RedshiftDataAPIServiceClient,
        target: RedshiftTarget,
        *,
        history_table: str = DEFAULT_HISTORY_TABLE,
        log: Callable[[str], None] = print,
    ) -> None:
        self.client = client
        self.target = target
        self.table = history_table_sql(history_table)
        self.table_name = history_table
        self.log = log

    def execute(
        self,
        sql: str | list[str],
        parameters: Mapping[str, object] | None = None,
        name: str = "mystore-migrate",
    ) -> str:
        """Run and wait (``migrations.data_api.execute``: a fresh ClientToken per call)."""
        return execute(self.client, self.target, sql, parameters, name=name)

    def rows(
        self, sql: str, parameters: Mapping[str, object] | None = None
    ) -> list[dict[str, Any]]:
        return fetch_rows(self.client, self.execute(sql, parameters))

    def history_exists(self) -> bool:
        schema, table = self.table_name.split(".")
        found = self.rows(
            "select count(*) as n from information_schema.tables"
            " where table_schema = :schema and table_name = :table",
            {"schema": schema, "table": table},
        )
        return int(found[0]["n"]) > 0

    def ensure_history(self) -> None:
        schema = self.table.split(".")[0]
        ddl = (
            f"create table if not exists {self.table} (\n"
            "    installed_rank integer not null,\n"
            "    script varchar(256) not null,\n"
            "    kind char(1) not null,\n"
            "    checksum char(64) not null,\n"
            "    transactional boolean not null,\n"
            "    started_at timestamp not null,\n"
            "    applied_at timestamp,\n"
            "    success boolean not null\n"
            ")"
        )
        self.execute([f"create schema if not exists {schema}", ddl])

    def applied(self) -> list[AppliedMigration]:
        rows = self.rows(
            f"select installed_rank, script, kind, checksum, success from {self.table}"  # noqa: S608
            " order by installed_rank"
        )
        return [
            AppliedMigration(
                int(r["installed_rank"]), r["script"], r["kind"], r["checksum"], bool(r["success"])
            )
            for r in rows
        ]

    def apply(self, step: Step, rank: int, parameters: Mapping[str, str]) -> None:
        file = step.file
        statements = statements_of(file, parameters)
        blocker = transaction_blocker(statements, file.text)
        sqls = [s.text for s in statements]
        if blocker is None and len(sqls) > MAX_BATCH_STATEMENTS:
            raise MigrationError(
                f"{file.name} has {len(sqls)} statements; a transaction batch holds at most"
                f" {MAX_BATCH_STATEMENTS}: split the file (one object per file)"
            )
        name = f"mystore-migrate:{file.name}"[:500]
        self.execute(
            f"insert into {self.table} (installed_rank, script, kind, checksum,"  # noqa: S608
            " transactional, started_at, success) values (cast(:rank as integer), :script,"
            " :kind, :checksum, cast(:transactional as boolean), getdate(), false)",
            {
                "rank": rank,
                "script": file.name,
                "kind": file.kind,
                "checksum": file.checksum,
                "transactional": blocker is None,
            },
            name=name,
        )
        mark_done = (
            f"update {self.table} set success = true, applied_at = getdate() where success = false"  # noqa: S608
        )
        how = "in one transaction" if blocker is None else f"statement by statement ({blocker})"
        self.log(f"applying {file.name} ({step.reason}, {len(sqls)} statements, {how})")
        done = 0
        try:
            if blocker is None:
                self.execute([*sqls, mark_done], name=name)
                return
            for sql in sqls:
                self.execute(sql, name=name)
                done += 1
            self.execute(mark_done, name=name)
        except StatementError as exc:
            if blocker is None:  # the batch rolled back: nothing of the file was applied
                self.execute(f"delete from {self.table} where success = false")  # noqa: S608
                raise MigrationError(f"{file.name} failed and was rolled back: {exc}") from exc
            raise MigrationError(
                f"{file.name} failed at statement {done + 1} of {len(sqls)}; the {done} before it"
                f" stay applied (the file cannot run in one transaction: {blocker}) and its"
                " history row stays unfinished. Fix the warehouse by hand, then rerun with"
                f" --repair. Cause: {exc}"
            ) from exc


def migrate(
    client: RedshiftDataAPIServiceClient,
    target: RedshiftTarget,
    sql_dir: Path = SQL_DIR,
    *,
    parameters: Mapping[str, str] | None = None,
    check: Check | None = None,
    dry_run: bool = False,
    repair: bool = False,
    history_table: str = DEFAULT_HISTORY_TABLE,
    log: Callable[[str], None] = print,
) -> Report:
    """Apply what is pending in ``sql_dir``; idempotent, and a dry run writes nothing.

    ``check`` is run on every pending statement before anything is written (a dry run
    too): a warehouse that translates Redshift SQL itself passes the check of what it can
    run, so a refused construct fails the whole run up front, naming it.
    """
    values = validate_parameters(parameters or {})
    files = read_directory(sql_dir)
    runner = Runner(client, target, history_table=history_table, log=log)
    exists = runner.history_exists()
    applied = runner.applied() if exists else []
    if repair and not dry_run and any(not a.success for a in applied):
        log("repair: clearing unfinished history rows")
        runner.execute(f"delete from {runner.table} where success = false")  # noqa: S608
        applied = [a for a in applied if a.success]
    the_plan = plan(files, applied, repair=repair)
    report = Report(the_plan, dry_run=dry_run)
    for step in the_plan.steps:  # render and check everything first: fail before writing
        for statement in statements_of(step.file, values):
            if check is not None:
                check(statement.text)
    if dry_run:
        return report
    if not exists:
        runner.ensure_history()
    for offset, step in enumerate(the_plan.steps):
        runner.apply(step, the_plan.next_rank + offset, values)
        report.applied.append(step.file.name)
    return report


def format_report(report: Report) -> str:
    verb = "would apply" if report.dry_run else "applied"
    lines: list[str] = []
    for step in report.plan.steps:
        lines.append(f"  {verb}: {step.file.name} ({step.reason})")
    lines.append(
        f"{len(report.plan.steps)} to apply, {len(report.plan.up_to_date)} up to date"
        + (" (dry run: nothing was changed)" if report.dry_run else "")
    )
    return "\n".join(lines)
