"""Statement errors: every one carries the statement id (and the query id when Redshift
gave one), which is what an operator needs to find it in SYS_QUERY_HISTORY and what a
later attempt needs to reattach. Parameter values are never put in messages by this code:
they may be personal data, and messages end up in logs and Prefect's UI. Redshift's own
error text is passed on as Redshift wrote it (it is what the operator needs), and may quote
a value it rejected.

The base and the shared errors (``JobError``, ``InvalidRequestError``, ``SubmitError``)
live in ``tasks.jobs``; all of them pickle (Prefect persists a failed task's exception).
"""

from __future__ import annotations

from tasks.jobs import JobError, StatusUnknownError

SQL_PREVIEW_CHARS = 300


def truncate_sql(sql: str | None, limit: int = SQL_PREVIEW_CHARS) -> str:
    """SQL for messages: one line, bounded, so a 10 kB batch cannot flood a log line."""
    if not sql:
        return ""
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class StatementError(JobError):
    """A statement ended (or was given up on) without FINISHED."""

    def __init__(
        self,
        message: str,
        *,
        statement_id: str,
        status: str | None = None,
        query_id: int | None = None,
        sql: str | None = None,
        error: str | None = None,
    ) -> None:
        self.statement_id = statement_id
        self.status = status
        self.query_id = query_id
        self.sql = truncate_sql(sql)
        self.error = error
        details = [f"statement_id={statement_id}"]
        if query_id is not None and query_id >= 0:
            details.append(f"query_id={query_id}")
        if self.sql:
            details.append(f"sql={self.sql!r}")
        super().__init__(f"{message} ({', '.join(details)})")


class StatementFailedError(StatementError):
    """Redshift reported FAILED; ``error`` is its message, verbatim."""


class StatementAbortedError(StatementError):
    """The statement was cancelled (by us, an operator, or WLM) before it finished."""


class StatementTimeoutError(StatementError, TimeoutError):
    """The wait exceeded the policy's timeout; the statement was asked to cancel."""


class StatementStatusUnknownError(StatementError, StatusUnknownError):
    """Polling failed too often in a row; the statement may still be running.

    Raised instead of guessing: a later attempt reattaches through the run key.
    """


class ResultTooLargeError(JobError):
    """The result set exceeds the caller's ``max_rows`` guard."""


class StatementLookupError(StatusUnknownError):
    """Looking up a step's earlier attempts by StatementName failed; nothing was submitted.

    Transient failures (throttling, 5xx, dropped connections) are retried within the wait
    policy's budget first; this is raised when the budget is spent or the Data API refused
    the lookup outright. Reattachable: a later try looks again before submitting anything.
    """

    def __init__(self, message: str, *, statement_name: str) -> None:
        self.statement_name = statement_name
        super().__init__(message)
