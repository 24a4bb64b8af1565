"""The exact requests sent to AWS, asserted by a botocore Stubber on a real client."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.stub import Stubber
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from tasks.jobs import InvalidRequestError, RunKey
from tasks.redshift_data import RedshiftTarget
from tasks.redshift_data.identifiers import call_procedure_sql
from tasks.redshift_data.requests import build_submit_request
from tasks.redshift_data.submit import execute_and_wait

Stubbed = tuple[RedshiftDataAPIServiceClient, Stubber]
SID = "d9b6c0c9-0747-4bf4-b142-e8883122f766"
SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:etl-AbCdEf"


def finished(**extra: Any) -> dict[str, Any]:
    return {
        "Id": SID,
        "Status": "FINISHED",
        "Duration": 1_500_000_000,
        "ResultRows": 0,
        "RedshiftQueryId": 77,
        "HasResultSet": False,
        **extra,
    }


def test_provisioned_procedure_call_exact_request(stubbed: Stubbed) -> None:
    client, stub = stubbed
    target = RedshiftTarget(database="dev", cluster_identifier="mystore-dw", db_user="etl")
    sql, params = call_procedure_sql(
        "stg_mystore", "sp_load_sale_fact", ["INCREMENTAL", None, None]
    )
    stub.add_response(
        "execute_statement",
        {"Id": SID},
        {
            "Database": "dev",
            "ClusterIdentifier": "mystore-dw",
            "DbUser": "etl",
            "Sql": 'CALL "stg_mystore"."sp_load_sale_fact"(:p1, NULL, NULL)',
            "Parameters": [{"name": "p1", "value": "INCREMENTAL"}],
            "StatementName": "load-sales",
            "ClientToken": "token-1",
        },
    )
    stub.add_response("describe_statement", finished(), {"Id": SID, "WaitTimeSeconds": 30})
    result = execute_and_wait(
        client, target, sql, parameters=params, statement_name="load-sales", client_token="token-1"
    )
    assert (result.statement_id, result.query_id, result.status) == (SID, 77, "FINISHED")
    assert result.duration_seconds == 1.5
    assert result.rows_affected == 0


def test_serverless_batch_exact_request(stubbed: Stubbed) -> None:
    client, stub = stubbed
    target = RedshiftTarget(database="dev", workgroup_name="mystore-wg", secret_arn=SECRET)
    stub.add_response(
        "batch_execute_statement",
        {"Id": SID},
        {
            "Database": "dev",
            "WorkgroupName": "mystore-wg",
            "SecretArn": SECRET,
            "Sqls": ["truncate stg_mystore.wrk_sale_fact", "insert into t select 1"],
            "ExecutionMode": "AUTO_COMMIT",
            "ClientToken": "token-2",
        },
    )
    subs = [
        {
            "Id": f"{SID}:1",
            "Status": "FINISHED",
            "RedshiftQueryId": 5,
            "Duration": 10,
            "ResultRows": 0,
        },
        {
            "Id": f"{SID}:2",
            "Status": "FINISHED",
            "RedshiftQueryId": 6,
            "Duration": 20,
            "ResultRows": 1,
        },
    ]
    stub.add_response(
        "describe_statement", finished(SubStatements=subs), {"Id": SID, "WaitTimeSeconds": 30}
    )
    result = execute_and_wait(
        client,
        target,
        ["truncate stg_mystore.wrk_sale_fact", "insert into t select 1"],
        client_token="token-2",
        execution_mode="AUTO_COMMIT",
    )
    assert [s.rows_affected for s in result.sub_statements] == [0, 1]
    assert [s.query_id for s in result.sub_statements] == [5, 6]


def test_a_client_token_is_always_sent(stubbed: Stubbed) -> None:
    """Without one, botocore's own retry after a dropped connection could run SQL twice."""
    client, stub = stubbed
    target = RedshiftTarget(database="dev", workgroup_name="mystore-wg")
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "before-parameter-build.redshift-data.ExecuteStatement",
        lambda params, **_: sent.append(dict(params)),
    )
    stub.add_response("execute_statement", {"Id": SID})
    stub.add_response("describe_statement", finished())
    execute_and_wait(client, target, "select 1")
    assert len(sent[0]["ClientToken"]) == 36


def test_run_key_name_and_token_are_deterministic() -> None:
    target = RedshiftTarget(database="dev", workgroup_name="mystore-wg")
    run = RunKey("nightly", dt.date(2026, 11, 25), "load_customer_dim", 2)
    op, request = build_submit_request(
        target,
        "call x()",
        statement_name=run.statement_name,
        client_token=run.client_token(target.scope()),
    )
    assert op == "ExecuteStatement"
    assert request["StatementName"] == "nightly/2026-11-25/load_customer_dim/attempt-2"
    assert request["ClientToken"] == RunKey(
        "nightly", dt.date(2026, 11, 25), "load_customer_dim", 2
    ).client_token(target.scope())
    other = RedshiftTarget(database="dev", workgroup_name="other-wg")
    assert run.client_token(other.scope()) != run.client_token(target.scope())
    assert run.client_token(target.scope()) != run.with_attempt(3).client_token(target.scope())


@pytest.mark.parametrize(
    ("sql", "kwargs", "message"),
    [
        ("", {}, "sql must not be empty"),
        ([], {}, "1 to 40 statements, got 0"),
        (["select 1"] * 41, {}, "got 41"),
        (["select 1", " "], {}, "batch statement 1"),
        (
            "select :a",
            {"parameters": {"a": None}},
            "parameter 'a' is None: the Data API cannot bind NULL",
        ),
        ("select :a", {"parameters": {"a": ""}}, "cannot bind NULL or an empty string"),
        ("select :a", {"parameters": {"a-b": 1}}, "parameter name 'a-b' is invalid"),
        ("select :a", {"parameters": {"a": object()}}, "has type object"),
        ("select 1", {"execution_mode": "AUTO_COMMIT"}, "only to a batch"),
        (["select 1"], {"execution_mode": "NOPE"}, "'NOPE' is invalid"),
        ("select 1", {"client_token": "x" * 65}, "client_token must be 1 to 64"),
    ],
)
def test_bad_requests_fail_before_any_call(
    stubbed: Stubbed, sql: Any, kwargs: dict[str, Any], message: str
) -> None:
    client, _ = stubbed  # no responses queued: any AWS call would fail the test
    target = RedshiftTarget(database="dev", workgroup_name="mystore-wg")
    with pytest.raises(InvalidRequestError, match=message):
        execute_and_wait(client, target, sql, **kwargs)
