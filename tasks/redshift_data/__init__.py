"""Redshift Data API tasks: submit, wait, results and cancel; never lose a status, never
run a statement twice. Pure logic lives in the submodules; ``prefect_tasks`` adds Prefect
and is imported on first use of its names, so the sync API does not pay Prefect's import.
"""

from typing import TYPE_CHECKING, Any

from tasks.redshift_data.cancel import (
    cancel_statement,
    cancel_statements_named,
    cancel_statements_on_stop,
    cancel_waited_statements,
)
from tasks.redshift_data.errors import (
    InvalidRequestError,
    RedshiftDataError,
    ResultTooLargeError,
    StatementAbortedError,
    StatementError,
    StatementFailedError,
    StatementStatusUnknownError,
    StatementTimeoutError,
    SubmitError,
)
from tasks.redshift_data.identifiers import (
    call_procedure_sql,
    quote_identifier,
    validate_identifier,
)
from tasks.redshift_data.requests import build_submit_request, to_sql_parameters
from tasks.redshift_data.results import get_rows
from tasks.redshift_data.runkey import RunKey, StepKey, night_prefix
from tasks.redshift_data.status import StatementResult, SubStatement
from tasks.redshift_data.submit import (
    Submission,
    execute_and_wait,
    find_prior_statements,
    run_step,
    submit_or_reattach,
    submit_statement,
)
from tasks.redshift_data.target import RedshiftTarget
from tasks.redshift_data.waiting import WaitPolicy, wait_for_statement, wait_or_cancel

if TYPE_CHECKING:
    from tasks.redshift_data.prefect_tasks import (
        call_procedure,
        cancel_night_hook,
        run_statement,
    )

_PREFECT_NAMES = ("call_procedure", "cancel_night_hook", "run_statement")


def __getattr__(name: str) -> Any:
    if name in _PREFECT_NAMES:
        from tasks.redshift_data import prefect_tasks

        return getattr(prefect_tasks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "InvalidRequestError",
    "RedshiftDataError",
    "RedshiftTarget",
    "ResultTooLargeError",
    "RunKey",
    "StatementAbortedError",
    "StatementError",
    "StatementFailedError",
    "StatementResult",
    "StatementStatusUnknownError",
    "StatementTimeoutError",
    "StepKey",
    "SubStatement",
    "Submission",
    "SubmitError",
    "WaitPolicy",
    "build_submit_request",
    "call_procedure",
    "call_procedure_sql",
    "cancel_night_hook",
    "cancel_statement",
    "cancel_statements_named",
    "cancel_statements_on_stop",
    "cancel_waited_statements",
    "execute_and_wait",
    "find_prior_statements",
    "get_rows",
    "night_prefix",
    "quote_identifier",
    "run_statement",
    "run_step",
    "submit_or_reattach",
    "submit_statement",
    "to_sql_parameters",
    "validate_identifier",
    "wait_for_statement",
    "wait_or_cancel",
]
