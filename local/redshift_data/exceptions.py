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
