"""Apply sql/ to the warehouse through the Redshift Data API: ``python -m flows.migrate``.

One code path deploys to Redshift and to the embedded warehouse: the runner only talks to
the Data API and always sends the Redshift SQL of sql/: the local Data API translates it
(and refuses what Redshift would reject). It asks the database what it is (``select
version()``) and, on PostgreSQL, a dry run checks each statement with the local dialect
adapter before anything is written. Planning rules live in
``deployments.migrations``; this module does the calls and keeps the history table.

Atomicity: a file is applied as one BatchExecuteStatement (one transaction) together with
the update that marks its history row successful, so a file is either applied and
recorded or neither. Files that cannot run in a transaction (TRUNCATE, CALL, external
objects...) run statement by statement; if one of those fails part-way, its history row
stays ``success = false`` and the next run refuses until ``--repair``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from deployments.migrations import (
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
from local.dialect import translate_statement
from tasks.redshift_data import RedshiftTarget, StatementFailedError, execute_and_wait, get_rows

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
DEFAULT_HISTORY_TABLE = "public.schema_migration_history"
Dialect = Literal["redshift", "postgres"]
_TABLE_NAME = re.compile(r"([a-z_][a-z0-9_]{0,126})\.([a-z_][a-z0-9_]{0,126})")


@dataclass
class Report:
    dialect: Dialect
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


def for_dialect(sql: str, dialect: Dialect) -> list[str]:
    return [sql] if dialect == "redshift" else translate_statement(sql)


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
        self.dialect: Dialect = "redshift"

    def execute(
        self,
        sql: str | list[str],
        parameters: Mapping[str, object] | None = None,
        name: str = "mystore-migrate",
    ) -> str:
        """Run and wait. Each call gets a fresh ClientToken (botocore's own retries reuse it,
        so a dropped connection never runs a statement twice); a deterministic token would
        make a retried, unchanged migration replay its earlier FAILED statement for hours.
        """
        result = execute_and_wait(
            self.client, self.target, sql, parameters=parameters, statement_name=name
        )
        return result.statement_id

    def rows(self, sql: str, parameters: Mapping[str, object] | None = None) -> list[dict]:
        return get_rows(self.client, self.execute(sql, parameters))

    def local(self, sql: str) -> list[str]:
        """Redshift SQL as is: the local Data API gates and translates what it runs itself."""
        return [sql]

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
        self.execute([*self.local(f"create schema if not exists {schema}"), *self.local(ddl)])

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
        sqls = [out for s in statements for out in self.local(s.text)]
        if blocker is None and len(sqls) > MAX_BATCH_STATEMENTS:
            raise MigrationError(
                f"{file.name} has {len(sqls)} statements; a transaction batch holds at most"
                f" {MAX_BATCH_STATEMENTS}: split the file (one object per file)"
            )
        name = f"mystore-migrate:{file.name}"[:500]
        self.execute(
            self.local(
                f"insert into {self.table} (installed_rank, script, kind, checksum,"  # noqa: S608
                " transactional, started_at, success) values (cast(:rank as integer), :script,"
                " :kind, :checksum, cast(:transactional as boolean), getdate(), false)"
            )[0],
            {
                "rank": rank,
                "script": file.name,
                "kind": file.kind,
                "checksum": file.checksum,
                "transactional": blocker is None,
            },
            name=name,
        )
        mark_done = self.local(
            f"update {self.table} set success = true, applied_at = getdate() where success = false"  # noqa: S608
        )[0]
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
        except StatementFailedError as exc:
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
    dialect: Dialect | Literal["auto"] = "auto",
    dry_run: bool = False,
    repair: bool = False,
    history_table: str = DEFAULT_HISTORY_TABLE,
    log: Callable[[str], None] = print,
) -> Report:
    """Apply what is pending in ``sql_dir``; idempotent, and a dry run writes nothing."""
    values = validate_parameters(parameters or {})
    files = read_directory(sql_dir)
    runner = Runner(client, target, history_table=history_table, log=log)
    if dialect == "auto":
        version = runner.rows("select version() as version")[0]["version"]
        runner.dialect = detect_dialect(str(version))
    else:
        runner.dialect = dialect
    exists = runner.history_exists()
    applied = runner.applied() if exists else []
    if repair and not dry_run and any(not a.success for a in applied):
        log("repair: clearing unfinished history rows")
        runner.execute(f"delete from {runner.table} where success = false")  # noqa: S608
        applied = [a for a in applied if a.success]
    the_plan = plan(files, applied, repair=repair)
    report = Report(runner.dialect, the_plan, dry_run=dry_run)
    for step in the_plan.steps:  # render and translate everything first: fail before writing
        for statement in statements_of(step.file, values):
            for_dialect(statement.text, runner.dialect)
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
    lines = [f"dialect: {report.dialect}"]
    for step in report.plan.steps:
        lines.append(f"  {verb}: {step.file.name} ({step.reason})")
    lines.append(
        f"{len(report.plan.steps)} to apply, {len(report.plan.up_to_date)} up to date"
        + (" (dry run: nothing was changed)" if report.dry_run else "")
    )
    return "\n".join(lines)


# The external schema clauses are dropped locally, so these only have to be valid.
LOCAL_PARAMETERS = {
    "glue_database": "mystore_clean",
    "iam_role_arn": "arn:aws:iam::000000000000:role/mystore-local-unused",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flows.migrate",
        description=(
            "Apply sql/ to the warehouse through the Redshift Data API. Versioned files"
            " (V<n>__*.sql) apply once, in order; repeatable files (R__*.sql: views,"
            " procedures) re-apply when they change; each file with its history row in one"
            " transaction where Redshift allows it. The target comes from MYSTORE_*"
            " settings: by default the embedded local warehouse (started for the run);"
            " MYSTORE_TARGET=aws with MYSTORE_CLUSTER_IDENTIFIER or MYSTORE_WORKGROUP_NAME"
            " for Redshift."
        ),
        epilog="Example: python -m flows.migrate --dry-run",
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be applied")
    parser.add_argument(
        "--repair",
        action="store_true",
        help="clear history rows an interrupted run left unfinished, then migrate",
    )
    parser.add_argument("--sql-dir", type=Path, default=SQL_DIR, help="default: %(default)s")
    parser.add_argument(
        "--dialect",
        choices=["auto", "redshift", "postgres"],
        default="auto",
        help="auto asks the database (select version()); postgres uses the dialect adapter",
    )
    parser.add_argument(
        "--glue-database",
        default=os.environ.get("MYSTORE_GLUE_DATABASE"),
        help="Glue Data Catalog database behind ext_clean_mystore (MYSTORE_GLUE_DATABASE)",
    )
    parser.add_argument(
        "--iam-role-arn",
        default=os.environ.get("MYSTORE_IAM_ROLE_ARN"),
        help="IAM role Spectrum assumes for ext_clean_mystore (MYSTORE_IAM_ROLE_ARN)",
    )
    parser.add_argument(
        "--history-table", default=DEFAULT_HISTORY_TABLE, help="default: %(default)s"
    )
    parser.add_argument(
        "--data-dir",
        help="local target only: where the embedded warehouse lives (MYSTORE_LOCAL_DATA_DIR)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from flows.cli import settings_from_args
    from flows.runtime import Runtime

    settings = settings_from_args(argparse.Namespace(data_dir=args.data_dir))
    given = {"glue_database": args.glue_database, "iam_role_arn": args.iam_role_arn}
    parameters = {k: v for k, v in given.items() if v}
    stack = None
    try:
        if settings.target == "local":
            from local.stack import LocalStack

            parameters = {**LOCAL_PARAMETERS, **parameters}
            stack = LocalStack.start(settings.local_data_dir, with_glue=False)
            os.environ.update(stack.client_env())
        runtime = Runtime.from_settings(settings)
        report = migrate(
            runtime.redshift_data,
            runtime.target,
            args.sql_dir,
            parameters=parameters,
            dialect=args.dialect,
            dry_run=args.dry_run,
            repair=args.repair,
            history_table=args.history_table,
        )
    except (MigrationError, StatementFailedError) as exc:
        print(f"migration failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if stack is not None:
            stack.stop()
    print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
