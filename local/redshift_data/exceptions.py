"""The Data API's modeled errors, as the local endpoint answers them."""

from __future__ import annotations

from local.core import ServiceError


def invalid(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def not_found(statement_id: str) -> ServiceError:
    return ServiceError(
        "ResourceNotFoundException",
        f"Query does not exist: {statement_id}.",
        fields={"ResourceId": statement_id},
    )


def no_result(statement_id: str, why: str) -> ServiceError:
    return ServiceError(
        "ResourceNotFoundException",
        f"Query does not have result: statement {statement_id} {why}. "
        "Please check query status with DescribeStatement.",
        fields={"ResourceId": statement_id},
    )


def submit_failed(operation: str, statement_id: str, cause: Exception) -> ServiceError:
    """``ExecuteStatementException`` / ``BatchExecuteStatementException``: the warehouse
    could not take the statement (modeled with the StatementId it would have had)."""
    return ServiceError(
        f"{operation}Exception",
        f"The statement could not be submitted to the warehouse: {cause}",
        500,
        fields={"StatementId": statement_id},
    )


def active_statements_exceeded(limit: int) -> ServiceError:
    return ServiceError(
        "ActiveStatementsExceededException",
        f"Active statements exceeded the allowed quota ({limit}).",
    )


def warehouse_unreachable(reason: str) -> ServiceError:
    """``DatabaseConnectionException`` (HTTP 500, as AWS answers when the warehouse cannot be
    reached), here when its server is down for good: ``reason`` names the server's own last
    FATAL line and its log, so the caller's error says why instead of "internal error"."""
    return ServiceError(
        "DatabaseConnectionException",
        f"Connection to the database failed: {reason}. Statements it was running ended with"
        " it (their work rolled back); start the stack again once the cause is fixed.",
        500,
    )
