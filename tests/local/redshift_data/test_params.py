"""Placeholder rewriting and parameter checks, on literal SQL."""

from __future__ import annotations

import pytest

from local.core import ServiceError
from local.redshift_data.params import bind_parameters, to_pyformat


@pytest.mark.parametrize(
    ("sql", "expected", "names"),
    [
        ("select :a", "select %(a)s", ("a",)),
        ("select :a, :a, :b_2", "select %(a)s, %(a)s, %(b_2)s", ("a", "b_2")),
        ("select ':a', \":a\"", "select ':a', \":a\"", ()),
        ("select 'it''s :a'", "select 'it''s :a'", ()),
        ("select 1::int, :x::date", "select 1::int, %(x)s::date", ("x",)),
        ("select 1 -- :a\n, :b", "select 1 -- :a\n, %(b)s", ("b",)),
        (
            "select /* :a /* nested :b */ :c */ :d",
            "select /* :a /* nested :b */ :c */ %(d)s",
            ("d",),
        ),
        (
            "do $$ begin perform :a; end $$; select :b",
            "do $$ begin perform :a; end $$; select %(b)s",
            ("b",),
        ),
        ("select $tag$ :a $tag$, :b", "select $tag$ :a $tag$, %(b)s", ("b",)),
        ("select 5 % 3, '%', :p", "select 5 %% 3, '%%', %(p)s", ("p",)),
        ("select arr[1:2] from t", "select arr[1:2] from t", ()),
        ("select a$1, :b", "select a$1, %(b)s", ("b",)),
    ],
)
def test_to_pyformat_rewrites_only_real_placeholders(
    sql: str, expected: str, names: tuple[str, ...]
) -> None:
    bound = to_pyformat(sql)
    assert bound.sql == expected
    assert bound.names == names


def test_without_parameters_sql_runs_as_written() -> None:
    assert bind_parameters(["select '%' , :not_bound"], None) == (["select '%' , :not_bound"], None)


def test_values_are_returned_for_binding_not_spliced() -> None:
    sqls, values = bind_parameters(
        ["insert into t values (:v)"], [{"name": "v", "value": "'); drop table t; --"}]
    )
    assert sqls == ["insert into t values (%(v)s)"]
    assert values == {"v": "'); drop table t; --"}


def test_missing_parameter_names_the_placeholder() -> None:
    with pytest.raises(ServiceError) as exc:
        bind_parameters(["select :a, :b"], [{"name": "a", "value": "1"}])
    assert exc.value.code == "ValidationException"
    assert ":b" in exc.value.message


def test_unused_parameter_is_named() -> None:
    with pytest.raises(ServiceError) as exc:
        bind_parameters(["select :a"], [{"name": "a", "value": "1"}, {"name": "zz", "value": "2"}])
    assert "'zz'" in exc.value.message
    assert ":a" in exc.value.message


def test_batch_parameters_may_be_used_by_any_statement() -> None:
    sqls, values = bind_parameters(
        ["select :a", "select :b"], [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}]
    )
    assert sqls == ["select %(a)s", "select %(b)s"]
    assert values == {"a": "1", "b": "2"}
