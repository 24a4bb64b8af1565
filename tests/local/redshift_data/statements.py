"""Statement helpers for tests that break the warehouse under a running statement."""

from __future__ import annotations

import time
from typing import Any

from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

TARGET: dict[str, Any] = {"ClusterIdentifier": "local-cluster", "Database": "dev"}


def started(client: RedshiftDataAPIServiceClient, sql: str) -> dict[str, Any]:
    """Submit ``sql`` and return its description once it is STARTED."""
    statement_id = client.execute_statement(Sql=sql, **TARGET)["Id"]
    deadline = time.monotonic() + 15
    while True:
        described = dict(client.describe_statement(Id=statement_id))
        if described["Status"] == "STARTED":
            return described
        assert described["Status"] in ("SUBMITTED", "PICKED"), described
        assert time.monotonic() < deadline, "the statement never started"
        time.sleep(0.05)


def ended_within(
    client: RedshiftDataAPIServiceClient, statement_id: str, seconds: float
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        described = dict(client.describe_statement(Id=statement_id, WaitTimeSeconds=1))
        if described["Status"] in ("FINISHED", "FAILED", "ABORTED"):
            return described
        assert time.monotonic() < deadline, f"still {described['Status']} after {seconds} s"
