"""The migration runner against the local warehouse, through the Data API."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from local.stack import LocalStack
from local.warehouse.redshift_compat import preflight
from migrations.planning import MigrationError
from migrations.runner import detect_dialect, history_table_sql, migrate
from tasks.redshift_data import RedshiftTarget

TARGET = RedshiftTarget(database="dev", cluster_identifier="local", db_user="awsuser")


class Project:
    """A throw-away sql directory, schema and history table on the session warehouse."""

    def __init__(
        self, root: Path, client: RedshiftDataAPIServiceClient, conn: psycopg.Connection[Any]
    ) -> None:
        self.dir = root / "sql"
        self.dir.mkdir()
        self.schema = f"mig_{uuid.uuid4().hex[:8]}"
        self.history = f"{self.schema}_meta.history"
        self.client = client
        self.conn = conn
        self.log: list[str] = []

    def write(self, name: str, sql: str) -> None:
        (self.dir / name).write_text(sql.replace("{s}", self.schema))

    def migrate(self, **kw: Any) -> list[str]:
        report = migrate(
            self.client,
            TARGET,
            self.dir,
            check=preflight,
            history_table=self.history,
            log=self.log.append,
            **kw,
        )
        return [step.file.name for step in report.plan.steps]

    def history_rows(self) -> list[tuple[Any, ...]]:
        return self.conn.execute(
            f"select installed_rank, script, kind, success from {self.history} order by 1"
        ).fetchall()

    def tables(self) -> set[str]:
        rows = self.conn.execute(
            "select table_name from information_schema.tables where table_schema = %s",
            [self.schema],
        ).fetchall()
        return {r[0] for r in rows}


@pytest.fixture
def project(
    tmp_path: Path,
    local_stack: LocalStack,
    redshift_data: RedshiftDataAPIServiceClient,
    pg_conn: psycopg.Connection[Any],
) -> Project:
    p = Project(tmp_path, redshift_data, pg_conn)
    p.write("V001__schema.sql", "create schema {s};")
    p.write(
        "V002__{s}.t.sql".replace("{s}", p.schema),
        "create table {s}.t (a int encode az64, b varchar(8)) diststyle all;\n"
        "insert into {s}.t values (1, 'one');",
    )
    p.write(
        "R__{s}.v_t.sql".replace("{s}", p.schema),
        "create or replace view {s}.v_t as select a from {s}.t;",
    )
    return p


def test_applies_everything_once_then_nothing(project: Project) -> None:
    assert project.migrate() == [
        "V001__schema.sql",
        f"V002__{project.schema}.t.sql",
        f"R__{project.schema}.v_t.sql",
    ]
    assert project.tables() == {"t", "v_t"}
    assert [(r[0], r[2], r[3]) for r in project.history_rows()] == [
        (1, "V", True),
        (2, "V", True),
        (3, "R", True),
    ]

    assert project.migrate() == []
    assert len(project.history_rows()) == 3


def test_dry_run_lists_the_plan_and_writes_nothing(project: Project) -> None:
    assert len(project.migrate(dry_run=True)) == 3
    exists = project.conn.execute("select to_regclass(%s)", [project.history]).fetchone()
    assert exists == (None,)
    assert project.tables() == set()


def test_a_changed_repeatable_is_reapplied(project: Project) -> None:
    project.migrate()
    project.write(
        f"R__{project.schema}.v_t.sql", "create or replace view {s}.v_t as select a, b from {s}.t;"
    )

    assert project.migrate() == [f"R__{project.schema}.v_t.sql"]
    assert project.conn.execute(f"select * from {project.schema}.v_t").fetchall() == [(1, "one")]
    assert [r[0] for r in project.history_rows()] == [1, 2, 3, 4]


def test_an_edited_applied_versioned_file_is_refused(project: Project) -> None:
    project.migrate()
    project.write("V001__schema.sql", "create schema if not exists {s};")

    with pytest.raises(MigrationError, match=r"V001__schema.sql was applied with checksum"):
        project.migrate()
    with pytest.raises(MigrationError, match="must not change"):
        project.migrate(dry_run=True)
    with pytest.raises(MigrationError, match=r"V001__schema.sql was applied with checksum"):
        project.migrate(repair=True)
    assert [r[1] for r in project.history_rows()].count("V001__schema.sql") == 1


def test_a_failing_file_is_rolled_back_with_its_history_row(project: Project) -> None:
    project.migrate()
    project.write(
        "V003__broken.sql",
        "create table {s}.u (a int);\ninsert into {s}.u values ('not a number');",
    )

    with pytest.raises(
        MigrationError, match=r"V003__broken.sql failed and was rolled back: .*invalid input syntax"
    ):
        project.migrate()
    assert "u" not in project.tables()
    assert len(project.history_rows()) == 3

    project.write("V003__broken.sql", "create table {s}.u (a int);\ninsert into {s}.u values (3);")
    assert project.migrate() == ["V003__broken.sql"]
    assert project.conn.execute(f"select a from {project.schema}.u").fetchall() == [(3,)]


def test_a_partly_applied_non_transactional_file_blocks_until_repair(project: Project) -> None:
    project.migrate()
    project.write(
        "V003__backfill.sql",
        "truncate {s}.t;\ninsert into {s}.t values (2, 'two');\ninsert into {s}.missing values (1);",
    )

    with pytest.raises(
        MigrationError, match=r"failed at statement 3 of 3; the 2 before it stay applied"
    ):
        project.migrate()
    assert project.history_rows()[-1][1:] == ("V003__backfill.sql", "V", False)
    with pytest.raises(MigrationError, match=r"unfinished .* --repair"):
        project.migrate()

    project.write("V003__backfill.sql", "truncate {s}.t;\ninsert into {s}.t values (2, 'two');")
    assert project.migrate(repair=True) == ["V003__backfill.sql"]
    assert project.conn.execute(f"select a from {project.schema}.t").fetchall() == [(2,)]
    assert all(r[3] for r in project.history_rows())


def test_parameters_are_validated_before_anything_is_written(project: Project) -> None:
    project.write(
        "V003__ext.sql",
        "create schema {s}_x; -- database '${glue_database}'\nselect '${glue_database}';",
    )
    with pytest.raises(MigrationError, match='glue_database = "x\'y" is not a Glue database name'):
        project.migrate(parameters={"glue_database": "x'y"})
    with pytest.raises(MigrationError, match="needs migration parameter"):
        project.migrate()
    assert project.tables() == set()
    assert "V003__ext.sql" in project.migrate(parameters={"glue_database": "clean"})


def test_the_dialect_comes_from_the_database() -> None:
    assert detect_dialect("PostgreSQL 18.1 on x86_64-pc-linux-gnu") == "postgres"
    redshift = (
        "PostgreSQL 8.0.2 on i686-pc-linux-gnu, compiled by GCC gcc 3.4.2, Redshift 1.0.77467"
    )
    assert detect_dialect(redshift) == "redshift"


@pytest.mark.parametrize("name", ["history", "a.b.c", "A.b", 'x".y', "x.y; drop table z"])
def test_the_history_table_name_is_validated(name: str) -> None:
    with pytest.raises(MigrationError, match=r"expected schema.table"):
        history_table_sql(name)
    assert (
        history_table_sql("public.schema_migration_history")
        == '"public"."schema_migration_history"'
    )


PROC_V1 = (
    "create or replace procedure {s}.sp_count(p_day date)\nas $$\nbegin\n"
    "    raise info 'one argument';\nend;\n$$ language plpgsql;"
)
PROC_V2 = (
    "create or replace procedure {s}.sp_count(p_from date, p_to date)\nas $$\nbegin\n"
    "    raise info 'two arguments';\nend;\n$$ language plpgsql;"
)


def _procedures(project: Project) -> list[str]:
    rows = project.conn.execute(
        "select pg_get_function_identity_arguments(p.oid) from pg_proc p"
        " join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = %s and p.proname = 'sp_count' order by 1",
        [project.schema],
    ).fetchall()
    return [r[0] for r in rows]


def _columns(project: Project, view: str) -> list[tuple[str, str]]:
    rows = project.conn.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = %s and table_name = %s order by ordinal_position",
        [project.schema, view],
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def test_an_edited_signature_or_view_replaces_the_old_object(project: Project) -> None:
    proc = f"R__{project.schema}.sp_count.sql"
    view = f"R__{project.schema}.v_t.sql"
    project.write(proc, PROC_V1)
    project.migrate()
    assert _procedures(project) == ["IN p_day date"]

    project.write(proc, PROC_V2)
    # renamed and retyped columns: CREATE OR REPLACE VIEW alone refuses this
    project.write(
        view, "create or replace view {s}.v_t as select b as label, a::bigint as a from {s}.t;"
    )
    assert sorted(project.migrate()) == sorted([proc, view])

    assert _procedures(project) == ["IN p_from date, IN p_to date"]  # no overload left behind
    assert _columns(project, "v_t") == [("label", "character varying"), ("a", "bigint")]
    assert any("first: drop procedure" in line for line in project.log)
    assert project.migrate() == []


def test_a_history_table_from_before_declarations_is_upgraded(project: Project) -> None:
    project.migrate()
    project.conn.execute(f"alter table {project.history} drop column declares")
    project.write(
        f"R__{project.schema}.v_t.sql", "create or replace view {s}.v_t as select a from {s}.t;"
    )  # same text: up to date; its declarations are recorded from the file
    assert project.migrate() == []
    rows = project.conn.execute(
        f"select script, declares from {project.history} where kind = 'R'"
    ).fetchall()
    assert [(r[0], r[1].split(" sha256:")[0]) for r in rows] == [
        (f"R__{project.schema}.v_t.sql", f"view {project.schema}.v_t")
    ]

    project.write(
        f"R__{project.schema}.v_t.sql", "create or replace view {s}.v_t as select b from {s}.t;"
    )
    assert project.migrate() == [f"R__{project.schema}.v_t.sql"]
    assert _columns(project, "v_t") == [("b", "character varying")]


def test_a_view_with_dependents_is_refused_naming_them(project: Project) -> None:
    project.write(
        f"R__{project.schema}.v_u.sql", "create or replace view {s}.v_u as select a from {s}.v_t;"
    )
    project.migrate()
    project.write(
        f"R__{project.schema}.v_t.sql", "create or replace view {s}.v_t as select a, b from {s}.t;"
    )

    with pytest.raises(
        MigrationError, match=rf"redefines view {project.schema}.v_t.*{project.schema}.v_u depend"
    ):
        project.migrate()
    assert _columns(project, "v_t") == [("a", "integer")]
