"""Every operation each local service implements answers, over the wire, exactly what
botocore's output shape of that operation allows (required members present, JSON types
right, no member the model does not have).

Strict mode (tests/local/conftest.py) checks every answer of the other tests as well; this
test makes sure no implemented operation goes unchecked.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from local.core import ModeledService, output_problems
from local.endpoint import AwsEndpoint
from local.glue_jobs import GlueService, JobDefinition
from local.stack import LocalStack

STANDIN = Path(__file__).parent / "glue_jobs" / "standin.py"
TARGET = {"ClusterIdentifier": "local-cluster", "Database": "dev", "DbUser": "awsuser"}


class WireClient:
    """Calls one service over raw HTTP and checks each answer against the model."""

    def __init__(self, endpoint: AwsEndpoint, prefix: str) -> None:
        service = endpoint.services[prefix]
        assert isinstance(service, ModeledService)
        self.service, self.url, self.prefix = service, urlsplit(endpoint.url), prefix
        self.checked: set[str] = set()

    def call(self, operation: str, **body: Any) -> dict[str, Any]:
        conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=60)
        headers = {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"{self.prefix}.{operation}",
            "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDWIRE/20260101/us-east-1/x/aws4_request",
        }
        conn.request("POST", "/", body=json.dumps(body), headers=headers)
        response = conn.getresponse()
        payload: dict[str, Any] = json.loads(response.read())
        conn.close()
        assert response.status == 200, payload
        assert output_problems(self.service.model, operation, payload) == []
        self.checked.add(operation)
        return payload


def test_every_data_api_operation_answers_its_output_shape(local_stack: LocalStack) -> None:
    client = WireClient(local_stack.endpoint, "RedshiftData")
    single = client.call(
        "ExecuteStatement", Sql="select 1 as n, 'a' as s", WaitTimeSeconds=10, **TARGET
    )
    batch = client.call(
        "BatchExecuteStatement", Sqls=["select 1", "select 2"], StatementName="shapes", **TARGET
    )
    described = client.call("DescribeStatement", Id=batch["Id"], WaitTimeSeconds=10)
    assert [sub["Status"] for sub in described["SubStatements"]] == ["FINISHED", "FINISHED"]
    result = client.call("GetStatementResult", Id=single["Id"])
    assert result["Records"] == [[{"longValue": 1}, {"stringValue": "a"}]]
    listed = client.call("ListStatements", StatementName="shapes")
    assert [item["Id"] for item in listed["Statements"]] == [batch["Id"]]
    running = client.call("ExecuteStatement", Sql="select pg_sleep(30)", **TARGET)
    assert client.call("CancelStatement", Id=running["Id"]) == {"Status": True}
    assert client.checked == set(client.service.implemented_operations())


@pytest.fixture
def glue_endpoint(tmp_path: Path) -> Iterator[AwsEndpoint]:
    endpoint = AwsEndpoint().start()
    service = GlueService(
        {"standin": JobDefinition("standin", STANDIN, max_concurrent_runs=5)},
        log_dir=tmp_path,
        stop_grace_seconds=2,
    )
    endpoint.register(service.target_prefix, service)
    try:
        yield endpoint
    finally:
        service.close()
        endpoint.stop()


def test_every_glue_operation_answers_its_output_shape(glue_endpoint: AwsEndpoint) -> None:
    client = WireClient(glue_endpoint, "AWSGlue")
    assert client.call("GetJob", JobName="standin")["Job"]["Name"] == "standin"
    done = client.call("StartJobRun", JobName="standin", Arguments={"--x": "1"})["JobRunId"]
    deadline = time.monotonic() + 30
    while (run := client.call("GetJobRun", JobName="standin", RunId=done)["JobRun"])[
        "JobRunState"
    ] != "SUCCEEDED" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run["JobRunState"] == "SUCCEEDED" and "CompletedOn" in run
    sleeping = client.call("StartJobRun", JobName="standin", Arguments={"--sleep": "60"})
    stopped = client.call("BatchStopJobRun", JobName="standin", JobRunIds=[sleeping["JobRunId"]])
    assert [s["JobRunId"] for s in stopped["SuccessfulSubmissions"]] == [sleeping["JobRunId"]]
    runs = client.call("GetJobRuns", JobName="standin", MaxResults=1)
    assert len(runs["JobRuns"]) == 1 and "NextToken" in runs
    assert client.checked == set(client.service.implemented_operations())
