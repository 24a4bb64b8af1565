"""What a statement's description says: its result, or the error its final status means.

Statuses map to outcomes in ``tasks.jobs.STATEMENT_STATES`` (shared with Glue's table);
the original loop only knew FINISHED and FAILED, so ABORTED spun until the workflow
timed out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tasks.jobs import STATEMENT_STATES, error_code
from tasks.redshift_data.errors import StatementAbortedError, StatementError, StatementFailedError

# A submit refused for capacity: safe to retry later with the same ClientToken.
CAPACITY_CODES = frozenset({"ActiveStatementsExceededException", "ActiveSessionsExceededException"})


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
    """What a FINISHED statement leaves behind: small enough to persist and show.

    ``rows`` holds the typed result rows when the caller asked to fetch them, else ().
    """

    statement_id: str
    query_id: int | None
    status: str
    duration_seconds: float | None
    rows_affected: int | None
    has_result_set: bool
    sub_statements: tuple[SubStatement, ...] = ()
    statement_name: str | None = None
    reattached: bool = False  # an earlier attempt's statement, not one submitted now
    rows: tuple[dict[str, Any], ...] = ()


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
    outcome = STATEMENT_STATES.outcome(status)
    if outcome in ("running", "succeeded"):
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
