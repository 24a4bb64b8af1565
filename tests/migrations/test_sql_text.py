"""Statement splitting: only the semicolons that end statements split."""

from __future__ import annotations

import pytest

from migrations.sql_text import SqlSyntaxError, split_statements, tokenize


def texts(sql: str) -> list[str]:
    return [s.text for s in split_statements(sql)]


def test_tokens_give_back_the_input_exactly() -> None:
    sql = "select 'a;b', \"x;y\" -- c;\n/* d; /* nested; */ */ from t where a::int = :p; $$;$$"
    assert "".join(t.text for t in tokenize(sql)) == sql


def test_semicolons_inside_strings_identifiers_comments_and_bodies_do_not_split() -> None:
    sql = """
    -- header comment; with a semicolon
    create table "a;b" (c varchar default 'x;''y');
    /* block; /* nested; */ still comment; */
    create procedure p() as $$
    begin
        raise info 'done; %', 1;
    end;
    $$ language plpgsql;
    create function f() returns int as $body$ select 1; $body$ language sql
    """
    assert texts(sql) == [
        "create table \"a;b\" (c varchar default 'x;''y')",
        "create procedure p() as $$\n"
        "    begin\n        raise info 'done; %', 1;\n    end;\n    $$ language plpgsql",
        "create function f() returns int as $body$ select 1; $body$ language sql",
    ]


def test_comment_only_and_empty_pieces_are_dropped() -> None:
    assert texts("; ;\n-- nothing here;\n") == []
    assert texts("select 1;;select 2") == ["select 1", "select 2"]


def test_statements_know_their_first_line_and_words() -> None:
    [first, second] = split_statements("select 1;\n\n  Truncate  t;")
    assert (first.line, second.line) == (1, 3)
    assert second.words(2) == ["TRUNCATE", "T"]


def test_parameters_and_casts_are_told_apart() -> None:
    kinds = [(t.kind, t.text) for t in tokenize("a::date = :start_date") if t.significant]
    assert kinds == [
        ("word", "a"),
        ("punct", "::"),
        ("word", "date"),
        ("punct", "="),
        ("param", ":start_date"),
    ]


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("select 'abc", "line 1: string literal starting here is never closed"),
        ('select "abc', "quoted identifier starting here is never closed"),
        ("select 1;\n/* open", "line 2: block comment is never closed"),
        ("create procedure p() as $$ begin", "dollar-quoted body $$ is never closed"),
    ],
)
def test_unterminated_quotes_fail_with_the_line(sql: str, message: str) -> None:
    with pytest.raises(SqlSyntaxError, match=message.replace("$", r"\$")):
        split_statements(sql)
