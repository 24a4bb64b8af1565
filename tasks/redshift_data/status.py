"""One table of statement states, and which AWS errors are worth retrying.

The original loop only knew FINISHED and FAILED, so ABORTED spun until the workflow timed
out. Here every status maps to exactly one outcome, and an unknown status is an error
rather than "keep waiting".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from tasks.redshift_data.errors import (
    RedshiftDataError,
    StatementAbortedError,
    StatementError,
    StatementFailedError,
)

Outcome = Literal["running", "finished", "failed", "aborted"]

STATUS_OUTCOME: dict[str, Outcome] = {
    "SUBMITTED": "running",
    "PICKED": "running",
    "STARTED": "running",
    "FINISHED": "finished",
    "FAILED": "failed",
    "ABORTED": "aborted",
}
RUNNING_STATUSES = frozenset(s for s, o in STATUS_OUTCOME.items() if o == "running")

# Codes that mean "ask again later"; the request itself was fine.
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServerException",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ActiveWaitingRequestsExceededException",
        "DatabaseConnectionException",
    }
)
# A submit refused for capacity: safe to retry later with the same ClientToken.
CAPACITY_CODES = frozenset({"ActiveStatementsExceededException", "ActiveSessionsExceededException"})
_THROTTLE_WORDS = ("rate exceeded", "throttl", "too many requests")
_CONNECTION_ERRORS = (
    ConnectionClosedError,
    EndpointConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
    ConnectionError,
)


def outcome_of(status: str) -> Outcome:
    try:
        return STATUS_OUTCOME[status]
    except KeyError:
        raise RedshiftDataError(
            f"unknown statement status {status!r}; known: {', '.join(STATUS_OUTCOME)}"
        ) from None


def error_code(exc: BaseException) -> str | None:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "")) or None
    return None


def is_transient(exc: BaseException) -> bool:
    """Throttling, 5xx and dropped connections: retry without giving up on the statement.

    Redshift Serverless reports some throttling as a ValidationException whose message says
    "Rate exceeded"; treating every ValidationException as permanent would fail the task on
    a busy night.
    """
    if isinstance(exc, _CONNECTION_ERRORS):
        return True
    if not isinstance(exc, ClientError):
        return False
    code = error_code(exc)
    if code in TRANSIENT_CODES:
        return True
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if isinstance(status, int) and status >= 500 and code != "ExecuteStatementException":
        return True
    if code == "ValidationException":
        message = str(exc.response.get("Error", {}).get("Message", "")).lower()
        return any(word in message for word in _THROTTLE_WORDS)
    return False


def is_capacity_error(exc: BaseException) -> bool:
    return error_code(exc) in CAPACITY_CODES


@dataclass(frozen=True)
class SubStatement:
    statement_id: str
    status: str
    query_id: int | None
    duration_seconds: float | None
    rows_affected: int | None
    has_result_set: bool
    error: str | None


@dataclass(frozen=True)
class StatementResult:
    """What a FINISHED statement leaves behind: small enough to persist and show."""

    statement_id: str
    query_id: int | None
    status: str
    duration_seconds: float | None
    rows_affected: int | None
    has_result_set: bool
    sub_statements: tuple[SubStatement, ...] = ()
    statement_name: str | None = None
    reattached: bool = False  # an earlier attempt's statement, not one submitted now


def _seconds(duration_ns: object) -> float | None:
    # The Data API reports Duration in nanoseconds, -1 while unknown.
    if isinstance(duration_ns, int | float) and duration_ns >= 0:
        return duration_ns / 1e9
    return None


def _query_id(value: object) -> int | None:
    # Redshift query ids are positive; 0 and -1 mean "not assigned".
    return int(value) if isinstance(value, int) and value > 0 else None


def _rows(value: object) -> int | None:
    return int(value) if isinstance(value, int) and value >= 0 else None


def parse_description(
    description: Mapping[str, Any], statement_name: str | None = None
) -> StatementResult:
    subs = tuple(
        SubStatement(
            statement_id=str(sub.get("Id", "")),
            status=str(sub.get("Status", "")),
            query_id=_query_id(sub.get("RedshiftQueryId")),
            duration_seconds=_seconds(sub.get("Duration")),
            rows_affected=_rows(sub.get("ResultRows")),
            has_result_set=bool(sub.get("HasResultSet", False)),
            error=sub.get("Error") or None,
        )
        for sub in description.get("SubStatements", ()) or ()
    )
    return StatementResult(
        statement_id=str(description["Id"]),
        query_id=_query_id(description.get("RedshiftQueryId")),
        status=str(description.get("Status", "")),
        duration_seconds=_seconds(description.get("Duration")),
        rows_affected=_rows(description.get("ResultRows")),
        has_result_set=bool(description.get("HasResultSet", False)),
        sub_statements=subs,
        statement_name=statement_name,
    )


def terminal_error(description: Mapping[str, Any], sql: str | None = None) -> StatementError | None:
    """The exception a FAILED / ABORTED description stands for, None otherwise.

    For a batch, the failing sub-statement's query id and SQL are the useful ones.
    """
    status = str(description.get("Status", ""))
    outcome = outcome_of(status)
    if outcome in ("running", "finished"):
        return None
    statement_id = str(description.get("Id", ""))
    query_id = _query_id(description.get("RedshiftQueryId"))
    text = sql or description.get("QueryString")
    for sub in description.get("SubStatements", ()) or ():
        if sub.get("Status") in ("FAILED", "ABORTED"):
            query_id = _query_id(sub.get("RedshiftQueryId")) or query_id
            text = sub.get("QueryString") or text
            break
    if outcome == "failed":
        message = str(description.get("Error") or "no error message from Redshift")
        return StatementFailedError(
            f"statement FAILED: {message}",
            statement_id=statement_id,
            status=status,
            query_id=query_id,
            sql=text,
            error=message,
        )
    return StatementAbortedError(
        "statement ABORTED (cancelled before it finished)",
        statement_id=statement_id,
        status=status,
        query_id=query_id,
        sql=text,
        error=description.get("Error") or None,
    )
