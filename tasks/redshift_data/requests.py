"""Request building for ExecuteStatement / BatchExecuteStatement: pure, checked before I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from tasks.jobs import InvalidRequestError
from tasks.redshift_data.identifiers import to_parameter_value
from tasks.redshift_data.target import RedshiftTarget

MAX_BATCH_STATEMENTS = 40
MAX_STATEMENT_NAME = 2048
_PARAMETER_NAME_RE = re.compile(r"[0-9A-Za-z_]+")
ExecutionMode = Literal["TRANSACTION", "AUTO_COMMIT"]
SubmitOperation = Literal["ExecuteStatement", "BatchExecuteStatement"]


def to_sql_parameters(parameters: Mapping[str, object] | None) -> list[dict[str, str]]:
    """Data API ``Parameters``: name/value strings.

    None and '' are refused with a pointer to the fix: the Data API cannot bind NULL and
    rejects empty values, and rewriting arbitrary SQL to inline them would mean parsing it.
    ``call_procedure_sql`` handles both for procedure calls.
    """
    if not parameters:
        return []
    result = []
    for name, value in parameters.items():
        if not isinstance(name, str) or not _PARAMETER_NAME_RE.fullmatch(name):
            raise InvalidRequestError(
                f"parameter name {name!r} is invalid; allowed: ASCII letters, digits and '_'"
            )
        if value is None or value == "":
            raise InvalidRequestError(
                f"parameter {name!r} is {value!r}: the Data API cannot bind NULL or an empty "
                "string; write NULL or '' in the SQL text instead (call_procedure_sql does this)"
            )
        result.append({"name": name, "value": to_parameter_value(value, f"parameter {name!r}")})
    return result


def build_submit_request(
    target: RedshiftTarget,
    sql: str | Sequence[str],
    *,
    parameters: Mapping[str, object] | None = None,
    statement_name: str | None = None,
    client_token: str | None = None,
    execution_mode: ExecutionMode | None = None,
    with_event: bool = False,
) -> tuple[SubmitOperation, dict[str, Any]]:
    """The operation and its keyword arguments; a sequence of SQL becomes a batch."""
    request: dict[str, Any] = dict(target.request_fields())
    if isinstance(sql, str):
        if not sql.strip():
            raise InvalidRequestError("sql must not be empty")
        if execution_mode is not None:
            raise InvalidRequestError("execution_mode applies only to a batch (a list of SQL)")
        operation: SubmitOperation = "ExecuteStatement"
        request["Sql"] = sql
    else:
        sqls = list(sql)
        if not 1 <= len(sqls) <= MAX_BATCH_STATEMENTS:
            raise InvalidRequestError(
                f"a batch holds 1 to {MAX_BATCH_STATEMENTS} statements, got {len(sqls)}"
            )
        for index, one in enumerate(sqls):
            if not isinstance(one, str) or not one.strip():
                raise InvalidRequestError(f"batch statement {index} must be non-empty SQL text")
        operation = "BatchExecuteStatement"
        request["Sqls"] = sqls
        if execution_mode is not None:
            if execution_mode not in ("TRANSACTION", "AUTO_COMMIT"):
                raise InvalidRequestError(
                    f"execution_mode {execution_mode!r} is invalid; allowed: TRANSACTION, AUTO_COMMIT"
                )
            request["ExecutionMode"] = execution_mode
    sql_parameters = to_sql_parameters(parameters)
    if sql_parameters:
        request["Parameters"] = sql_parameters
    if statement_name is not None:
        if not statement_name or len(statement_name) > MAX_STATEMENT_NAME:
            raise InvalidRequestError(
                f"statement_name must be 1 to {MAX_STATEMENT_NAME} characters"
            )
        request["StatementName"] = statement_name
    if client_token is not None:
        if not 1 <= len(client_token) <= 64:
            raise InvalidRequestError("client_token must be 1 to 64 characters")
        request["ClientToken"] = client_token
    if with_event:
        request["WithEvent"] = True
    return operation, request
