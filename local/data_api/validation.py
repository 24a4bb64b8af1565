"""Request validation for the Data API operations, as plain functions over the JSON body.

botocore validates most shapes before sending, but raw HTTP callers (and other SDKs) do
not, so every field is checked here too: a wrong type, a bad pattern or a conflicting pair
answers ValidationException naming the field, the bad value and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from local.endpoint import ServiceError

MAX_SQL_BYTES = 100 * 1024
MAX_BATCH_SQLS = 40
STATEMENT_STATUSES = ("SUBMITTED", "PICKED", "STARTED", "FINISHED", "ABORTED", "FAILED")
TERMINAL_STATUSES = frozenset({"FINISHED", "ABORTED", "FAILED"})
DEFAULT_SECRET_DATABASE = "dev"

_ID_RE = re.compile(r"[a-z0-9]{8}(-[a-z0-9]{4}){3}-[a-z0-9]{12}(:\d{0,2})?")
_CLUSTER_RE = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_WORKGROUP_RE = re.compile(
    r"[a-z0-9-]{3,63}|arn:aws[a-z-]*:redshift-serverless:[a-z0-9-]+:\d{12}:workgroup/[a-z0-9-]+(/[a-z0-9-]+)?"
)
_PARAM_NAME_RE = re.compile(r"[0-9a-zA-Z_]+")


def invalid(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _optional_str(body: Mapping[str, Any], key: str, *, max_len: int | None = None) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"{key} must be a string, got {_short(value)}.")
    if max_len is not None and len(value) > max_len:
        raise invalid(f"{key} must be at most {max_len} characters, got {len(value)}.")
    return value


def _optional_bool(body: Mapping[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise invalid(f"{key} must be a boolean, got {_short(value)}.")


def _optional_int(body: Mapping[str, Any], key: str, low: int, high: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{key} must be an integer from {low} to {high}, got {_short(value)}.")
    if not low <= value <= high:
        raise invalid(f"{key} must be from {low} to {high}, got {value}.")
    return value


def _check_sql(sql: Any, key: str) -> str:
    if not isinstance(sql, str):
        raise invalid(f"{key} must be a string, got {_short(sql)}.")
    if not sql.strip():
        raise invalid(f"{key} must not be empty.")
    size = len(sql.encode("utf-8"))
    if size > MAX_SQL_BYTES:
        raise invalid(
            f"{key} is {size} bytes; the maximum query statement size is 100 KB "
            f"({MAX_SQL_BYTES} bytes)."
        )
    return sql


def parse_parameters(value: Any) -> list[dict[str, str]] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise invalid(
            f"Parameters must be a non-empty list of {{name, value}}, got {_short(value)}."
        )
    seen: set[str] = set()
    parsed: list[dict[str, str]] = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"name", "value"}:
            raise invalid(
                f"Each parameter must be an object with name and value, got {_short(item)}."
            )
        name, val = item["name"], item["value"]
        if not isinstance(name, str) or not _PARAM_NAME_RE.fullmatch(name):
            raise invalid(f"Parameter name {_short(name)} must match [0-9a-zA-Z_]+.")
        if not isinstance(val, str) or not val:
            raise invalid(
                f"Parameter {name!r} value must be a non-empty string, got {_short(val)} "
                "(send SQL NULL by writing NULL in the SQL instead)."
            )
        if name in seen:
            raise invalid(f"Parameter {name!r} is given more than once.")
        seen.add(name)
        parsed.append({"name": name, "value": val})
    return parsed


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


def parse_submit(operation: str, body: Mapping[str, Any]) -> SubmitRequest:
    is_batch = operation == "BatchExecuteStatement"
    if is_batch:
        sqls_value = body.get("Sqls")
        if sqls_value is None:
            raise invalid("Sqls is required: a list of 1 to 40 SQL statements.")
        if not isinstance(sqls_value, list) or not 1 <= len(sqls_value) <= MAX_BATCH_SQLS:
            raise invalid(
                f"Sqls must be a list of 1 to {MAX_BATCH_SQLS} SQL statements, got {_short(sqls_value)}."
            )
        sqls = tuple(_check_sql(sql, f"Sqls[{i}]") for i, sql in enumerate(sqls_value))
    else:
        if "Sqls" in body:
            raise invalid(
                "Sqls is not a parameter of ExecuteStatement; use Sql (or BatchExecuteStatement)."
            )
        if body.get("Sql") is None:
            raise invalid("Sql is required.")
        sqls = (_check_sql(body["Sql"], "Sql"),)

    cluster = _optional_str(body, "ClusterIdentifier", max_len=63)
    workgroup = _optional_str(body, "WorkgroupName", max_len=128)
    if cluster is not None and workgroup is not None:
        raise invalid("Specify either ClusterIdentifier or WorkgroupName, not both.")
    if cluster is None and workgroup is None:
        raise invalid("Either ClusterIdentifier or WorkgroupName is required.")
    if cluster is not None and not _CLUSTER_RE.fullmatch(cluster):
        raise invalid(f"ClusterIdentifier {cluster!r} must match [a-z][a-z0-9]*(-[a-z0-9]+)*.")
    if workgroup is not None and not _WORKGROUP_RE.fullmatch(workgroup):
        raise invalid(f"WorkgroupName {workgroup!r} must be 3-63 of [a-z0-9-] or a workgroup ARN.")
    db_user = _optional_str(body, "DbUser")
    secret_arn = _optional_str(body, "SecretArn")
    if db_user is not None and secret_arn is not None:
        raise invalid("Specify either DbUser or SecretArn, not both.")
    database = _optional_str(body, "Database")
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
    result_format = _optional_str(body, "ResultFormat")
    if result_format not in (None, "JSON"):
        raise invalid(f"ResultFormat {result_format!r} is not supported locally; allowed: JSON.")
    mode = _optional_str(body, "ExecutionMode")
    if mode is not None and not is_batch:
        raise invalid("ExecutionMode is a parameter of BatchExecuteStatement only.")
    if mode not in (None, "TRANSACTION", "AUTO_COMMIT"):
        raise invalid(f"ExecutionMode {mode!r} is not valid; allowed: TRANSACTION, AUTO_COMMIT.")
    token = _optional_str(body, "ClientToken", max_len=64)
    if token == "":
        raise invalid("ClientToken must be 1 to 64 characters.")
    parameters = parse_parameters(body.get("Parameters"))
    return SubmitRequest(
        sqls=sqls,
        is_batch=is_batch,
        database=database,
        cluster_identifier=cluster,
        workgroup_name=workgroup,
        db_user=db_user,
        secret_arn=secret_arn,
        statement_name=_optional_str(body, "StatementName", max_len=2048),
        parameters=tuple(parameters) if parameters else None,
        client_token=token,
        execution_mode=mode or "TRANSACTION",
        with_event=bool(_optional_bool(body, "WithEvent")),
        wait_time_seconds=_optional_int(body, "WaitTimeSeconds", 1, 30),
        fingerprint=request_fingerprint(operation, body),
    )


def parse_statement_id(body: Mapping[str, Any]) -> str:
    value = body.get("Id")
    if value is None:
        raise invalid("Id is required.")
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise invalid(
            f"Id {_short(value)} is not a valid statement id; expected a UUID, "
            "optionally with a :N suffix for a batch sub-statement."
        )
    return value


def parse_wait(body: Mapping[str, Any]) -> int | None:
    return _optional_int(body, "WaitTimeSeconds", 1, 30)


def parse_next_token(body: Mapping[str, Any]) -> int:
    """NextToken is an opaque offset; anything we did not hand out is rejected."""
    token = _optional_str(body, "NextToken")
    if token is None or token == "":
        return 0
    if not token.startswith("p") or not token[1:].isdigit():
        raise invalid(
            f"NextToken {_short(token)} is not valid; pass back a NextToken from a previous response."
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


def parse_list(body: Mapping[str, Any]) -> ListRequest:
    max_results = _optional_int(body, "MaxResults", 0, 100)
    status = _optional_str(body, "Status") or "ALL"
    if status not in (*STATEMENT_STATUSES, "ALL"):
        raise invalid(
            f"Status {status!r} is not valid; allowed: {', '.join((*STATEMENT_STATUSES, 'ALL'))}."
        )
    _optional_bool(body, "RoleLevel")
    _optional_str(body, "ClusterIdentifier")
    _optional_str(body, "WorkgroupName")
    return ListRequest(
        max_results=max_results or 100,
        offset=parse_next_token(body),
        name_prefix=_optional_str(body, "StatementName", max_len=2048),
        status=status,
        database=_optional_str(body, "Database"),
    )
