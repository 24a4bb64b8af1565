"""The Redshift compatibility gate: PostgreSQL-only forms refused, Redshift forms accepted."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from local.warehouse.redshift_compat import (
    GATE_VARIABLE,
    RULES,
    RedshiftCompatibilityError,
    check,
    check_script,
    gate_enabled,
    local_statements,
    transaction_control_violation,
)

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def body(code: str) -> str:
    return f"create or replace procedure s.p(a varchar)\nas $$\n{code}\n$$ language plpgsql"


# (statement, rule key, line of the offending construct): each refused with its page.
REJECTED: list[tuple[str, str, int]] = [
    (body("begin\n    raise info 'load %', lower(a);\nend;"), "raise_argument", 4),
    (body("begin\n    raise exception 'x %', coalesce(a, 'NULL');\nend;"), "raise_argument", 4),
    (body("begin\n    raise info 'x %', 'literal';\nend;"), "raise_argument", 4),
    (body("begin\n    raise info 'n %', 1 + 1;\nend;"), "raise_argument", 4),
    (body("begin\n    raise division_by_zero;\nend;"), "raise_form", 4),
    (body("begin\n    raise 'no level %', a;\nend;"), "raise_form", 4),
    (body("begin\n    raise exception 'x' using errcode = '22012';\nend;"), "raise_form", 4),
    (
        body(
            "begin\n    select 1;\nexception\n    when division_by_zero then\n        null;\nend;"
        ),
        "exception_condition",
        5,
    ),
    ("insert into t (a) values (1) on conflict (a) do nothing", "on_conflict", 1),
    ("insert into t (a) values (1) returning a", "returning", 1),
    ("update t set a = 2\nreturning a", "returning", 2),
    ("select count(*) filter (where a > 1) from t", "aggregate_filter", 1),
    ("select distinct on (a) a, b from t order by a, b", "distinct_on", 1),
    ("select string_agg(a, ',') from t", "array_function", 1),
    ("select array_agg(a) from t", "array_function", 1),
    ("select unnest(b) from t", "array_function", 1),
    ("select array[1, 2, 3]", "array_type", 1),
    ("select array(select a from t)", "array_type", 1),
    ("create table t (a integer[])", "array_type", 1),
    ("select cast(a as text[]) from t", "array_type", 1),
    ("insert into t (n) select generate_series(1, 10)", "leader_node_function", 1),
    ("select n, a from generate_series(1, 3) as n cross join s.t", "leader_node_function", 1),
    ("select current_schemas(false), a from s.t", "leader_node_function", 1),
    ("select now(), a from s.t", "leader_node_function", 1),
    ("create index t_a on s.t (a)", "create_index", 1),
    ("create unique index t_a on s.t (a)", "create_index", 1),
    (body("begin\n    delete from s.t;\n    truncate s.u;\nend;"), "truncate_commit", 5),
]

# Valid Redshift (the original design's forms and sql/'s): each accepted.
ACCEPTED: list[str] = [
    body("declare\n    v integer;\nbegin\n    raise info 'rows %, %', v, a;\nend;"),
    body("begin\n    raise exception 'bad value %', a;\nend;"),
    body("begin\n    raise notice 'done';\nend;"),
    body("begin\n    select 1;\nexception\n    when others then\n        raise;\nend;"),
    body("begin\n    truncate s.t;\nend;"),
    body("begin\n    delete from s.t;\n    analyze s.t predicate columns;\nend;"),
    "insert into t (a) select a from s.u",
    "merge into s.t using s.u on t.a = u.a when matched then update set b = u.b"
    " when not matched then insert (a, b) values (u.a, u.b)",
    "select listagg(a, ',') within group (order by a) from t",
    "select nvl(a, 'x'), getdate(), sysdate from t",
    "select n from generate_series(1, 10) as n",
    "select current_schemas(false)",
    "select count(distinct a), sum(case when b > 1 then 1 else 0 end) from t",
    "select distinct a from t",
    "select row_number() over (partition by a order by b) from t",
    "create table t (a int encode az64) diststyle all sortkey (a)",
    "select substring(a, 1, 2) from t -- returning, on conflict, in a comment",
    "select 'on conflict do nothing, string_agg(' from t",
    "grant execute on procedure s.p() to role mystore_etl",
    "truncate s.t",
]


@pytest.mark.parametrize(("sql", "rule", "line"), REJECTED)
def test_postgresql_only_forms_are_refused_naming_construct_line_and_page(
    sql: str, rule: str, line: int
) -> None:
    with pytest.raises(RedshiftCompatibilityError) as refused:
        check(sql)
    error = refused.value
    assert (error.line, error.doc_url) == (line, RULES[rule].doc_url)
    assert error.construct.startswith(RULES[rule].construct)
    assert f"line {line}: {RULES[rule].construct}" in str(error)
    assert RULES[rule].doc_url in str(error) and GATE_VARIABLE in str(error)


@pytest.mark.parametrize("sql", ACCEPTED)
def test_redshift_forms_are_accepted(sql: str) -> None:
    check(sql)


def test_every_rule_is_exercised_and_cites_a_redshift_developer_guide_page() -> None:
    exercised = {rule for _, rule, _ in REJECTED} | {"transaction_control"}
    assert exercised == set(RULES)
    for rule in RULES.values():
        assert rule.doc_url.startswith("https://docs.aws.amazon.com/redshift/latest/dg/")


@pytest.mark.parametrize("path", sorted(SQL_DIR.glob("*.sql")), ids=lambda p: p.name)
def test_every_file_of_sql_passes_the_gate(path: Path) -> None:
    check_script(path.read_text())


def test_a_script_error_names_the_line_in_the_file() -> None:
    script = "select 1;\n\n" + body("begin\n    raise info 'x %', upper(a);\nend;") + ";\n"
    with pytest.raises(RedshiftCompatibilityError, match=r"^line 6: RAISE"):
        check_script(script)


def test_truncate_in_a_transaction_batch_is_refused() -> None:
    check("truncate s.t")
    with pytest.raises(RedshiftCompatibilityError, match="TRUNCATE together"):
        check("truncate s.t", in_transaction_block=True)


def test_a_call_in_a_transaction_block_may_not_reach_a_commit() -> None:
    bodies = {
        "s.outer": "begin\n  call s.inner();\nend;",
        "s.inner": "begin\n  delete from s.t;\n  commit;\nend;",
        "s.clean": "begin\n  delete from s.t;\nend;",
    }
    found = transaction_control_violation("call s.outer()", bodies.get)
    assert found is not None and found.detail == "COMMIT in s.inner"
    assert transaction_control_violation("call s.clean()", bodies.get) is None
    with pytest.raises(RedshiftCompatibilityError, match="stored-procedure-transaction"):
        local_statements("call s.outer()", in_transaction_block=True, body_of=bodies.get)
    assert local_statements("call s.outer()", body_of=bodies.get) == ["call s.outer()"]


def test_local_statements_gate_then_translate_and_the_gate_can_be_turned_off() -> None:
    assert local_statements("select nvl(a, 'x') from t") == ["select coalesce(a, 'x') from t"]
    refused = "insert into t values (1) on conflict do nothing"
    with pytest.raises(RedshiftCompatibilityError):
        local_statements(refused)
    assert local_statements(refused, gate=False) == [refused]


def test_the_opt_out_variable_is_validated() -> None:
    assert gate_enabled({}) and gate_enabled({GATE_VARIABLE: "ON"})
    assert not gate_enabled({GATE_VARIABLE: "off"})
    with pytest.raises(ValueError, match=f"{GATE_VARIABLE}='no' is not valid; expected on or off"):
        gate_enabled({GATE_VARIABLE: "no"})


def test_the_error_survives_pickling() -> None:
    error = RedshiftCompatibilityError("RETURNING", 3, "why", "https://example")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.construct, copy.line, str(copy)) == ("RETURNING", 3, str(error))
