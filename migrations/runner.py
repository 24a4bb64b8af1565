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
    MigrationFile,
    Plan,
    Step,
    declarations_of,
    plan,
    read_directory,
    statements_of,
    transaction_blocker,
    validate_parameters,
)
from migrations.signatures import lines as declaration_lines
from tasks.redshift_data import RedshiftTarget, StatementError

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
DEFAULT_HISTORY_TABLE = "public.schema_migration_history"
Dialect = Literal["redshift", "postgres"]
Check = Callable[[str], object]
"""A pre-flight check of one Redshift statement: raises (with a message) to refuse it."""
DECLARES_COLUMN = "declares varchar(65535)"
"""What a repeatable created (``migrations.signatures`` lines), to drop what an edit removes."""
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
            "    success boolean not null,\n"
            f"    {DECLARES_COLUMN}\n"
            ")"
        )
        self.execute([f"create schema if not exists {schema}", ddl])

    def has_declares(self) -> bool:
        """Whether the history table keeps declarations (tables made before it don't)."""
        schema, table = self.table_name.split(".")
        found = self.rows(
            "select count(*) as n from information_schema.columns where table_schema = :schema"
            " and table_name = :table and column_name = 'declares'",
            {"schema": schema, "table": table},
        )
        return int(found[0]["n"]) > 0

    def add_declares(self) -> None:
        """Backward-compatible upgrade: a nullable column; old rows read as 'unknown'."""
        self.log(f"history table {self.table_name}: adding column declares")
        self.execute(f"alter table {self.table} add column {DECLARES_COLUMN}")

    def applied(self, *, with_declares: bool = True) -> list[AppliedMigration]:
        declares = "declares" if with_declares else "cast(null as varchar) as declares"
        rows = self.rows(
            f"select installed_rank, script, kind, checksum, success, {declares}"  # noqa: S608
            f" from {self.table} order by installed_rank"
        )
        return [
            AppliedMigration(
                int(r["installed_rank"]),
                r["script"],
                r["kind"],
                r["checksum"],
                bool(r["success"]),
                r["declares"],
            )
            for r in rows
        ]

    def record_declarations(self, file: MigrationFile) -> None:
        """Keep what an up-to-date repeatable declares on its history row (same checksum, so
        the applied text is the file's text)."""
        value, declares = _declares_sql(declaration_lines(declarations_of(file)))
        self.execute(
            f"update {self.table} set declares = {value} where script = :script"  # noqa: S608
            " and checksum = :checksum and success = true and declares is null",
            {"script": file.name, "checksum": file.checksum, **declares},
        )

    def dependent_views(self, name: str) -> list[str]:
        """Views bound to view ``schema.name`` (pg_depend through their rewrite rule), which
        a DROP VIEW without CASCADE refuses. Redshift's late-binding views are not tracked
        there, so they never block; locally every view is an ordinary, bound view."""
        schema, _, relation = name.rpartition(".")
        rows = self.rows(
            "select distinct trim(dn.nspname) || '.' || trim(dc.relname) as dependent"
            " from pg_depend d"
            " join pg_rewrite r on r.oid = d.objid"
            " join pg_class dc on dc.oid = r.ev_class"
            " join pg_namespace dn on dn.oid = dc.relnamespace"
            " join pg_class sc on sc.oid = d.refobjid"
            " join pg_namespace sn on sn.oid = sc.relnamespace"
            " where sn.nspname = :schema and sc.relname = :relation and dc.oid <> sc.oid"
            " order by 1",
            {"schema": schema or "public", "relation": relation},
        )
        return [str(r["dependent"]) for r in rows]

    def refuse_dependents(self, step: Step) -> None:
        dropped = {d.name for d in step.drops}
        for view in (d for d in step.drops if d.kind == "view"):
            blocking = [v for v in self.dependent_views(view.name) if v not in dropped]
            if blocking:
                raise MigrationError(
                    f"{step.file.name} redefines view {view.name}, which must be dropped first"
                    " (CREATE OR REPLACE VIEW cannot change its columns), but view(s)"
                    f" {', '.join(blocking)} depend on it. Drop them in a new versioned file"
                    " and edit their R__ files so they are re-created in the same run, or make"
                    " them late-binding (WITH NO SCHEMA BINDING) on Redshift"
                )

    def apply(self, step: Step, rank: int, parameters: Mapping[str, str]) -> None:
        file = step.file
        statements = statements_of(file, parameters)
        blocker = transaction_blocker(statements, file.text)
        self.refuse_dependents(step)
        sqls = [d.drop_sql for d in step.drops] + [s.text for s in statements]
        value, declares = (
            _declares_sql(declaration_lines(declarations_of(file)))
            if file.kind == "R"
            else ("null", {})
        )
        if blocker is None and len(sqls) > MAX_BATCH_STATEMENTS:
            raise MigrationError(
                f"{file.name} has {len(sqls)} statements; a transaction batch holds at most"
                f" {MAX_BATCH_STATEMENTS}: split the file (one object per file)"
            )
        name = f"mystore-migrate:{file.name}"[:500]
        self.execute(
            f"insert into {self.table} (installed_rank, script, kind, checksum,"  # noqa: S608
            " transactional, started_at, success, declares) values (cast(:rank as integer),"
            " :script, :kind, :checksum, cast(:transactional as boolean), getdate(), false,"
            f" {value})",
            {
                "rank": rank,
                "script": file.name,
                "kind": file.kind,
                "checksum": file.checksum,
                "transactional": blocker is None,
                **declares,
            },
            name=name,
        )
        mark_done = (
            f"update {self.table} set success = true, applied_at = getdate() where success = false"  # noqa: S608
        )
        how = "in one transaction" if blocker is None else f"statement by statement ({blocker})"
        self.log(f"applying {file.name} ({step.reason}, {len(sqls)} statements, {how})")
        for dropped in step.drops:
            self.log(f"  first: {dropped.drop_sql} (the previous text declared {dropped.line})")
        if step.note:
            self.log(f"  note: {step.note}")
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


def _declares_sql(text: str) -> tuple[str, dict[str, str]]:
    """The SQL value of a declares column and its parameter: the Data API binds no ''."""
    return (":declares", {"declares": text}) if text else ("''", {})


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
    with_declares = exists and runner.has_declares()
    applied = runner.applied(with_declares=with_declares) if exists else []
    if repair and not dry_run and any(not a.success for a in applied):
        log("repair: clearing unfinished history rows")
        runner.execute(f"delete from {runner.table} where success = false")  # noqa: S608
        applied = [a for a in applied if a.success]
    the_plan = plan(files, applied, repair=repair)
    report = Report(the_plan, dry_run=dry_run)
    for step in the_plan.steps:  # render and check everything first: fail before writing
        drops = [d.drop_sql for d in step.drops]
        for sql in [*drops, *(s.text for s in statements_of(step.file, values))]:
            if check is not None:
                check(sql)
    if dry_run:
        return report
    if not exists:
        runner.ensure_history()
    elif not with_declares:
        runner.add_declares()
    for file in the_plan.undeclared:
        runner.record_declarations(file)
    for offset, step in enumerate(the_plan.steps):
        runner.apply(step, the_plan.next_rank + offset, values)
        report.applied.append(step.file.name)
    return report


def format_report(report: Report) -> str:
    verb = "would apply" if report.dry_run else "applied"
    lines: list[str] = []
    for step in report.plan.steps:
        drops = "".join(f", first {d.drop_sql}" for d in step.drops)
        lines.append(f"  {verb}: {step.file.name} ({step.reason}{drops})")
    lines.append(
        f"{len(report.plan.steps)} to apply, {len(report.plan.up_to_date)} up to date"
        + (" (dry run: nothing was changed)" if report.dry_run else "")
    )
    return "\n".join(lines)
