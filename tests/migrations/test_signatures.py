"""What a repeatable declares, and what an edit must drop first, from literal SQL."""

from __future__ import annotations

import pytest

from migrations.planning import AppliedMigration, MigrationError, changed_repeatable, parse_name
from migrations.signatures import (
    Declaration,
    SignatureError,
    declarations,
    lines,
    parse_lines,
    to_drop,
)

PROC = """-- loads; a comment with create procedure x(int) in it
create or replace procedure stg.sp_load(
    p_load_type varchar(16),
    p_start date,
    p_mark inout timestamp without time zone
)
as $$
begin
    create view inside_body as select 1;
end;
$$ language plpgsql
security definer;
grant execute on procedure stg.sp_load(varchar, date, timestamp) to role etl;
"""


def test_a_procedure_is_its_name_and_argument_modes_and_types() -> None:
    [found] = declarations(PROC)
    assert found.line == "procedure stg.sp_load(in varchar, in date, inout timestamp)"
    assert found.drop_sql == "drop procedure stg.sp_load(in varchar, in date, inout timestamp)"


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("p int", "in integer"),
        ("int4", "in integer"),
        ("p_x double precision", "in double precision"),
        ("double precision", "in double precision"),
        ("p character varying(10)", "in varchar"),
        ("p out numeric(18, 2)", "out numeric"),  # Redshift order: name, mode, type
        ("inout p bigint", "inout bigint"),  # PostgreSQL order: mode, name, type
        ('"P" timestamp with time zone', "in timestamptz"),
        ("p float8", "in double precision"),
    ],
)
def test_argument_spellings_are_canonical(argument: str, expected: str) -> None:
    [found] = declarations(
        f"create procedure s.p({argument}) as $$ begin end; $$ language plpgsql;"
    )
    assert found.line == f"procedure s.p({expected})"


def test_a_function_keeps_its_return_type_and_drops_by_types_only() -> None:
    [found] = declarations(
        "create or replace function s.f_add(int, varchar(3)) returns float stable"
        " as $$ select $1 $$ language sql;"
    )
    assert found.line == "function s.f_add(in integer, in varchar) returns double precision"
    assert found.drop_sql == "drop function s.f_add(integer, varchar)"


def test_a_view_is_its_name_and_a_digest_that_ignores_comments_and_spacing() -> None:
    [a] = declarations("create or replace view s.v as select a from s.t;")
    [b] = declarations("-- why\nCREATE OR REPLACE VIEW s.v AS\n  SELECT a /* key */ FROM s.t;")
    [c] = declarations("create or replace view s.v as select a, b from s.t;")
    assert a.line == b.line
    assert a.line != c.line
    assert a.line.startswith("view s.v sha256:")
    assert a.drop_sql == "drop view if exists s.v"


def test_other_statements_declare_nothing() -> None:
    assert declarations("grant select on s.t to role r; create table s.t (a int);") == []


def test_declaration_lines_read_back() -> None:
    found = declarations(PROC + "create view s.v as select 1 as one;")
    assert parse_lines(lines(found)) == found
    assert parse_lines("") == []
    with pytest.raises(SignatureError, match=r"'table s\.t' is not"):
        parse_lines("table s.t")


def test_only_what_the_new_text_does_not_declare_identically_is_dropped() -> None:
    old = declarations(
        "create procedure s.p(date) as $$ begin end; $$ language plpgsql;\n"
        "create procedure s.q() as $$ begin end; $$ language plpgsql;"
    )
    new = declarations(
        "create or replace procedure s.p(p_day date, p_n int) as $$ begin end; $$"
        " language plpgsql;\n"
        "create or replace procedure s.q() as $$ begin null; end; $$ language plpgsql;"
    )
    assert [d.drop_sql for d in to_drop(old, new)] == ["drop procedure s.p(in date)"]


def test_an_unclosed_argument_list_names_the_line() -> None:
    with pytest.raises(SignatureError, match="line 2: argument list is never closed"):
        declarations("\ncreate procedure s.p(a int")


R_OLD = "create or replace procedure s.sp_x(p date) as $$ begin end; $$ language plpgsql;"
R_NEW = "create or replace procedure s.sp_x(p date, q date) as $$ begin end; $$ language plpgsql;"


def _row(declares: str | None) -> AppliedMigration:
    return AppliedMigration(3, "R__s.sp_x.sql", "R", "0" * 64, True, declares)


def test_an_edited_signature_drops_the_old_one_first() -> None:
    step = changed_repeatable(parse_name("R__s.sp_x.sql", R_NEW), _row(lines(declarations(R_OLD))))
    assert step.drops == (Declaration("procedure", "s.sp_x", (("in", "date"),)),)


def test_an_edited_body_drops_nothing() -> None:
    body = R_OLD.replace("begin end;", "begin null; end;")
    step = changed_repeatable(parse_name("R__s.sp_x.sql", body), _row(lines(declarations(R_OLD))))
    assert step.drops == ()


def test_a_row_from_before_declarations_were_kept_drops_nothing_and_says_so() -> None:
    step = changed_repeatable(parse_name("R__s.sp_x.sql", R_NEW), _row(None))
    assert step.drops == ()
    assert "previous declarations are unknown" in step.note


def test_a_corrupt_history_line_is_refused_naming_the_row() -> None:
    with pytest.raises(MigrationError, match=r"history row 3 of R__s\.sp_x\.sql"):
        changed_repeatable(parse_name("R__s.sp_x.sql", R_NEW), _row("nonsense"))
