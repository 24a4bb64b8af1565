"""Redshift Data API tasks for Prefect: run a statement or CALL a procedure in one line.

    from tasks.redshift_data import RedshiftTarget, execute_statement
    execute_statement("select 1", target=RedshiftTarget.load("warehouse"))

Submit, wait, results and cancel; a status is never lost and, with a ``RunKey``, a
statement never runs twice. Only the names below are the public API; the building blocks
(request building, submit-or-reattach, waiting, result paging, cancel by name) stay
importable from their modules for flows that need them.
"""

from tasks.jobs import RunKey, WaitPolicy
from tasks.redshift_data.errors import (
    StatementAbortedError,
    StatementError,
    StatementFailedError,
    StatementTimeoutError,
)
from tasks.redshift_data.prefect_tasks import call_procedure, execute_statement
from tasks.redshift_data.status import StatementResult
from tasks.redshift_data.target import RedshiftTarget

__all__ = [
    "RedshiftTarget",
    "RunKey",
    "StatementAbortedError",
    "StatementError",
    "StatementFailedError",
    "StatementResult",
    "StatementTimeoutError",
    "WaitPolicy",
    "call_procedure",
    "execute_statement",
]
