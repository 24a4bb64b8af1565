"""Request validation on literal request bodies: botocore's model first, then the Data
API's own rules, exactly as the endpoint checks a request."""

from __future__ import annotations

from typing import Any

import pytest

from local.core import RequestValidator, ServiceError, service_model
from local.redshift_data.requests import (
    ListRequest,
    SubmitRequest,
    make_next_token,
    parse_list,
    parse_next_token,
    parse_submit,
    request_fingerprint,
)

REQUESTS = RequestValidator(service_model("redshift-data"))


def submit_request(operation: str, body: dict[str, Any]) -> SubmitRequest:
    REQUESTS.check(operation, body)
    return parse_submit(operation, body)


def list_request(body: dict[str, Any]) -> ListRequest:
    REQUESTS.check("ListStatements", body)
    return parse_list(body)


BASE: dict[str, Any] = {"Sql": "select 1", "ClusterIdentifier": "my-cluster", "Database": "dev"}


def rejected(operation: str, body: dict[str, Any]) -> str:
    with pytest.raises(ServiceError) as exc:
        submit_request(operation, body)
    assert exc.value.code == "ValidationException"
    return exc.value.message


def test_minimal_execute_request() -> None:
    request = submit_request("ExecuteStatement", BASE)
    assert request.sqls == ("select 1",)
    assert request.is_batch is False
    assert request.database == "dev"
    assert request.execution_mode == "TRANSACTION"
    assert request.client_token is None


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"Sql": None}, "Sql is required"),
        ({"Sql": "  "}, "must not be empty"),
        ({"Sql": 1}, "must be a string, got 1"),
        ({"ClusterIdentifier": None}, "Either ClusterIdentifier or WorkgroupName"),
        ({"WorkgroupName": "wg-one"}, "not both"),
        ({"ClusterIdentifier": "Bad_Cluster"}, "'Bad_Cluster'"),
        ({"Database": None}, "Database is required"),
        ({"DbUser": "u", "SecretArn": "arn:aws:secretsmanager:x"}, "either DbUser or SecretArn"),
        ({"Parameters": []}, "non-empty list"),
        ({"Parameters": [{"name": "a-b", "value": "1"}]}, "'a-b'"),
        ({"Parameters": [{"name": "a", "value": ""}]}, "non-empty string"),
        ({"Parameters": [{"name": "a", "value": 1}]}, "non-empty string, got 1"),
        (
            {"Parameters": [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]},
            "more than once",
        ),
        ({"ClientToken": "x" * 65}, "at most 64"),
        ({"WaitTimeSeconds": 0}, "from 1 to 30, got 0"),
        ({"WaitTimeSeconds": True}, "integer"),
        ({"ExecutionMode": "AUTO_COMMIT"}, "ExecutionMode is not a parameter of ExecuteStatement"),
        ({"SessionId": "d9b6c0c9-0747-4bf4-b142-e8883122f766"}, "not supported"),
        ({"ResultFormat": "CSV"}, "allowed: JSON"),
        ({"Sql": "select '" + "x" * 102400 + "'"}, "100 KB"),
    ],
)
def test_bad_execute_requests_name_the_problem(changes: dict[str, Any], fragment: str) -> None:
    body = {k: v for k, v in {**BASE, **changes}.items() if v is not None}
    assert fragment in rejected("ExecuteStatement", body)


def test_secret_arn_defaults_database_to_dev() -> None:
    body = {"Sql": "select 1", "WorkgroupName": "wg-one", "SecretArn": "arn:aws:secretsmanager:x"}
    assert submit_request("ExecuteStatement", body).database == "dev"


def test_batch_requests() -> None:
    body = {
        "Sqls": ["select 1", "select 2"],
        "WorkgroupName": "wg-one",
        "Database": "dev",
        "ExecutionMode": "AUTO_COMMIT",
    }
    request = submit_request("BatchExecuteStatement", body)
    assert request.sqls == ("select 1", "select 2")
    assert request.execution_mode == "AUTO_COMMIT"
    assert "1 to 40" in rejected("BatchExecuteStatement", {**body, "Sqls": ["select 1"] * 41})
    assert "Sqls[1]" in rejected("BatchExecuteStatement", {**body, "Sqls": ["select 1", 2]})
    assert "TRANSACTION, AUTO_COMMIT" in rejected(
        "BatchExecuteStatement", {**body, "ExecutionMode": "YOLO"}
    )


def test_fingerprint_ignores_token_and_wait_but_not_the_sql() -> None:
    one = request_fingerprint(
        "ExecuteStatement", {**BASE, "ClientToken": "a", "WaitTimeSeconds": 5}
    )
    two = request_fingerprint("ExecuteStatement", {**BASE, "ClientToken": "b"})
    other_sql = request_fingerprint("ExecuteStatement", {**BASE, "Sql": "select 2"})
    other_op = request_fingerprint("BatchExecuteStatement", BASE)
    assert one == two
    assert len({one, other_sql, other_op}) == 3


@pytest.mark.parametrize(
    "statement_id",
    ["d9b6c0c9-0747-4bf4-b142-e8883122f766", "d9b6c0c9-0747-4bf4-b142-e8883122f766:2"],
)
def test_statement_ids(statement_id: str) -> None:
    assert REQUESTS.problems("DescribeStatement", {"Id": statement_id}) == []


@pytest.mark.parametrize("bad", ["", "nope", "D9B6C0C9-0747-4BF4-B142-E8883122F766", 5])
def test_bad_statement_ids(bad: Any) -> None:
    with pytest.raises(ServiceError) as exc:
        REQUESTS.check("DescribeStatement", {"Id": bad})
    assert exc.value.code == "ValidationException"
    assert exc.value.message.startswith("Id ") and repr(bad) in exc.value.message


def test_next_tokens_round_trip_and_reject_forgeries() -> None:
    assert parse_next_token({"NextToken": make_next_token(3)}) == 3
    assert parse_next_token({}) == 0
    with pytest.raises(ServiceError):
        parse_next_token({"NextToken": "3"})


def test_list_request_defaults_and_checks() -> None:
    request = list_request({})
    assert (request.max_results, request.status, request.offset) == (100, "ALL", 0)
    assert list_request({"MaxResults": 0}).max_results == 100
    with pytest.raises(ServiceError) as exc:
        list_request({"Status": "DONE"})
    assert "'DONE'" in exc.value.message
