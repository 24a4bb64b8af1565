"""Migration planning rules, with literal file texts and history rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrations.planning import (
    AppliedMigration,
    MigrationError,
    MigrationFile,
    checksum,
    order,
    parse_name,
    plan,
    read_directory,
    render,
    transaction_blocker,
    validate_parameters,
)
from migrations.signatures import declarations, lines
from migrations.sql_text import split_statements

V1 = parse_name("V001__dw_mystore.sql", "create schema dw_mystore;")
V2 = parse_name("V002__dw_mystore.t.sql", "create table dw_mystore.t (a int);")
R1 = parse_name(
    "R__dw_mystore.v_t.sql", "create or replace view dw_mystore.v_t as select a from dw_mystore.t;"
)
ROLE = "arn:aws:iam::123456789012:role/spectrum"


def applied(
    f: MigrationFile, rank: int, *, text: str | None = None, success: bool = True
) -> AppliedMigration:
    return AppliedMigration(
        rank, f.name, f.kind, checksum(text if text is not None else f.text), success
    )


@pytest.mark.parametrize(
    ("name", "kind", "version"),
    [("V001__x.sql", "V", 1), ("V0042__a.b_c.sql", "V", 42), ("R__stg.sp_x.sql", "R", None)],
)
def test_names_give_kind_and_version(name: str, kind: str, version: int | None) -> None:
    f = parse_name(name)
    assert (f.kind, f.version) == (kind, version)


@pytest.mark.parametrize(
    "name", ["V1__x.sql", "V001_x.sql", "R__X.sql", "v001__x.sql", "V001__x.txt", "notes.md"]
)
def test_bad_names_are_refused_with_the_allowed_patterns(name: str) -> None:
    with pytest.raises(MigrationError, match=r"expected V<3-9 digits>__<description>\.sql"):
        parse_name(name)


def test_order_is_versions_then_repeatables_by_name() -> None:
    r0 = parse_name("R__a.sql", "")
    assert [f.name for f in order([R1, V2, r0, V1])] == [V1.name, V2.name, r0.name, R1.name]
    with pytest.raises(MigrationError, match="have the same version 1"):
        order([V1, parse_name("V0001__y.sql")])


def test_checksum_ignores_line_ending_style() -> None:
    assert checksum("a;\r\nb;\r\n") == checksum("a;\nb;\n") != checksum("a;\nb; \n")


def test_first_plan_applies_everything_in_order() -> None:
    result = plan([R1, V2, V1], [])
    assert [(s.file.name, s.reason) for s in result.steps] == [
        (V1.name, "new"),
        (V2.name, "new"),
        (R1.name, "new"),
    ]
    assert result.next_rank == 1


def test_nothing_to_do_when_everything_is_applied() -> None:
    result = plan([V1, V2, R1], [applied(V1, 1), applied(V2, 2), applied(R1, 3)])
    assert result.steps == [] and len(result.up_to_date) == 3 and result.next_rank == 4


def test_a_changed_repeatable_is_applied_again() -> None:
    history = [
        applied(V1, 1),
        applied(V2, 2),
        applied(R1, 3, text="old view"),
        applied(R1, 4, text="older"),
    ]
    history[2], history[3] = history[3], history[2]  # the latest rank wins, not list order
    result = plan([V1, V2, R1], history)
    assert [(s.file.name, s.reason) for s in result.steps] == [(R1.name, "changed")]
    assert result.next_rank == 5


def test_an_edited_applied_versioned_file_is_refused() -> None:
    with pytest.raises(
        MigrationError, match=r"V002__dw_mystore.t.sql was applied with checksum .* must not change"
    ):
        plan([V1, V2], [applied(V1, 1), applied(V2, 2, text="create table dw_mystore.t (b int);")])


def test_repair_still_refuses_an_edited_applied_versioned_file() -> None:
    """--repair clears unfinished rows; it is no licence to re-run a changed versioned file."""
    history = [applied(V1, 1, text="create schema other;"), applied(V2, 2, success=False)]
    with pytest.raises(
        MigrationError, match=r"V001__dw_mystore.sql was applied with checksum .* must not change"
    ):
        plan([V1, V2], history, repair=True)


def test_a_new_versioned_file_below_the_highest_applied_is_refused() -> None:
    with pytest.raises(
        MigrationError, match=r"V001__dw_mystore.sql is new but version 2 is already applied"
    ):
        plan([V1, V2], [applied(V2, 1)])


def test_an_applied_versioned_file_missing_from_disk_is_refused() -> None:
    with pytest.raises(MigrationError, match=r"V001__dw_mystore.sql are missing"):
        plan([V2], [applied(V1, 1)])


def test_an_unfinished_row_blocks_until_repair() -> None:
    history = [applied(V1, 1), applied(V2, 2, success=False)]
    with pytest.raises(MigrationError, match=r"left V002__dw_mystore.t.sql unfinished.*--repair"):
        plan([V1, V2], history)
    assert [s.file.name for s in plan([V1, V2], history, repair=True).steps] == [V2.name]
    assert plan([V1, V2], history, repair=True).next_rank == 3


def test_parameters_are_validated_strictly() -> None:
    assert validate_parameters({"glue_database": "mystore_clean", "iam_role_arn": ROLE})
    for bad in (
        {"glue_database": "MyStore"},
        {"glue_database": "a'b"},
        {"iam_role_arn": "arn:aws:iam::1:role/x"},
        {"iam_role_arn": ROLE + "' x"},
    ):
        with pytest.raises(MigrationError, match=r"is not (a Glue database name|an IAM role ARN)"):
            validate_parameters(bad)
    with pytest.raises(
        MigrationError, match="unknown migration parameter 'schema'; known: glue_database"
    ):
        validate_parameters({"schema": "x"})


def test_render_substitutes_placeholders_inside_string_literals_only() -> None:
    f = parse_name(
        "V003__ext.sql",
        "-- uses ${glue_database}\ncreate external schema e from data catalog database '${glue_database}'"
        " iam_role '${iam_role_arn}';",
    )
    text = render(f, {"glue_database": "clean", "iam_role_arn": ROLE})
    assert text.endswith(f"database 'clean' iam_role '{ROLE}';")
    with pytest.raises(MigrationError, match="needs migration parameter\\(s\\) --iam-role-arn"):
        render(f, {"glue_database": "clean"})
    outside = parse_name("V004__x.sql", "create schema ${glue_database};")
    with pytest.raises(
        MigrationError, match="line 1: placeholders may only appear inside string literals"
    ):
        render(outside, {"glue_database": "clean"})


@pytest.mark.parametrize(
    ("sql", "blocker"),
    [
        ("create table t (a int); insert into t values (1);", None),
        ("create or replace procedure p() as $$ begin truncate t; end; $$ language plpgsql;", None),
        ("truncate t;", "line 1: TRUNCATE commits or cannot run in a transaction"),
        ("select 1;\ncall stg.sp_x();", "line 2: CALL commits"),
        ("vacuum t;", "VACUUM"),
        (
            "create external schema e from data catalog database 'd' iam_role 'r';",
            "CREATE EXTERNAL SCHEMA",
        ),
        ("drop external table e.t;", "DROP EXTERNAL TABLE"),
        ("create database d;", "CREATE DATABASE"),
        ("alter table t append from u;", "ALTER TABLE APPEND"),
        ("-- migrate:no-transaction\ncreate table t (a int);", "the file says"),
    ],
)
def test_transaction_blocker(sql: str, blocker: str | None) -> None:
    found = transaction_blocker(split_statements(sql), sql)
    assert found == blocker if blocker is None else blocker in (found or "")


def test_the_real_sql_directory_plans_cleanly() -> None:
    files = read_directory(Path(__file__).resolve().parents[2] / "sql")
    assert files[0].name == "V001__dw_mystore.sql"
    assert {f.kind for f in files} == {"V", "R"}
    assert [s.file.name for s in plan(files, []).steps] == [f.name for f in files]


def test_a_directory_with_a_stray_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "V001__a.sql").write_text("select 1;")
    (tmp_path / "README.txt").write_text("notes")
    with pytest.raises(MigrationError, match=r"'README.txt' is not a migration file name"):
        read_directory(tmp_path)
    with pytest.raises(MigrationError, match="does not exist"):
        read_directory(tmp_path / "nope")


def test_repeatables_applied_before_declarations_were_kept_are_listed_for_recording() -> None:
    old = applied(R1, 3)  # no declares: a history row from before the column
    the_plan = plan([V1, V2, R1], [applied(V1, 1), applied(V2, 2), old])
    assert the_plan.undeclared == [R1]

    edited = parse_name(R1.name, R1.text.replace("select a", "select a, a as b"))
    [step] = plan([V1, V2, edited], [applied(V1, 1), applied(V2, 2), old]).steps
    assert (step.reason, step.drops) == ("changed", ())
    assert "unknown" in step.note


def test_a_changed_view_is_dropped_first_when_its_definition_changed() -> None:
    row = AppliedMigration(3, R1.name, "R", R1.checksum, True, lines(declarations(R1.text)))
    edited = parse_name(R1.name, R1.text.replace("select a", "select a, a as b"))
    [step] = plan([V1, V2, edited], [applied(V1, 1), applied(V2, 2), row]).steps
    assert [d.drop_sql for d in step.drops] == ["drop view if exists dw_mystore.v_t"]

    commented = parse_name(R1.name, "-- a note\n" + R1.text)
    [step] = plan([V1, V2, commented], [applied(V1, 1), applied(V2, 2), row]).steps
    assert step.drops == ()
