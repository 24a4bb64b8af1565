"""What AWS refuses, the local endpoint refuses the same way: a 4xx with a modeled code,
never a 500, and the endpoint keeps serving."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from local.endpoint import MAX_JSON_DEPTH, json_depth_exceeds
from local.stack import LOCAL_REGION, LocalStack
from tests.local.test_endpoint import SIGNED, TARGET, raw_post


def send(url: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    conn.putrequest("POST", "/")
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders(body)
    response = conn.getresponse()
    payload = json.loads(response.read() or b"{}")
    conn.close()
    return response.status, payload


def still_serving(url: str) -> None:
    status, _ = raw_post(url, "RedshiftData.ListStatements", b"{}")
    assert status == 200


def test_an_unsigned_boto3_call_is_refused_like_aws(local_stack: LocalStack) -> None:
    unsigned = boto3.client(
        "redshift-data",
        endpoint_url=local_stack.endpoint_url,
        region_name=LOCAL_REGION,
        config=Config(signature_version=UNSIGNED, retries={"total_max_attempts": 1}),
    )
    with pytest.raises(ClientError) as exc:
        unsigned.list_statements()
    assert exc.value.response["Error"]["Code"] == "MissingAuthenticationTokenException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_an_authorization_header_without_credential_is_an_incomplete_signature(
    local_stack: LocalStack,
) -> None:
    status, payload = send(
        local_stack.endpoint_url,
        {"X-Amz-Target": "RedshiftData.ListStatements", "Authorization": "Bearer x"},
        b"{}",
    )
    assert (status, payload["__type"]) == (400, "IncompleteSignatureException")
    assert "Credential" in payload["message"]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000, 200_000])
def test_deeply_nested_json_is_a_serialization_error(local_stack: LocalStack, depth: int) -> None:
    body = b'{"Sql": ' + b"[" * depth + b"]" * depth + b"}"
    status, payload = raw_post(local_stack.endpoint_url, "RedshiftData.ExecuteStatement", body)
    assert (status, payload["__type"]) == (400, "SerializationException")
    assert str(MAX_JSON_DEPTH) in payload["message"]
    still_serving(local_stack.endpoint_url)


def test_json_depth_is_measured_without_recursion() -> None:
    nested: Any = []
    for _ in range(100_000):
        nested = [nested]
    assert json_depth_exceeds({"a": nested}, MAX_JSON_DEPTH)
    assert not json_depth_exceeds({"Parameters": [{"name": "a", "value": "b"}]}, 3)
    assert json_depth_exceeds({"Parameters": [{"name": "a", "value": "b"}]}, 2)


def test_a_nul_in_sql_is_a_validation_error(redshift_data: RedshiftDataAPIServiceClient) -> None:
    with pytest.raises(ClientError) as exc:
        redshift_data.execute_statement(Sql="select 'a\x00b'", **TARGET)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert "NUL" in exc.value.response["Error"]["Message"]
    assert "Sql" in exc.value.response["Error"]["Message"]


def test_a_nul_in_a_parameter_value_is_a_validation_error(
    redshift_data: RedshiftDataAPIServiceClient,
) -> None:
    with pytest.raises(ClientError) as exc:
        redshift_data.execute_statement(
            Sql="select :v", Parameters=[{"name": "v", "value": "x\x00"}], **TARGET
        )
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert "Parameters[0].value" in exc.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Length": "abc"},
        {"Content-Length": "-5"},
        {"Transfer-Encoding": "chunked"},
    ],
)
def test_malformed_framing_is_a_400(local_stack: LocalStack, headers: dict[str, str]) -> None:
    status, payload = send(
        local_stack.endpoint_url,
        {"X-Amz-Target": "RedshiftData.ListStatements", **SIGNED, **headers},
        b"",
    )
    assert (status, payload["__type"]) == (400, "SerializationException")
    still_serving(local_stack.endpoint_url)


@pytest.mark.parametrize(
    "body", [b'{"Sql": "select 1", "Sql": 5}', b"1e999", b'{"MaxResults": 1e999}', b"9" * 5000]
)
def test_odd_json_never_answers_500(local_stack: LocalStack, body: bytes) -> None:
    status, payload = raw_post(local_stack.endpoint_url, "RedshiftData.ListStatements", body)
    assert 400 <= status < 500, payload
    still_serving(local_stack.endpoint_url)
