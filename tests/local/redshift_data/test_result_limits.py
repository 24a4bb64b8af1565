"""Results are fetched page by page and capped like the Data API's (its errors, its limits)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from local.redshift_data.results import (
    MAX_RESULT_BYTES,
    MAX_ROW_BYTES,
    PagedResult,
    ResultLimits,
    ResultTooLarge,
    is_query,
)
from local.stack import LocalStack

TARGET: dict[str, Any] = {"ClusterIdentifier": "local-cluster", "Database": "dev"}


def run(client: RedshiftDataAPIServiceClient, sql: str) -> dict[str, Any]:
    submitted = client.execute_statement(Sql=sql, **TARGET)
    described = client.describe_statement(Id=submitted["Id"], WaitTimeSeconds=30)
    return dict(described)


@pytest.fixture
def small_limits(local_stack: LocalStack) -> Iterator[ResultLimits]:
    executor = local_stack.data_api.executor
    saved = executor.result_limits
    executor.result_limits = replace(saved, max_bytes=20_000, max_row_bytes=2_000, page_rows=50)
    yield executor.result_limits
    executor.result_limits = saved


def test_the_default_limits_are_the_data_apis() -> None:
    assert MAX_RESULT_BYTES == 500 * 1024 * 1024  # "Database response exceeded size limit"
    assert MAX_ROW_BYTES == 64 * 1024  # "Packet for query is too large"


def test_a_result_over_the_limit_fails_without_being_built(
    redshift_data: RedshiftDataAPIServiceClient, small_limits: ResultLimits
) -> None:
    # Fifty million rows: materialized, this would take minutes and gigabytes. Streamed,
    # the statement stops at the limit within the 30 s wait.
    described = run(
        redshift_data, "select n, 'row ' || n as label from generate_series(1, 50000000) n"
    )
    assert described["Status"] == "FAILED"
    assert described["Error"].startswith("ERROR: Database response exceeded size limit")
    assert f"{small_limits.max_bytes:,} bytes" in described["Error"]
    assert described["HasResultSet"] is False


def test_a_row_over_the_row_limit_fails_with_the_data_apis_error(
    redshift_data: RedshiftDataAPIServiceClient, small_limits: ResultLimits
) -> None:
    described = run(redshift_data, "select 1 as n union all select length(repeat('x', 5000))")
    assert described["Status"] == "FINISHED"  # small rows are fine
    described = run(redshift_data, "select repeat('x', 5000) as wide")
    assert described["Status"] == "FAILED"
    assert described["Error"].startswith("ERROR: Packet for query is too large")


def test_a_result_under_the_limit_is_paged(
    redshift_data: RedshiftDataAPIServiceClient, small_limits: ResultLimits
) -> None:
    described = run(redshift_data, "select n from generate_series(1, 120) n")
    assert described["Status"] == "FINISHED"
    assert described["ResultRows"] == 120
    values: list[int] = []
    token: str | None = None
    pages = 0
    while True:
        page = redshift_data.get_statement_result(
            Id=described["Id"], **({"NextToken": token} if token else {})
        )
        values += [record[0]["longValue"] for record in page["Records"]]
        pages += 1
        token = page.get("NextToken")
        if not token:
            break
    assert values == list(range(1, 121))
    assert pages == 3  # 50 + 50 + 20


@pytest.mark.parametrize(
    "sql",
    [
        "select 1 as a; select 2 as b",  # several statements: not declarable, run plainly
        "with t as (select 2 as b) select b from t",
        "/* comment */ (select 2 as b)",
        "values (2)",
    ],
)
def test_queries_of_every_form_return_their_last_result(
    redshift_data: RedshiftDataAPIServiceClient, sql: str
) -> None:
    described = run(redshift_data, sql)
    assert described["Status"] == "FINISHED", described.get("Error")
    result = redshift_data.get_statement_result(Id=described["Id"])
    assert result["Records"] == [[{"longValue": 2}]]


def test_a_data_modifying_with_runs_once(
    redshift_data: RedshiftDataAPIServiceClient, pg_conn: psycopg.Connection[Any]
) -> None:
    pg_conn.execute("create table if not exists cte_probe (n int)")
    pg_conn.execute("truncate cte_probe")
    described = run(redshift_data, "with ins as (insert into cte_probe values (1)) select 1")
    assert described["Status"] == "FINISHED", described.get("Error")
    row = pg_conn.execute("select count(*) from cte_probe").fetchone()
    assert row == (1,)


def test_a_failed_query_keeps_no_partial_result(
    redshift_data: RedshiftDataAPIServiceClient, small_limits: ResultLimits
) -> None:
    described = run(
        redshift_data, "select 1 / (200 - n) from generate_series(1, 300) n"
    )  # fails after a few pages were stored
    assert described["Status"] == "FAILED"
    assert "division by zero" in described["Error"]


def test_paged_result_pages_rows_and_counts_bytes() -> None:
    pages: list[tuple[int, str]] = []
    paged = PagedResult(
        ResultLimits(max_bytes=10_000, page_rows=2), lambda n, t: pages.append((n, t))
    )
    paged.add([(1,), (2,), (3,)])
    paged.close()
    assert [n for n, _ in pages] == [0, 1]
    assert pages[1][1] == '[[{"longValue":3}]]'
    assert (paged.rows, paged.pages) == (3, 2)
    assert paged.size == 3 * (len('[{"longValue":1}]') + 1)  # each row's JSON and a separator


def test_an_empty_result_has_one_empty_page() -> None:
    pages: list[str] = []
    paged = PagedResult(ResultLimits(), lambda _, text: pages.append(text))
    paged.close()
    assert pages == ["[]"]


def test_paged_result_stops_at_the_limit() -> None:
    paged = PagedResult(ResultLimits(max_bytes=100, page_rows=1000), lambda *_: None)
    with pytest.raises(ResultTooLarge, match="exceeded size limit"):
        paged.add((n,) for n in range(10**9))
    assert paged.rows < 20


@pytest.mark.parametrize(
    ("sql", "query"),
    [
        ("select 1", True),
        ("  -- note\n  WITH x AS (select 1) select * from x", True),
        ("/* a */ ((select 1))", True),
        ("VALUES (1)", True),
        ("call stg_mystore.sp_run_incremental_load()", False),
        ("insert into t select 1", False),
        ("selection", False),
    ],
)
def test_is_query(sql: str, query: bool) -> None:
    assert is_query(sql) is query
