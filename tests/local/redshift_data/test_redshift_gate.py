"""The local Data API runs what any client sends as Redshift would: Redshift forms are
translated, PostgreSQL-only forms refused (unless opted out), and DbUser is enforced."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from local.stack import LocalStack

TARGET: dict[str, Any] = {"WorkgroupName": "local-workgroup", "Database": "dev"}


def _run(client: RedshiftDataAPIServiceClient, **request: Any) -> dict[str, Any]:
    submitted = (
        client.batch_execute_statement(WaitTimeSeconds=10, **request)
        if "Sqls" in request
        else client.execute_statement(WaitTimeSeconds=10, **request)
    )
    return dict(client.describe_statement(Id=submitted["Id"]))


@pytest.fixture
def table(pg_conn: psycopg.Connection[Any]) -> Iterator[str]:
    name = f"gate_{uuid.uuid4().hex[:8]}"
    pg_conn.execute(f"create table {name} (a int, name varchar(8))")
    pg_conn.execute(f"insert into {name} values (1, null), (2, 'b')")
    yield name
    pg_conn.execute(f"drop table {name}")


def test_redshift_functions_work_from_any_client(
    redshift_data: RedshiftDataAPIServiceClient, table: str
) -> None:
    described = _run(
        redshift_data,
        Sql=f"select nvl(name, 'x') as name, getdate() is not null and sysdate is not null as ok from {table} order by a",
        **TARGET,
    )
    assert described["Status"] == "FINISHED", described.get("Error")
    records = redshift_data.get_statement_result(Id=described["Id"])["Records"]
    assert [r[0]["stringValue"] for r in records] == ["x", "b"]


def test_a_postgresql_only_statement_fails_naming_construct_line_and_page(
    redshift_data: RedshiftDataAPIServiceClient, table: str
) -> None:
    described = _run(
        redshift_data, Sql=f"insert into {table} (a) values (3)\nreturning a", **TARGET
    )
    assert described["Status"] == "FAILED"
    assert described["Error"].startswith("ERROR: line 2: RETURNING is PostgreSQL-only")
    assert "https://docs.aws.amazon.com/redshift/latest/dg/r_INSERT_30.html" in described["Error"]


def test_the_gate_can_be_turned_off_for_plain_postgresql(
    local_stack: LocalStack, redshift_data: RedshiftDataAPIServiceClient, table: str
) -> None:
    executor = local_stack.data_api.executor
    executor.redshift_gate = False
    try:
        described = _run(
            redshift_data, Sql=f"insert into {table} (a) values (3) returning a", **TARGET
        )
    finally:
        executor.redshift_gate = True
    assert described["Status"] == "FINISHED", described.get("Error")


def test_a_call_that_commits_is_refused_inside_a_transaction_batch(
    redshift_data: RedshiftDataAPIServiceClient, pg_conn: psycopg.Connection[Any], table: str
) -> None:
    pg_conn.execute(
        f"create or replace procedure public.{table}_commits() as $$"
        f" begin delete from public.{table}; commit; end; $$ language plpgsql"
    )
    described = _run(redshift_data, Sqls=["select 1", f"call public.{table}_commits()"], **TARGET)
    assert described["Status"] == "FAILED"
    assert f"COMMIT in public.{table}_commits" in described["Error"]
    assert "stored-procedure-transaction-management" in described["Error"]
    alone = _run(redshift_data, Sql=f"call public.{table}_commits()", **TARGET)
    assert alone["Status"] == "FINISHED", alone.get("Error")


def test_statements_run_as_the_db_user(
    redshift_data: RedshiftDataAPIServiceClient, pg_conn: psycopg.Connection[Any], table: str
) -> None:
    user = f"{table}_user"
    pg_conn.execute(f"create role {user} login")
    try:
        cluster = {"ClusterIdentifier": "local", "Database": "dev"}
        described = _run(redshift_data, Sql="select current_user", DbUser=user, **cluster)
        rows = redshift_data.get_statement_result(Id=described["Id"])["Records"]
        assert rows == [[{"stringValue": user}]]
        denied = _run(redshift_data, Sql=f"select * from {table}", DbUser=user, **cluster)
        assert denied["Status"] == "FAILED"
        assert f"permission denied for table {table}" in denied["Error"]
        admin = _run(redshift_data, Sql=f"select * from {table}", DbUser="awsuser", **cluster)
        assert admin["Status"] == "FINISHED"
        ghost = _run(redshift_data, Sql="select 1", DbUser=f"{table}_ghost", **cluster)
        assert ghost["Status"] == "FAILED"
        assert f'role "{table}_ghost" does not exist' in ghost["Error"]
    finally:
        pg_conn.execute(f"drop role {user}")
