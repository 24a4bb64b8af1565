"""Against the local Data API endpoint with real boto3: outcomes, results, parameters, faults.

Executions are counted by the procedure itself (each call inserts a row) and by the
endpoint (ListStatements), so "exactly once" is checked on both sides.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from local.stack import LocalStack
from tasks.jobs import InvalidRequestError, SubmitError, WaitPolicy, safe_to_retry
from tasks.redshift_data import (
    RedshiftTarget,
    RunKey,
    StatementAbortedError,
    StatementFailedError,
    StatementResult,
    execute_statement,
)
from tasks.redshift_data import submit as submit_module
from tasks.redshift_data.cancel import cancel_statement
from tasks.redshift_data.errors import ResultTooLargeError, StatementLookupError
from tasks.redshift_data.identifiers import call_procedure_sql
from tasks.redshift_data.requests import build_submit_request
from tasks.redshift_data.results import get_rows
from tasks.redshift_data.submit import execute_and_wait, submit_statement
from tasks.redshift_data.waiting import wait_for_statement
from tests.conftest import data_api_client

TARGET = RedshiftTarget(database="dev", cluster_identifier="local-test", db_user="awsuser")
PgConn = psycopg.Connection[tuple[Any, ...]]

SETUP = """
create schema if not exists rsd_test;
create table if not exists rsd_test.calls (tag text, a text, b text, c int, d date);
create or replace procedure rsd_test.sp_record(tag text, a text, b text, c int, d date)
language plpgsql as $$ begin
  insert into rsd_test.calls values (tag, a, b, c, d);
end $$;
create or replace procedure rsd_test.sp_slow(tag text, seconds float)
language plpgsql as $$ begin
  insert into rsd_test.calls (tag) values (tag);
  perform pg_sleep(seconds);
end $$;
"""


@pytest.fixture(scope="module")
def schema(local_stack: LocalStack) -> None:
    with psycopg.connect(local_stack.pg_dsn, autocommit=True) as conn:
        conn.execute(SETUP)


@pytest.fixture
def tag() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def fresh_client(local_stack: LocalStack) -> Iterator[RedshiftDataAPIServiceClient]:
    """A client without botocore retries, so our own retry logic is what is tested."""
    local_stack.endpoint.faults.clear()
    yield data_api_client(local_stack.endpoint_url, max_attempts=1)
    local_stack.endpoint.faults.clear()


def count_calls(client: RedshiftDataAPIServiceClient, operation: str = "*") -> list[str]:
    seen: list[str] = []
    client.meta.events.register(
        f"before-send.redshift-data.{operation}",
        lambda request, **_: seen.append(request.headers.get("X-Amz-Target", b"").decode()),
    )
    return seen


def run_keyed(
    client: RedshiftDataAPIServiceClient, sql: str, key: RunKey, **kwargs: Any
) -> StatementResult:
    """``execute_statement`` with a run key, on a target whose client is ``client``."""
    target = RedshiftTarget(database="dev", cluster_identifier="local-test", db_user="awsuser")
    target._client = client  # the seam: the client the target would build, made by the test
    return execute_statement.with_options(retries=0)(sql, target=target, run_key=key, **kwargs)


def rows_for(pg_conn: PgConn, tag: str) -> list[tuple[Any, ...]]:
    return pg_conn.execute("select a, b, c, d from rsd_test.calls where tag = %s", [tag]).fetchall()


def statements_named(client: RedshiftDataAPIServiceClient, prefix: str) -> list[dict[str, Any]]:
    return list(client.list_statements(StatementName=prefix, Status="ALL")["Statements"])


def test_success_returns_ids_duration_and_rows(redshift_data: RedshiftDataAPIServiceClient) -> None:
    result = execute_and_wait(redshift_data, TARGET, "select pg_sleep(0.3)")
    assert result.status == "FINISHED"
    assert result.duration_seconds is not None and result.duration_seconds >= 0.3
    assert result.query_id is not None and result.has_result_set
    assert len(get_rows(redshift_data, result.statement_id)) == 1


def test_failed_carries_the_database_message(
    redshift_data: RedshiftDataAPIServiceClient, schema: None
) -> None:
    sql, params = call_procedure_sql("rsd_test", "sp_missing", ["x"])
    with pytest.raises(StatementFailedError) as info:
        execute_and_wait(redshift_data, TARGET, sql, parameters=params)
    err = info.value
    assert "sp_missing" in (err.error or "") and "does not exist" in (err.error or "")
    assert err.statement_id and err.sql == 'CALL "rsd_test"."sp_missing"(:p1)'
    assert "does not exist" in str(err)


def test_aborted_is_reported_as_aborted(
    redshift_data: RedshiftDataAPIServiceClient, schema: None, tag: str
) -> None:
    sql, params = call_procedure_sql("rsd_test", "sp_slow", [tag, 30])
    _, request = build_submit_request(TARGET, sql, parameters=params)
    statement_id = submit_statement(redshift_data, "ExecuteStatement", request)
    deadline = time.monotonic() + 10
    while redshift_data.describe_statement(Id=statement_id)["Status"] != "STARTED":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert cancel_statement(redshift_data, statement_id) == "cancelled"
    with pytest.raises(StatementAbortedError):
        wait_for_statement(redshift_data, statement_id)
    assert cancel_statement(redshift_data, statement_id) == "already-ended"


def test_results_over_several_pages(redshift_data: RedshiftDataAPIServiceClient) -> None:
    result = execute_and_wait(
        redshift_data,
        TARGET,
        "select n, (n * 1.25)::numeric(9,2) as price, date '2024-01-01' + n as day, "
        "case when n % 2 = 0 then null else 'it''s ' || n end as label "
        "from generate_series(1, 2500) as n order by n",
    )
    client = data_api_client(redshift_data.meta.endpoint_url)
    pages = count_calls(client, "GetStatementResult")
    # same identity (access key), so the statement is visible to this client too
    rows = get_rows(client, result.statement_id)
    assert len(pages) == 3  # the endpoint pages 1000 rows at a time
    assert len(rows) == 2500
    assert [r["n"] for r in rows] == list(range(1, 2501))
    assert rows[0] == {
        "n": 1,
        "price": Decimal("1.25"),
        "day": dt.date(2024, 1, 2),
        "label": "it's 1",
    }
    assert rows[1]["label"] is None
    with pytest.raises(ResultTooLargeError, match="2500 rows, more than max_rows=2000"):
        get_rows(client, result.statement_id, max_rows=2000)


@pytest.mark.parametrize(
    "value",
    ["O'Reilly", 'say "hi"', "x'); drop table rsd_test.calls; --", "$$; select 1; $$", "a\\b\nc"],
)
def test_parameters_arrive_verbatim(
    redshift_data: RedshiftDataAPIServiceClient, schema: None, pg_conn: PgConn, tag: str, value: str
) -> None:
    sql, params = call_procedure_sql(
        "rsd_test", "sp_record", [tag, value, None, 7, dt.date(2024, 2, 29)]
    )
    execute_and_wait(redshift_data, TARGET, sql, parameters=params)
    assert rows_for(pg_conn, tag) == [(value, None, 7, dt.date(2024, 2, 29))]


def test_empty_string_and_null_are_kept_apart(
    redshift_data: RedshiftDataAPIServiceClient, schema: None, pg_conn: PgConn, tag: str
) -> None:
    sql, params = call_procedure_sql("rsd_test", "sp_record", [tag, "", None, None, None])
    execute_and_wait(redshift_data, TARGET, sql, parameters=params)
    assert rows_for(pg_conn, tag) == [("", None, None, None)]


@pytest.mark.parametrize(
    "name",
    ["x(); drop table y", 'sp"record', "sp'record", "a" * 128, "sp_r\u0435cord", "sp record"],
)
def test_rejected_identifiers_send_nothing(local_stack: LocalStack, name: str) -> None:
    client = data_api_client(local_stack.endpoint_url)
    sent = count_calls(client)
    with pytest.raises(InvalidRequestError):
        sql, params = call_procedure_sql("rsd_test", name, [])
        execute_and_wait(client, TARGET, sql, parameters=params)
    with pytest.raises(InvalidRequestError):
        call_procedure_sql(name, "sp_record", [])
    assert sent == []


# --- reliability --------------------------------------------------------------------------


@pytest.mark.usefixtures("prefect_settings")
def test_dropped_submit_connection_reattaches_one_execution(
    local_stack: LocalStack,
    fresh_client: RedshiftDataAPIServiceClient,
    schema: None,
    pg_conn: PgConn,
    tag: str,
) -> None:
    """(a) The endpoint ran the submit, the answer was lost; the retry gets the same statement."""
    step = RunKey(tag, dt.date(2026, 11, 25), "record")
    sql, params = call_procedure_sql("rsd_test", "sp_record", [tag, "once", None, 1, None])
    local_stack.endpoint.faults.drop_after("ExecuteStatement", 1)
    submits = count_calls(fresh_client, "ExecuteStatement")
    result = run_keyed(fresh_client, sql, step, parameters=params)
    assert len(submits) == 2  # the dropped one and its retry with the same ClientToken
    assert rows_for(pg_conn, tag) == [("once", None, 1, None)]
    assert [s["Id"] for s in statements_named(fresh_client, step.step_prefix)] == [
        result.statement_id
    ]


@pytest.mark.usefixtures("prefect_settings")
def test_lost_submit_then_new_invocation_reattaches(
    local_stack: LocalStack,
    fresh_client: RedshiftDataAPIServiceClient,
    schema: None,
    pg_conn: PgConn,
    tag: str,
) -> None:
    """(a') Every answer lost: the call fails, and the next invocation finds the statement."""
    quick = WaitPolicy(submit_interval=0.01)  # the submit's pauses, not its 5 tries
    step = RunKey(tag, dt.date(2026, 11, 25), "record")
    sql, params = call_procedure_sql("rsd_test", "sp_slow", [tag, 0.5])
    local_stack.endpoint.faults.drop_after("ExecuteStatement", 100)
    with pytest.raises(SubmitError):
        run_keyed(fresh_client, sql, step, parameters=params, policy=quick)  # with backoff
    local_stack.endpoint.faults.clear()
    submits = count_calls(fresh_client, "ExecuteStatement")
    result = run_keyed(fresh_client, sql, step, parameters=params)
    assert submits == []  # found by name, not submitted again
    assert result.statement_name == step.with_attempt(1).statement_name
    assert len(rows_for(pg_conn, tag)) == 1
    assert len(statements_named(fresh_client, step.step_prefix)) == 1


@pytest.mark.usefixtures("prefect_settings")
def test_failed_attempt_is_followed_by_a_fresh_one(
    fresh_client: RedshiftDataAPIServiceClient, schema: None, pg_conn: PgConn, tag: str
) -> None:
    step = RunKey(tag, dt.date(2026, 11, 25), "record")
    with pytest.raises(StatementFailedError):
        run_keyed(fresh_client, "select 1/0", step)
    again = run_keyed(fresh_client, "select 1", step)
    assert again.statement_name == step.with_attempt(2).statement_name
    assert run_keyed(fresh_client, "select 1", step).statement_id == again.statement_id
    forced = run_keyed(fresh_client, "select 1", step, force=True)
    assert forced.statement_name == step.with_attempt(3).statement_name


def test_throttling_during_the_wait_does_not_fail(
    local_stack: LocalStack, fresh_client: RedshiftDataAPIServiceClient
) -> None:
    """(c)"""
    describes = count_calls(fresh_client, "DescribeStatement")
    local_stack.endpoint.faults.throttle("DescribeStatement", 4)
    result = execute_and_wait(
        fresh_client, TARGET, "select pg_sleep(1)", policy=WaitPolicy(initial_interval=0.05)
    )
    assert result.status == "FINISHED"
    assert len(describes) >= 5


@pytest.mark.usefixtures("prefect_settings")
def test_throttled_reattach_lookup_is_retried_and_reattaches(
    local_stack: LocalStack, fresh_client: RedshiftDataAPIServiceClient, tag: str
) -> None:
    """Four throttled ListStatements calls (more than botocore's own retries) are ridden
    out: the second invocation still finds the first's statement instead of failing."""
    step = RunKey(tag, dt.date(2026, 11, 25), "record")
    policy = WaitPolicy(initial_interval=0.01, max_interval=0.05)
    first = run_keyed(fresh_client, "select 1", step, policy=policy)
    lists = count_calls(fresh_client, "ListStatements")
    submits = count_calls(fresh_client, "ExecuteStatement")
    local_stack.endpoint.faults.throttle("ListStatements", 4)
    again = run_keyed(fresh_client, "select 1", step, policy=policy)
    assert (again.statement_id, again.reattached) == (first.statement_id, True)
    assert len(lists) == 5 and submits == []


def test_reattach_lookup_beyond_the_budget_names_the_statement(
    local_stack: LocalStack, fresh_client: RedshiftDataAPIServiceClient, tag: str
) -> None:
    step = RunKey(tag, dt.date(2026, 11, 25), "record")
    submits = count_calls(fresh_client, "ExecuteStatement")
    local_stack.endpoint.faults.throttle("ListStatements", 4)
    policy = WaitPolicy(initial_interval=0.01, max_interval=0.05, transient_error_budget=3)
    with pytest.raises(StatementLookupError) as caught:
        submit_module.submit_or_reattach(fresh_client, TARGET, "select 1", step, policy=policy)
    message = str(caught.value)
    assert step.step_prefix in message and "ThrottlingException" in message
    assert caught.value.statement_name == step.step_prefix
    assert safe_to_retry(caught.value) and submits == []


def test_reattach_lookup_follows_every_page(
    fresh_client: RedshiftDataAPIServiceClient, tag: str
) -> None:
    """A night with more statements than one ListStatements page: the attempt on a later
    page is still found (the local endpoint pages like the Data API, 100 a page)."""
    step = RunKey(tag, dt.date(2026, 11, 25), "record")
    for attempt in range(1, 106):
        run = step.with_attempt(attempt)
        _, request = build_submit_request(
            TARGET, "select 1", statement_name=run.statement_name, client_token=str(uuid.uuid4())
        )
        submit_statement(fresh_client, "ExecuteStatement", request)
    listed = statements_named(fresh_client, step.step_prefix)
    assert len(listed) < 105  # the first page alone would miss some
    prior = submit_module.find_prior_statements(fresh_client, step)
    assert sorted(p.attempt for p in prior) == list(range(1, 106))


@pytest.mark.parametrize(
    "other",
    [
        RedshiftTarget(database="dev", cluster_identifier="local-other", db_user="awsuser"),
        RedshiftTarget(database="postgres", cluster_identifier="local-test", db_user="awsuser"),
    ],
    ids=["another-cluster", "another-database"],
)
def test_the_same_night_on_another_warehouse_is_not_reattached(
    fresh_client: RedshiftDataAPIServiceClient, tag: str, other: RedshiftTarget
) -> None:
    """ListStatements answers with what the IAM role ran on any warehouse: the same step's
    FINISHED attempt on another cluster or database is not this warehouse's load, so it is
    submitted here (reattaching would load nothing here and report the step done)."""
    step = RunKey(tag, dt.date(2026, 11, 25), "record")
    elsewhere = execute_and_wait(
        fresh_client, other, "select 1", statement_name=step.with_attempt(1).statement_name
    )
    assert elsewhere.status == "FINISHED"
    assert (
        submit_module.find_prior_statements(fresh_client, step, where=TARGET.statement_filter())
        == []
    )
    here = submit_module.submit_or_reattach(fresh_client, TARGET, "select 1", step)
    assert (here.reattached, here.attempt) == (False, 1)
    assert here.statement_id != elsewhere.statement_id
    # the other warehouse still finds its own attempt by the same name
    mine = submit_module.find_prior_statements(fresh_client, step, where=other.statement_filter())
    assert [p.statement_id for p in mine] == [elsewhere.statement_id]
