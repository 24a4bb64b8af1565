"""The endpoint survives anything a client sends, and its fault injection behaves as documented."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from local.endpoint import Faults, identity_from_headers
from local.stack import LocalStack
from tests.conftest import data_api_client


def modeled_field(error: ClientError, name: str) -> Any:
    """A modeled member of an error (botocore puts them at the top of the response)."""
    return dict(error.response).get(name)


TARGET: dict[str, Any] = {"ClusterIdentifier": "local-cluster", "Database": "dev"}
# What boto3 sends (the endpoint reads the access key, not the signature).
SIGNED = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDRAWHTTP/20260101/us-east-1/"
    "redshift-data/aws4_request, SignedHeaders=host, Signature=0"
}


def raw_post(
    url: str, target: str | None, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    all_headers = {"Content-Type": "application/x-amz-json-1.1", **SIGNED, **(headers or {})}
    if target is not None:
        all_headers["X-Amz-Target"] = target
    conn.request("POST", "/", body=body, headers=all_headers)
    response = conn.getresponse()
    payload = json.loads(response.read() or b"{}")
    conn.close()
    return response.status, payload


@pytest.fixture
def faults(local_stack: LocalStack) -> Iterator[Faults]:
    local_stack.endpoint.faults.clear()
    yield local_stack.endpoint.faults
    local_stack.endpoint.faults.clear()


@pytest.mark.parametrize(
    ("target", "body", "code"),
    [
        ("RedshiftData.ExecuteStatement", b"{not json", "SerializationException"),
        ("RedshiftData.ExecuteStatement", b"[1, 2]", "SerializationException"),
        ("RedshiftData.ExecuteStatement", b"\xff\xfe", "SerializationException"),
        ("RedshiftData.NoSuchOperation", b"{}", "UnknownOperationException"),
        ("NoSuchService.ExecuteStatement", b"{}", "UnknownOperationException"),
        (None, b"{}", "UnknownOperationException"),
        (
            "RedshiftData.ExecuteStatement",
            b'{"Sql": 5, "ClusterIdentifier": "c", "Database": "dev"}',
            "ValidationException",
        ),
        (
            "RedshiftData.ExecuteStatement",
            b'{"Sql": "select 1", "Database": "dev"}',
            "ValidationException",
        ),
        (
            "RedshiftData.ExecuteStatement",
            b'{"Sql": "select 1", "ClusterIdentifier": "c", "WorkgroupName": "wg1", "Database": "dev"}',
            "ValidationException",
        ),
        (
            "RedshiftData.ExecuteStatement",
            b'{"Sql": "select 1", "ClusterIdentifier": "c", "Database": "dev", "Parameters": [{"name": "a"}]}',
            "ValidationException",
        ),
        (
            "RedshiftData.ExecuteStatement",
            b'{"Sql": "select 1", "ClusterIdentifier": "c", "Database": "dev", "WaitTimeSeconds": 31}',
            "ValidationException",
        ),
        (
            "RedshiftData.BatchExecuteStatement",
            b'{"Sqls": [], "ClusterIdentifier": "c", "Database": "dev"}',
            "ValidationException",
        ),
        ("RedshiftData.DescribeStatement", b'{"Id": "not-an-id"}', "ValidationException"),
        ("RedshiftData.DescribeStatement", b'{"Id": ["x"]}', "ValidationException"),
        ("RedshiftData.DescribeStatement", b"{}", "ValidationException"),
        ("RedshiftData.ListStatements", b'{"MaxResults": "ten"}', "ValidationException"),
        ("RedshiftData.ListTables", b"{}", "ValidationException"),
    ],
)
def test_bad_requests_get_modeled_errors(
    local_stack: LocalStack, target: str | None, body: bytes, code: str
) -> None:
    status, payload = raw_post(local_stack.endpoint_url, target, body)
    assert status == 400
    assert payload["__type"] == code
    assert payload["message"]
    # ... and the endpoint is still serving.
    status, _ = raw_post(local_stack.endpoint_url, "RedshiftData.ListStatements", b"{}")
    assert status == 200


def test_sql_over_100_kb_is_rejected(redshift_data: RedshiftDataAPIServiceClient) -> None:
    huge = "select '" + "x" * (100 * 1024) + "'"
    with pytest.raises(ClientError) as exc:
        redshift_data.execute_statement(Sql=huge, **TARGET)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert "100 KB" in exc.value.response["Error"]["Message"]


def test_oversized_body_is_refused_without_reading_it(local_stack: LocalStack) -> None:
    parts = urlsplit(local_stack.endpoint_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    conn.putrequest("POST", "/")
    conn.putheader("X-Amz-Target", "RedshiftData.ExecuteStatement")
    conn.putheader("Content-Length", str(50 * 1024 * 1024))
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413
    conn.close()


def test_unknown_statement_id_is_not_found(redshift_data: RedshiftDataAPIServiceClient) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(redshift_data.exceptions.ResourceNotFoundException) as exc:
        redshift_data.describe_statement(Id=missing)
    assert modeled_field(exc.value, "ResourceId") == missing


def test_throttled_calls_are_retried_by_botocore(local_stack: LocalStack, faults: Faults) -> None:
    patient = data_api_client(local_stack.endpoint_url, max_attempts=3)
    impatient = data_api_client(local_stack.endpoint_url, max_attempts=1)
    submitted = patient.execute_statement(Sql="select 1", **TARGET)
    faults.throttle("DescribeStatement", 1)
    described = patient.describe_statement(Id=submitted["Id"])
    assert described["ResponseMetadata"]["RetryAttempts"] == 1
    faults.throttle("DescribeStatement", 1)
    with pytest.raises(ClientError) as exc:
        impatient.describe_statement(Id=submitted["Id"])
    assert exc.value.response["Error"]["Code"] == "ThrottlingException"


def test_latency_is_added_per_operation(
    redshift_data: RedshiftDataAPIServiceClient, faults: Faults
) -> None:
    # A second: a call without latency takes far less even on a loaded machine.
    faults.latency("ListStatements", 1.0)
    started = time.monotonic()
    redshift_data.list_statements(MaxResults=1)
    assert time.monotonic() - started >= 1.0
    started = time.monotonic()
    redshift_data.execute_statement(Sql="select 1", **TARGET)
    assert time.monotonic() - started < 1.0


def count_probe(pg_conn: psycopg.Connection[Any], marker: str) -> int:
    row = pg_conn.execute("select count(*) from drop_probe where token = %s", [marker]).fetchone()
    return int(row[0]) if row else 0


def insert_probe(marker: str) -> dict[str, Any]:
    return {
        "Sql": "insert into drop_probe values (:t)",
        "Parameters": [{"name": "t", "value": marker}],
        **TARGET,
    }


@pytest.fixture
def drop_probe(pg_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    pg_conn.execute("create table if not exists drop_probe (token text)")
    return pg_conn


def test_botocore_retry_after_a_dropped_response_runs_once(
    local_stack: LocalStack, faults: Faults, drop_probe: psycopg.Connection[Any]
) -> None:
    """botocore fills ClientToken itself (an idempotency token) and reuses it on retries."""
    client = data_api_client(local_stack.endpoint_url, max_attempts=3)
    marker = str(uuid.uuid4())
    faults.drop_after("ExecuteStatement", 1)
    submitted = client.execute_statement(**insert_probe(marker))
    assert submitted["ResponseMetadata"]["RetryAttempts"] == 1
    client.describe_statement(Id=submitted["Id"], WaitTimeSeconds=10)
    assert count_probe(drop_probe, marker) == 1


def test_caller_retry_with_the_same_client_token_runs_once(
    local_stack: LocalStack, faults: Faults, drop_probe: psycopg.Connection[Any]
) -> None:
    client = data_api_client(local_stack.endpoint_url, max_attempts=1)
    marker = str(uuid.uuid4())
    faults.drop_after("ExecuteStatement", 1)
    with pytest.raises(ConnectionClosedError):
        client.execute_statement(ClientToken=marker, **insert_probe(marker))
    submitted = client.execute_statement(
        ClientToken=marker, WaitTimeSeconds=10, **insert_probe(marker)
    )
    assert submitted["Status"] == "FINISHED"
    assert count_probe(drop_probe, marker) == 1


def test_caller_retry_without_a_client_token_runs_twice(
    local_stack: LocalStack, faults: Faults, drop_probe: psycopg.Connection[Any]
) -> None:
    """Why a deterministic ClientToken matters: a fresh call gets a fresh botocore token."""
    client = data_api_client(local_stack.endpoint_url, max_attempts=1)
    marker = str(uuid.uuid4())
    faults.drop_after("ExecuteStatement", 1)
    with pytest.raises(ConnectionClosedError):
        client.execute_statement(**insert_probe(marker))
    client.execute_statement(WaitTimeSeconds=10, **insert_probe(marker))
    deadline = time.monotonic() + 10
    while count_probe(drop_probe, marker) != 2:
        assert time.monotonic() < deadline, "the dropped request's statement never ran"
        time.sleep(0.05)


def test_dropped_response_surfaces_when_retries_are_off(
    local_stack: LocalStack, faults: Faults
) -> None:
    client = data_api_client(local_stack.endpoint_url, max_attempts=1)
    faults.drop_after("*", 1)
    with pytest.raises(ConnectionClosedError):
        client.list_statements(MaxResults=1)
    assert client.list_statements(MaxResults=1)["ResponseMetadata"]["HTTPStatusCode"] == 200


@pytest.mark.parametrize("processed", [True, False], ids=["processed", "not-processed"])
def test_an_injected_server_error_does_or_skips_the_work_as_told(
    local_stack: LocalStack, faults: Faults, processed: bool
) -> None:
    client = data_api_client(local_stack.endpoint_url, max_attempts=1)
    name = f"server-error-probe-{uuid.uuid4()}"
    faults.server_error("ExecuteStatement", 1, processed=processed, code="InternalServerException")
    with pytest.raises(ClientError) as exc:
        client.execute_statement(Sql="select 1", StatementName=name, **TARGET)
    assert exc.value.response["Error"]["Code"] == "InternalServerException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    listed = client.list_statements(StatementName=name, Status="ALL")["Statements"]
    assert len(listed) == (1 if processed else 0)
    client.execute_statement(Sql="select 1", StatementName=name, **TARGET)  # one call only
    listed = client.list_statements(StatementName=name, Status="ALL")["Statements"]
    assert len(listed) == (2 if processed else 1)


def test_identity_is_the_signing_access_key() -> None:
    header = (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/redshift-data/aws4_request,"
        " SignedHeaders=host, Signature=abc"
    )
    assert identity_from_headers(header) == "AKIDEXAMPLE"


def test_a_warehouse_failure_on_submit_is_an_execute_statement_exception(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*_: Any, **__: Any) -> Any:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(local_stack.data_api.store, "submit", unavailable)
    client = data_api_client(local_stack.endpoint_url, max_attempts=1)
    with pytest.raises(client.exceptions.ExecuteStatementException) as exc:
        client.execute_statement(Sql="select 1", **TARGET)
    assert "server closed the connection unexpectedly" in exc.value.response["Error"]["Message"]
    assert modeled_field(exc.value, "StatementId")
    with pytest.raises(client.exceptions.BatchExecuteStatementException):
        client.batch_execute_statement(Sqls=["select 1"], **TARGET)


def test_a_server_error_before_processing_is_retried_and_runs_once(
    local_stack: LocalStack, faults: Faults, drop_probe: psycopg.Connection[Any]
) -> None:
    client = data_api_client(local_stack.endpoint_url, max_attempts=3)
    marker = str(uuid.uuid4())
    faults.server_error("ExecuteStatement", 1, code="InternalServerException")
    submitted = client.execute_statement(**insert_probe(marker))
    assert submitted["ResponseMetadata"]["RetryAttempts"] == 1  # botocore retries a 500
    client.describe_statement(Id=submitted["Id"], WaitTimeSeconds=10)
    assert count_probe(drop_probe, marker) == 1
    assert faults.fired["server_error"] == 1


def test_a_server_error_after_processing_did_the_work(
    local_stack: LocalStack, faults: Faults, drop_probe: psycopg.Connection[Any]
) -> None:
    """The ambiguous 5xx: the caller sees a failure, the statement was submitted anyway."""
    client = data_api_client(local_stack.endpoint_url, max_attempts=1)
    marker = str(uuid.uuid4())
    faults.server_error("ExecuteStatement", 1, processed=True, code="InternalServerException")
    with pytest.raises(ClientError) as exc:
        client.execute_statement(**insert_probe(marker))
    assert exc.value.response["Error"]["Code"] == "InternalServerException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    deadline = time.monotonic() + 10
    while count_probe(drop_probe, marker) != 1:
        assert time.monotonic() < deadline, "the processed request's statement never ran"
        time.sleep(0.05)
    assert faults.fired["server_error_after"] == 1


def test_counted_latency_delays_only_the_next_calls_and_every_fault_is_counted(
    redshift_data: RedshiftDataAPIServiceClient, faults: Faults
) -> None:
    faults.latency("ListStatements", 1.0, times=1)
    faults.throttle("ListStatements", 1)
    started = time.monotonic()
    redshift_data.list_statements(MaxResults=1)  # throttled once, then delayed once
    assert time.monotonic() - started >= 1.0
    started = time.monotonic()
    redshift_data.list_statements(MaxResults=1)
    assert time.monotonic() - started < 1.0
    assert (faults.fired["latency"], faults.fired["throttle"]) == (1, 1)
    faults.clear()
    assert not faults.fired


def test_a_client_that_leaves_before_its_answer_is_no_internal_error(
    local_stack: LocalStack, faults: Faults, caplog: pytest.LogCaptureFixture
) -> None:
    """A flow process killed mid-call (the chaos suite's kill -9) hangs up on the endpoint;
    that is routine, not an InternalServerException with a traceback."""
    import logging
    import socket
    import struct

    faults.latency("ListStatements", 0.5, times=1)
    parts = urlsplit(local_stack.endpoint_url)
    body = b"{}"
    request = (
        f"POST / HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "X-Amz-Target: RedshiftData.ListStatements\r\n"
        "Content-Type: application/x-amz-json-1.1\r\n"
        f"Authorization: {SIGNED['Authorization']}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with caplog.at_level(logging.DEBUG, logger="local.endpoint"):
        sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
        sock.sendall(request)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # a reset, as a killed process leaves it
        time.sleep(1.0)  # the delayed answer meets the closed connection
    assert faults.fired["latency"] == 1
    errors = [
        r for r in caplog.records if r.name == "local.endpoint" and r.levelno >= logging.ERROR
    ]
    assert errors == []
    assert any("left before its answer" in r.getMessage() for r in caplog.records)


class _Echo:
    """A service answering every call with its operation's name."""

    def handle(self, call: Any) -> dict[str, Any]:
        return {"operation": call.operation}


def test_stopping_ends_the_keep_alive_connections_it_was_serving() -> None:
    """A stopped endpoint stops answering on connections a client keeps open (botocore pools
    them), not only on new ones: a night attached to a stack being stopped ran to its end over
    its pooled connections instead of being told the stack had ended."""
    from local.endpoint import AwsEndpoint

    endpoint = AwsEndpoint()
    endpoint.register("Echo", _Echo())
    endpoint.start()
    parts = urlsplit(endpoint.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    headers = {
        "X-Amz-Target": "Echo.Ping",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261205/us-east-1/x/aws4_request",
        "Content-Type": "application/x-amz-json-1.1",
    }
    try:
        connection.request("POST", "/", body=b"{}", headers=headers)
        answer = connection.getresponse()
        assert (answer.status, json.loads(answer.read())) == (200, {"operation": "Ping"})
        endpoint.stop()
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            connection.request("POST", "/", body=b"{}", headers=headers)
            connection.getresponse()  # the same connection: no answer any more
    finally:
        connection.close()
