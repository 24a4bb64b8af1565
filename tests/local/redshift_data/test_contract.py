"""Contract tests of the local Data API, driven only through a real boto3 client."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from local.stack import LocalStack
from tests.conftest import data_api_client


def modeled_field(error: ClientError, name: str) -> Any:
    """A modeled member of an error (botocore puts them at the top of the response)."""
    return dict(error.response).get(name)


TARGET: dict[str, Any] = {
    "ClusterIdentifier": "local-cluster",
    "Database": "dev",
    "DbUser": "awsuser",
}


def run(client: RedshiftDataAPIServiceClient, sql: str, **extra: Any) -> dict[str, Any]:
    """Submit and wait for the end; returns DescribeStatement."""
    submitted = client.execute_statement(Sql=sql, **TARGET, **extra)
    described = client.describe_statement(Id=submitted["Id"], WaitTimeSeconds=30)
    return dict(described)


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


@pytest.fixture
def stage_delays(local_stack: LocalStack) -> Iterator[dict[str, float]]:
    delays = local_stack.data_api.stage_delays
    delays.clear()
    yield delays
    delays.clear()


def test_select_finishes_with_typed_records(redshift_data: RedshiftDataAPIServiceClient) -> None:
    described = run(
        redshift_data,
        "select 42 as answer, 'text'::varchar as word, 12.50::numeric(7,2) as price, "
        "2.5::float8 as ratio, true as flag, null::int as missing, date '2024-02-29' as day",
    )
    assert described["Status"] == "FINISHED"
    assert described["HasResultSet"] is True
    assert described["ResultRows"] == 1
    assert described["RedshiftPid"] > 0
    assert described["Duration"] >= 0
    assert described["UpdatedAt"] >= described["CreatedAt"]
    result = redshift_data.get_statement_result(Id=described["Id"])
    assert result["Records"] == [
        [
            {"longValue": 42},
            {"stringValue": "text"},
            {"stringValue": "12.50"},
            {"doubleValue": 2.5},
            {"booleanValue": True},
            {"isNull": True},
            {"stringValue": "2024-02-29"},
        ]
    ]
    assert [c["name"] for c in result["ColumnMetadata"]] == [
        "answer", "word", "price", "ratio", "flag", "missing", "day",
    ]  # fmt: skip
    assert [c["typeName"] for c in result["ColumnMetadata"]] == [
        "int4", "varchar", "numeric", "float8", "bool", "int4", "date",
    ]  # fmt: skip
    assert result["TotalNumRows"] == 1
    assert "NextToken" not in result


def test_long_statement_is_seen_in_every_status(
    redshift_data: RedshiftDataAPIServiceClient, stage_delays: dict[str, float]
) -> None:
    stage_delays.update({"SUBMITTED": 0.6, "PICKED": 0.6})
    submitted = redshift_data.execute_statement(Sql="select pg_sleep(0.6)", **TARGET)
    seen: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = redshift_data.describe_statement(Id=submitted["Id"])["Status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("FINISHED", "FAILED", "ABORTED"):
            break
        time.sleep(0.05)
    assert seen == ["SUBMITTED", "PICKED", "STARTED", "FINISHED"]


def test_failed_statement_carries_postgres_error(
    redshift_data: RedshiftDataAPIServiceClient,
) -> None:
    described = run(redshift_data, "select * from no_such_table_anywhere")
    assert described["Status"] == "FAILED"
    assert described["Error"] == 'ERROR: relation "no_such_table_anywhere" does not exist'
    with pytest.raises(ClientError) as exc:
        redshift_data.get_statement_result(Id=described["Id"])
    assert error_code(exc) == "ResourceNotFoundException"


def test_cancel_aborts_a_running_statement(
    redshift_data: RedshiftDataAPIServiceClient, pg_conn: psycopg.Connection[Any]
) -> None:
    submitted = redshift_data.execute_statement(Sql="select pg_sleep(30)", **TARGET)
    deadline = time.monotonic() + 10
    while redshift_data.describe_statement(Id=submitted["Id"])["Status"] != "STARTED":
        assert time.monotonic() < deadline, "statement never started"
        time.sleep(0.05)
    pid = redshift_data.describe_statement(Id=submitted["Id"])["RedshiftPid"]
    # STARTED comes once the statement has its backend; the query itself follows within
    # milliseconds (the backend is "idle in transaction" in between, seen on a loaded
    # machine). Queries run as server-side cursors (fetched page by page).
    while True:
        running = pg_conn.execute(
            "select application_name, state from pg_stat_activity where pid = %s", [pid]
        ).fetchone()
        if (running is not None and running[1] == "active") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    try:
        assert running == (f"local-data-api {submitted['Id']}", "active")
    except AssertionError:  # do not leave a 30 s statement to the next test's quota
        redshift_data.cancel_statement(Id=submitted["Id"])
        raise

    assert redshift_data.cancel_statement(Id=submitted["Id"])["Status"] is True
    described = redshift_data.describe_statement(Id=submitted["Id"], WaitTimeSeconds=10)
    assert described["Status"] == "ABORTED"
    assert "cancel" in described["Error"].lower()
    # Cancelling again answers like the real API for a statement that is not running.
    with pytest.raises(ClientError) as exc:
        redshift_data.cancel_statement(Id=submitted["Id"])
    assert error_code(exc) == "ValidationException"
    assert "ABORTED" in exc.value.response["Error"]["Message"]


def test_cancel_before_start_aborts_without_running(
    redshift_data: RedshiftDataAPIServiceClient,
    stage_delays: dict[str, float],
    pg_conn: psycopg.Connection[Any],
) -> None:
    pg_conn.execute("create table if not exists cancel_probe (n int)")
    pg_conn.execute("truncate cancel_probe")
    stage_delays["SUBMITTED"] = 0.5
    submitted = redshift_data.execute_statement(Sql="insert into cancel_probe values (1)", **TARGET)
    redshift_data.cancel_statement(Id=submitted["Id"])
    described = redshift_data.describe_statement(Id=submitted["Id"], WaitTimeSeconds=10)
    assert described["Status"] == "ABORTED"
    assert pg_conn.execute("select count(*) from cancel_probe").fetchone() == (0,)


def test_results_paginate_with_next_token(local_stack: LocalStack) -> None:
    client = data_api_client(local_stack.endpoint_url)
    page_rows = local_stack.data_api.executor.page_rows
    total = page_rows * 2 + 7
    described = run(client, f"select g as n from generate_series(1, {total}) g order by g")
    assert described["ResultRows"] == total
    first = client.get_statement_result(Id=described["Id"])
    assert len(first["Records"]) == page_rows
    assert first["TotalNumRows"] == total
    assert "NextToken" in first
    paginator = client.get_paginator("get_statement_result")
    numbers = [
        record[0]["longValue"]
        for page in paginator.paginate(Id=described["Id"])
        for record in page["Records"]
    ]
    assert numbers == list(range(1, total + 1))
    with pytest.raises(ClientError) as exc:
        client.get_statement_result(Id=described["Id"], NextToken="not-a-token")
    assert error_code(exc) == "ValidationException"


@pytest.mark.parametrize(
    "value",
    [
        "O'Brien",
        "'; drop table param_probe; --",
        "Robert'); DELETE FROM param_probe WHERE ('1'='1",
        "back\\slash $$ dollar $tag$ :not_a_param %s %(x)s",
        "😀 unicode \t tab",
    ],
)
def test_parameters_are_stored_verbatim(
    redshift_data: RedshiftDataAPIServiceClient, pg_conn: psycopg.Connection[Any], value: str
) -> None:
    pg_conn.execute("create table if not exists param_probe (id text, body text, n int)")
    key = str(uuid.uuid4())
    described = run(
        redshift_data,
        "insert into param_probe (id, body, n) values (:id, :body, :n) -- a :comment",
        Parameters=[
            {"name": "id", "value": key},
            {"name": "body", "value": value},
            {"name": "n", "value": "7"},
        ],
    )
    assert described["Status"] == "FINISHED", described.get("Error")
    assert described["QueryParameters"][1] == {"name": "body", "value": value}
    assert pg_conn.execute("select body, n from param_probe where id = %s", [key]).fetchone() == (
        value,
        7,
    )
    assert pg_conn.execute("select to_regclass('param_probe')").fetchone() == ("param_probe",)


def test_parameters_cast_like_redshift(redshift_data: RedshiftDataAPIServiceClient) -> None:
    described = run(
        redshift_data,
        "select :d::date + 1 as next_day, :n::int * 2 as doubled, ':lit' as literal, 1::text as casted",
        Parameters=[{"name": "d", "value": "2024-02-28"}, {"name": "n", "value": "21"}],
    )
    assert described["Status"] == "FINISHED", described.get("Error")
    records = redshift_data.get_statement_result(Id=described["Id"])["Records"]
    assert records == [
        [
            {"stringValue": "2024-02-29"},
            {"longValue": 42},
            {"stringValue": ":lit"},
            {"stringValue": "1"},
        ]
    ]


def test_missing_or_unused_parameter_is_rejected(
    redshift_data: RedshiftDataAPIServiceClient,
) -> None:
    with pytest.raises(ClientError) as exc:
        redshift_data.execute_statement(
            Sql="select :a, :b", Parameters=[{"name": "a", "value": "1"}], **TARGET
        )
    assert error_code(exc) == "ValidationException"
    assert ":b" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        redshift_data.execute_statement(
            Sql="select :a",
            Parameters=[{"name": "a", "value": "1"}, {"name": "extra", "value": "2"}],
            **TARGET,
        )
    assert error_code(exc) == "ValidationException"
    assert "'extra'" in exc.value.response["Error"]["Message"]


def test_client_token_replays_without_running_again(
    redshift_data: RedshiftDataAPIServiceClient, pg_conn: psycopg.Connection[Any]
) -> None:
    pg_conn.execute("create table if not exists token_probe (token text)")
    token = f"night-2024-01-01-load-{uuid.uuid4()}"[:64]
    request: dict[str, Any] = {
        "Sql": "insert into token_probe values (:token)",
        "Parameters": [{"name": "token", "value": token}],
        "ClientToken": token,
        **TARGET,
    }
    first = redshift_data.execute_statement(**request)
    redshift_data.describe_statement(Id=first["Id"], WaitTimeSeconds=10)
    second = redshift_data.execute_statement(**request, WaitTimeSeconds=5)
    assert second["Id"] == first["Id"]
    assert second["Status"] == "FINISHED"
    count = pg_conn.execute("select count(*) from token_probe where token = %s", [token]).fetchone()
    assert count == (1,)

    changed = {**request, "Sql": "insert into token_probe values (:token || '-changed')"}
    with pytest.raises(ClientError) as exc:
        redshift_data.execute_statement(**changed)
    assert error_code(exc) == "ValidationException"
    assert "ClientToken" in exc.value.response["Error"]["Message"]
    assert "different request" in exc.value.response["Error"]["Message"]


def test_client_token_expires_after_eight_hours(
    redshift_data: RedshiftDataAPIServiceClient, pg_conn: psycopg.Connection[Any]
) -> None:
    token = str(uuid.uuid4())
    first = redshift_data.execute_statement(Sql="select 1", ClientToken=token, **TARGET)
    pg_conn.execute(
        "update local_data_api.client_tokens set created_at = now() - interval '8 hours 1 minute' "
        "where token = %s",
        [token],
    )
    again = redshift_data.execute_statement(Sql="select 1", ClientToken=token, **TARGET)
    assert again["Id"] != first["Id"]


def test_statements_are_scoped_to_the_submitting_identity(local_stack: LocalStack) -> None:
    owner = data_api_client(local_stack.endpoint_url, "AKIDOWNER")
    stranger = data_api_client(local_stack.endpoint_url, "AKIDSTRANGER")
    name = f"scoped-{uuid.uuid4()}"
    described = run(owner, "select 1", StatementName=name)
    for call in (
        lambda: stranger.describe_statement(Id=described["Id"]),
        lambda: stranger.get_statement_result(Id=described["Id"]),
        lambda: stranger.cancel_statement(Id=described["Id"]),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == "ResourceNotFoundException"
        assert modeled_field(exc.value, "ResourceId") == described["Id"]
    assert stranger.list_statements(StatementName=name)["Statements"] == []
    assert [s["Id"] for s in owner.list_statements(StatementName=name)["Statements"]] == [
        described["Id"]
    ]
    # The same ClientToken from another identity is a different request, not a replay.
    token = str(uuid.uuid4())
    mine = owner.execute_statement(Sql="select 1", ClientToken=token, **TARGET)
    theirs = stranger.execute_statement(Sql="select 2", ClientToken=token, **TARGET)
    assert mine["Id"] != theirs["Id"]


def test_wait_time_seconds_returns_as_soon_as_the_statement_ends(
    redshift_data: RedshiftDataAPIServiceClient,
) -> None:
    started = time.monotonic()
    submitted = redshift_data.execute_statement(
        Sql="select pg_sleep(0.3)", WaitTimeSeconds=10, **TARGET
    )
    elapsed = time.monotonic() - started
    assert submitted["Status"] == "FINISHED"
    assert 0.3 <= elapsed < 5
    result = redshift_data.get_statement_result(Id=submitted["Id"], WaitTimeSeconds=1)
    assert result["TotalNumRows"] == 1


def test_wait_time_seconds_runs_out_on_a_long_statement(
    redshift_data: RedshiftDataAPIServiceClient,
) -> None:
    submitted = redshift_data.execute_statement(Sql="select pg_sleep(30)", **TARGET)
    started = time.monotonic()
    described = redshift_data.describe_statement(Id=submitted["Id"], WaitTimeSeconds=1)
    assert 0.9 <= time.monotonic() - started < 5
    assert described["Status"] in ("PICKED", "STARTED")
    with pytest.raises(ClientError) as exc:
        redshift_data.get_statement_result(Id=submitted["Id"])
    assert error_code(exc) == "ValidationException"
    redshift_data.cancel_statement(Id=submitted["Id"])


def test_active_statement_limit(local_stack: LocalStack) -> None:
    client = data_api_client(local_stack.endpoint_url, max_attempts=1)
    service = local_stack.data_api
    saved = service.max_active_statements
    service.max_active_statements = 1
    try:
        running = client.execute_statement(Sql="select pg_sleep(30)", **TARGET)
        with pytest.raises(ClientError) as exc:
            client.execute_statement(Sql="select 1", **TARGET)
        assert error_code(exc) == "ActiveStatementsExceededException"
        client.cancel_statement(Id=running["Id"])
        client.describe_statement(Id=running["Id"], WaitTimeSeconds=10)
        assert client.execute_statement(Sql="select 1", **TARGET)["Id"]
    finally:
        service.max_active_statements = saved


def test_unknown_database_fails_with_the_connection_error(
    redshift_data: RedshiftDataAPIServiceClient,
) -> None:
    submitted = redshift_data.execute_statement(
        Sql="select 1", ClusterIdentifier="local-cluster", Database="no_such_db"
    )
    described = redshift_data.describe_statement(Id=submitted["Id"], WaitTimeSeconds=10)
    assert described["Status"] == "FAILED"
    assert 'database "no_such_db" does not exist' in described["Error"]


def test_a_statement_without_a_result_set_has_no_result(
    redshift_data: RedshiftDataAPIServiceClient,
) -> None:
    described = run(redshift_data, "create temp table no_result (n int)")
    assert described["Status"] == "FINISHED"
    assert described["HasResultSet"] is False
    with pytest.raises(redshift_data.exceptions.ResourceNotFoundException) as exc:
        redshift_data.get_statement_result(Id=described["Id"])
    assert "does not have result" in exc.value.response["Error"]["Message"]
