"""The Data API's rules that botocore's model cannot express, on model-valid request bodies.

Types, lengths, ranges, enums and patterns are checked first from the model
(``local.core.validation``); what is left here are the service's semantic rules (exactly one
of ClusterIdentifier/WorkgroupName, Database unless SecretArn, the 100 KB SQL quota, unique
parameter names) and what the local endpoint does not support (sessions, CSV results).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from local.core import short
from local.redshift_data.exceptions import invalid

MAX_SQL_BYTES = 100 * 1024
TERMINAL_STATUSES = frozenset({"FINISHED", "ABORTED", "FAILED"})
DEFAULT_SECRET_DATABASE = "dev"
DEFAULT_MAX_RESULTS = 100


@dataclass(frozen=True)
class SubmitRequest:
    """An ExecuteStatement or BatchExecuteStatement request, validated."""

    sqls: tuple[str, ...]
    is_batch: bool
    database: str
    cluster_identifier: str | None
    workgroup_name: str | None
    db_user: str | None
    secret_arn: str | None
    statement_name: str | None
    parameters: tuple[dict[str, str], ...] | None
    client_token: str | None
    execution_mode: str
    with_event: bool
    wait_time_seconds: int | None
    fingerprint: str


def request_fingerprint(operation: str, body: Mapping[str, Any]) -> str:
    """What a ClientToken is bound to: the request less the token and the wait."""
    relevant = {k: v for k, v in body.items() if k not in ("ClientToken", "WaitTimeSeconds")}
    canonical = json.dumps([operation, relevant], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_sql(sql: str, key: str) -> str:
    if not sql.strip():
        raise invalid(f"{key} must not be empty.")
    size = len(sql.encode("utf-8"))
    if size > MAX_SQL_BYTES:
        raise invalid(
            f"{key} is {size} bytes; the maximum query statement size is 100 KB "
            f"({MAX_SQL_BYTES} bytes)."
        )
    return sql


def _unique_parameters(value: list[dict[str, str]] | None) -> tuple[dict[str, str], ...] | None:
    if not value:
        return None
    names = [item["name"] for item in value]
    for name in names:
        if names.count(name) > 1:
            raise invalid(f"Parameter {name!r} is given more than once.")
    return tuple({"name": item["name"], "value": item["value"]} for item in value)


def parse_submit(operation: str, body: Mapping[str, Any]) -> SubmitRequest:
    is_batch = operation == "BatchExecuteStatement"
    if is_batch:
        sqls = tuple(_check_sql(sql, f"Sqls[{i}]") for i, sql in enumerate(body["Sqls"]))
    else:
        sqls = (_check_sql(body["Sql"], "Sql"),)
    cluster, workgroup = body.get("ClusterIdentifier"), body.get("WorkgroupName")
    if cluster is not None and workgroup is not None:
        raise invalid("Specify either ClusterIdentifier or WorkgroupName, not both.")
    if cluster is None and workgroup is None:
        raise invalid("Either ClusterIdentifier or WorkgroupName is required.")
    db_user, secret_arn = body.get("DbUser"), body.get("SecretArn")
    if db_user is not None and secret_arn is not None:
        raise invalid("Specify either DbUser or SecretArn, not both.")
    database = body.get("Database")
    if database is None:
        if secret_arn is None:
            raise invalid("Database is required unless SecretArn is given.")
        database = DEFAULT_SECRET_DATABASE
    if not database:
        raise invalid("Database must not be empty.")
    for unsupported in ("SessionId", "SessionKeepAliveSeconds"):
        if body.get(unsupported) is not None:
            raise invalid(
                f"{unsupported} is not supported by the local Data API endpoint (no sessions)."
            )
    result_format = body.get("ResultFormat")
    if result_format not in (None, "JSON"):
        raise invalid(f"ResultFormat {result_format!r} is not supported locally; allowed: JSON.")
    return SubmitRequest(
        sqls=sqls,
        is_batch=is_batch,
        database=database,
        cluster_identifier=cluster,
        workgroup_name=workgroup,
        db_user=db_user,
        secret_arn=secret_arn,
        statement_name=body.get("StatementName"),
        parameters=_unique_parameters(body.get("Parameters")),
        client_token=body.get("ClientToken"),
        execution_mode=body.get("ExecutionMode") or "TRANSACTION",
        with_event=bool(body.get("WithEvent")),
        wait_time_seconds=body.get("WaitTimeSeconds"),
        fingerprint=request_fingerprint(operation, body),
    )


def parse_next_token(body: Mapping[str, Any]) -> int:
    """NextToken is an opaque offset; anything we did not hand out is rejected."""
    token = body.get("NextToken")
    if not token:
        return 0
    if not token.startswith("p") or not token[1:].isdigit():
        raise invalid(
            f"NextToken {short(token)} is not valid; pass back a NextToken from a previous response."
        )
    return int(token[1:])


def make_next_token(offset: int) -> str:
    return f"p{offset}"


@dataclass(frozen=True)
class ListRequest:
    max_results: int
    offset: int
    name_prefix: str | None
    status: str
    database: str | None
    cluster_identifier: str | None = None
    workgroup_name: str | None = None


def parse_list(body: Mapping[str, Any]) -> ListRequest:
    """ListStatements' filters; as on AWS, a cluster and a workgroup exclude each other."""
    cluster, workgroup = body.get("ClusterIdentifier"), body.get("WorkgroupName")
    if cluster and workgroup:
        raise invalid("Specify either ClusterIdentifier or WorkgroupName, not both.")
    return ListRequest(
        max_results=body.get("MaxResults") or DEFAULT_MAX_RESULTS,
        offset=parse_next_token(body),
        name_prefix=body.get("StatementName"),
        status=body.get("Status") or "ALL",
        database=body.get("Database"),
        cluster_identifier=cluster,
        workgroup_name=workgroup,
    )
