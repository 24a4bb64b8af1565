"""BatchExecuteStatement and ListStatements through boto3."""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

TARGET: dict[str, Any] = {"WorkgroupName": "local-workgroup", "Database": "dev"}


def test_batch_runs_in_order_and_each_sub_statement_has_its_result(
    redshift_data: RedshiftDataAPIServiceClient,
) -> None:
    table = f"batch_{uuid.uuid4().hex[:8]}"
    submitted = redshift_data.batch_execute_statement(
        Sqls=[
            f"create table {table} (n int)",
            f"insert into {table} values (1), (2), (3)",
            f"select sum(n) as total from {table}",
        ],
        WaitTimeSeconds=10,
        **TARGET,
    )
    assert submitted["Status"] == "FINISHED"
    described = redshift_data.describe_statement(Id=submitted["Id"])
    assert described["ExecutionMode"] == "TRANSACTION"
    subs = described["SubStatements"]
    assert [sub["Id"] for sub in subs] == [f"{submitted['Id']}:{i}" for i in (1, 2, 3)]
    assert [sub["Status"] for sub in subs] == ["FINISHED"] * 3
    assert [sub["HasResultSet"] for sub in subs] == [False, False, True]
    assert subs[1]["ResultRows"] == 3
    result = redshift_data.get_statement_result(Id=subs[2]["Id"])
    assert result["Records"] == [[{"longValue": 6}]]
    sub = redshift_data.describe_statement(Id=subs[1]["Id"])
    assert sub["QueryString"] == f"insert into {table} values (1), (2), (3)"
    with pytest.raises(ClientError) as exc:
        redshift_data.get_statement_result(Id=submitted["Id"])
    assert exc.value.response["Error"]["Code"] == "ValidationException"


def test_failed_batch_in_a_transaction_rolls_back(
    redshift_data: RedshiftDataAPIServiceClient, pg_conn: psycopg.Connection[Any]
) -> None:
    table = f"batch_tx_{uuid.uuid4().hex[:8]}"
    pg_conn.execute(f"create table {table} (n int)")
    submitted = redshift_data.batch_execute_statement(
        Sqls=[f"insert into {table} values (1)", "select 1/0", f"insert into {table} values (2)"],
        **TARGET,
    )
    described = redshift_data.describe_statement(Id=submitted["Id"], WaitTimeSeconds=10)
    assert described["Status"] == "FAILED"
    assert described["Error"] == "ERROR: division by zero"
    assert [sub["Status"] for sub in described["SubStatements"]] == [
        "FINISHED",
        "FAILED",
        "ABORTED",
    ]
    assert pg_conn.execute(f"select count(*) from {table}").fetchone() == (0,)


def test_failed_batch_in_auto_commit_keeps_earlier_work(
    redshift_data: RedshiftDataAPIServiceClient, pg_conn: psycopg.Connection[Any]
) -> None:
    table = f"batch_ac_{uuid.uuid4().hex[:8]}"
    pg_conn.execute(f"create table {table} (n int)")
    submitted = redshift_data.batch_execute_statement(
        Sqls=[f"insert into {table} values (1)", "select 1/0"],
        ExecutionMode="AUTO_COMMIT",
        **TARGET,
    )
    described = redshift_data.describe_statement(Id=submitted["Id"], WaitTimeSeconds=10)
    assert described["Status"] == "FAILED"
    assert pg_conn.execute(f"select count(*) from {table}").fetchone() == (1,)


def test_procedure_that_commits_fails_inside_a_transaction_batch(
    redshift_data: RedshiftDataAPIServiceClient, pg_conn: psycopg.Connection[Any]
) -> None:
    pg_conn.execute(
        "create or replace procedure batch_committer() language plpgsql as $$ begin commit; end $$"
    )
    single = redshift_data.execute_statement(
        Sql="call batch_committer()", WaitTimeSeconds=10, **TARGET
    )
    assert single["Status"] == "FINISHED"
    batch = redshift_data.batch_execute_statement(
        Sqls=["select 1", "call batch_committer()"], WaitTimeSeconds=10, **TARGET
    )
    described = redshift_data.describe_statement(Id=batch["Id"])
    assert described["Status"] == "FAILED"
    assert "invalid transaction termination" in described["Error"]


def test_list_statements_filters_by_name_prefix_and_status_and_pages(
    redshift_data: RedshiftDataAPIServiceClient,
) -> None:
    prefix = f"list-{uuid.uuid4().hex[:8]}-"
    ids = {}
    for name, sql in (("a", "select 1"), ("b", "select 1/0"), ("c", "select 2")):
        submitted = redshift_data.execute_statement(
            Sql=sql, StatementName=prefix + name, WaitTimeSeconds=10, **TARGET
        )
        ids[name] = submitted["Id"]
    listed = redshift_data.list_statements(StatementName=prefix, Status="ALL")["Statements"]
    assert [item["Id"] for item in listed] == [ids["c"], ids["b"], ids["a"]]
    assert listed[0]["StatementName"] == prefix + "c"
    assert listed[0]["QueryString"] == "select 2"
    assert listed[0]["IsBatchStatement"] is False
    failed = redshift_data.list_statements(StatementName=prefix, Status="FAILED")["Statements"]
    assert [item["Id"] for item in failed] == [ids["b"]]
    first = redshift_data.list_statements(StatementName=prefix, MaxResults=2)
    assert len(first["Statements"]) == 2
    second = redshift_data.list_statements(
        StatementName=prefix, MaxResults=2, NextToken=first["NextToken"]
    )
    assert [item["Id"] for item in second["Statements"]] == [ids["a"]]
    assert "NextToken" not in second
    paginator = redshift_data.get_paginator("list_statements")
    pages = list(paginator.paginate(StatementName=prefix, PaginationConfig={"PageSize": 1}))
    assert [page["Statements"][0]["Id"] for page in pages] == [ids["c"], ids["b"], ids["a"]]


def test_cancelling_a_batch_aborts_the_running_and_remaining_statements(
    redshift_data: RedshiftDataAPIServiceClient,
) -> None:
    submitted = redshift_data.batch_execute_statement(
        Sqls=["select 1", "select pg_sleep(30)", "select 2"], **TARGET
    )
    sub_two = f"{submitted['Id']}:2"
    deadline = time.monotonic() + 10
    while redshift_data.describe_statement(Id=sub_two)["Status"] != "STARTED":
        assert time.monotonic() < deadline, "second statement never started"
        time.sleep(0.05)
    with pytest.raises(ClientError) as exc:
        redshift_data.cancel_statement(Id=sub_two)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert redshift_data.cancel_statement(Id=submitted["Id"])["Status"] is True
    described = redshift_data.describe_statement(Id=submitted["Id"], WaitTimeSeconds=10)
    assert described["Status"] == "ABORTED"
    assert [sub["Status"] for sub in described["SubStatements"]] == [
        "FINISHED",
        "ABORTED",
        "ABORTED",
    ]
