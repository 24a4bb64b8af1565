"""The Prefect layer: tasks that checkpoint, log, retry, cancel and report statements.

Thin on purpose: the decisions live in the sync modules. What Prefect adds is
- a checkpoint: the submit is a task whose persisted result is the statement id, cached on
  the run key (pipeline, logical date, step, attempt) and not on the task's source code,
  so a crashed, retried or resumed run gets the id back instead of submitting again;
- retries for submit-side refusals and for "we lost track" (both reattach, never rerun);
- one log line per state change through the run logger;
- cancellation when waiting is abandoned (task timeout, SIGTERM via Prefect's
  TerminationSignal, which is also how a runner cancels a flow run; for tasks in worker
  threads, ``cancel_statements_on_stop`` around the flow body), plus a flow hook that
  cancels by name from another process;
- a table artifact listing every statement of the flow run.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext, TaskRunContext
from prefect.tasks import exponential_backoff

from tasks.redshift_data.cancel import cancel_statements_named
from tasks.redshift_data.errors import StatementError, StatementStatusUnknownError, SubmitError
from tasks.redshift_data.identifiers import ArgValue, call_procedure_sql
from tasks.redshift_data.requests import ExecutionMode, SubmitOperation
from tasks.redshift_data.runkey import RunKey, StepKey, night_prefix
from tasks.redshift_data.status import StatementResult, parse_description
from tasks.redshift_data.submit import submit_or_reattach, submit_statement
from tasks.redshift_data.target import RedshiftTarget
from tasks.redshift_data.waiting import WaitPolicy, wait_or_cancel, within

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient
    from prefect import Flow
    from prefect.client.schemas.objects import FlowRun, TaskRun
    from prefect.states import State
    from prefect.tasks import Task

ARTIFACT_KEY = "redshift-statements"
CHECKPOINT_TTL = dt.timedelta(hours=24)  # the Data API keeps statements 24 h
TIMEOUT_MARGIN = 1.0  # seconds left to cancel the statement before the task timeout hits

_statements: dict[str, list[dict[str, Any]]] = {}
_statements_lock = threading.Lock()


def _checkpoint_key(_: TaskRunContext, parameters: dict[str, Any]) -> str:
    return str(parameters["cache_key"])


@task(
    name="redshift-data-submit",
    cache_key_fn=_checkpoint_key,
    cache_expiration=CHECKPOINT_TTL,
    persist_result=True,
    result_serializer="json",
)
def checkpointed_submit(
    cache_key: str,
    statement_name: str,
    client: RedshiftDataAPIServiceClient,
    operation: SubmitOperation,
    request: Mapping[str, Any],
) -> str:
    """The statement id, persisted under ``cache_key`` before anyone waits on it."""
    return submit_statement(client, operation, request, logger=get_run_logger())


def statement_exists(client: RedshiftDataAPIServiceClient, statement_id: str) -> bool:
    """False only when the Data API says the id is unknown; any other answer counts as known
    (the wait that follows will surface it)."""
    try:
        client.describe_statement(Id=statement_id)
    except client.exceptions.ResourceNotFoundException:
        return False
    except (ClientError, BotoCoreError):
        return True
    return True


def _retry_lost_or_refused(_task: Task[..., Any], _run: TaskRun, state: State[Any]) -> bool:
    """Retry when a rerun cannot run SQL twice: it reattaches through the run key."""
    try:
        state.result(raise_on_failure=True)
    except (SubmitError, StatementStatusUnknownError):
        return True
    except BaseException:
        return False
    return False


def record_statement(pipeline: str, row: Mapping[str, Any]) -> None:
    """Add a statement to this flow run's table artifact (re-published on every change)."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return  # a task called outside a flow has no run page to show a table on
    with _statements_lock:
        rows = _statements.setdefault(str(context.flow_run.id), [])
        rows[:] = [r for r in rows if r["id"] != row["id"]] + [dict(row)]
        table = list(rows)
    create_table_artifact(
        table,
        key=f"{ARTIFACT_KEY}-{pipeline.lower().replace('_', '-').replace('.', '-')}",
        description=f"Redshift Data API statements of pipeline {pipeline}",
    )


def _row(name: str, result: StatementResult | None, error: StatementError | None) -> dict[str, Any]:
    if result is not None:
        return {
            "name": name,
            "id": result.statement_id,
            "status": result.status,
            "duration_s": None
            if result.duration_seconds is None
            else round(result.duration_seconds, 3),
            "rows": result.rows_affected,
            "query_id": result.query_id,
            "error": "",
        }
    assert error is not None
    return {
        "name": name,
        "id": error.statement_id,
        "status": error.status or "UNKNOWN",
        "duration_s": None,
        "rows": None,
        "query_id": error.query_id,
        "error": (error.error or "")[:200],
    }


@task(
    name="redshift-data-run-statement",
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_jitter_factor=0.5,
    retry_condition_fn=_retry_lost_or_refused,
)
def run_statement(
    client: RedshiftDataAPIServiceClient,
    target: RedshiftTarget,
    sql: str | Sequence[str],
    *,
    pipeline: str,
    logical_date: dt.date | str,
    step: str,
    parameters: Mapping[str, object] | None = None,
    force: bool = False,
    policy: WaitPolicy | None = None,
    execution_mode: ExecutionMode | None = None,
) -> StatementResult:
    """Run SQL once per (pipeline, logical date, step): reattach, or submit, then wait.

    With a task timeout, the wait ends (and cancels the statement) a second before it, rather than being interrupted only after the current long poll returns.
    """
    started = time.monotonic()
    logger = get_run_logger()
    step_key = StepKey(pipeline, logical_date, step)  # type: ignore[arg-type]

    def submit(run: RunKey, operation: SubmitOperation, request: Mapping[str, Any]) -> str:
        key = run.cache_key(target)
        state = checkpointed_submit(
            key, run.statement_name, client, operation, request, return_state=True
        )
        statement_id: str = state.result()
        if state.name != "Cached" or statement_exists(client, statement_id):
            return statement_id
        # The checkpoint outlived the statement (the Data API forgets after 24 h) or belongs
        # to another warehouse behind the same target names (a rebuilt local stack). The
        # Data API found no statement of that name either, so nothing can run twice.
        logger.warning(
            "checkpoint for %s names statement %s, which the Data API does not know; "
            "submitting afresh",
            run.statement_name,
            statement_id,
        )
        return checkpointed_submit.with_options(refresh_cache=True)(
            key, run.statement_name, client, operation, request
        )

    submission = submit_or_reattach(
        client,
        target,
        sql,
        step_key,
        parameters=parameters,
        force=force,
        execution_mode=execution_mode,
        logger=logger,
        submit=submit,
    )
    text = sql if isinstance(sql, str) else "; ".join(sql)
    context = TaskRunContext.get()
    task_timeout = context.task.timeout_seconds if context else None
    if task_timeout:
        left = task_timeout - (time.monotonic() - started) - TIMEOUT_MARGIN
        policy = within(policy or WaitPolicy(), left)
    try:
        description = wait_or_cancel(
            client,
            submission.statement_id,
            policy=policy,
            sql=text,
            logger=logger,
            label=submission.statement_name,
        )
    except StatementError as exc:
        record_statement(pipeline, _row(submission.statement_name, None, exc))
        raise
    result = replace(
        parse_description(description, submission.statement_name),
        reattached=submission.reattached,
    )
    record_statement(pipeline, _row(submission.statement_name, result, None))
    logger.info(
        "%s FINISHED in %s s (statement %s, query %s, rows %s)",
        submission.statement_name,
        result.duration_seconds,
        result.statement_id,
        result.query_id,
        result.rows_affected,
    )
    return result


@task(name="redshift-data-call-procedure", cache_policy=NO_CACHE)
def call_procedure(
    client: RedshiftDataAPIServiceClient,
    target: RedshiftTarget,
    schema: str,
    name: str,
    args: Sequence[ArgValue] | Mapping[str, ArgValue] = (),
    *,
    pipeline: str,
    logical_date: dt.date | str,
    step: str | None = None,
    force: bool = False,
    policy: WaitPolicy | None = None,
) -> StatementResult:
    """CALL a stored procedure through ``run_statement``; the step defaults to its name."""
    sql, parameters = call_procedure_sql(schema, name, args)
    return run_statement.fn(
        client,
        target,
        sql,
        pipeline=pipeline,
        logical_date=logical_date,
        step=step or f"{schema}.{name}".lower(),
        parameters=parameters,
        force=force,
        policy=policy,
    )


def cancel_night_hook(
    client_factory: Callable[[], RedshiftDataAPIServiceClient],
    pipeline: str,
    logical_date_parameter: str = "logical_date",
) -> Callable[[Flow[Any, Any], FlowRun, State[Any]], None]:
    """A flow ``on_cancellation`` / ``on_crashed`` hook: cancel this night's running statements.

    A runner runs these hooks in its own process after stopping the flow's, so the hook
    finds the statements by name (pipeline and the run's logical date), not by memory.
    """

    def hook(_flow: Flow[Any, Any], flow_run: FlowRun, state: State[Any]) -> None:
        logical_date = flow_run.parameters.get(logical_date_parameter)
        if logical_date is None:
            return
        cancel_statements_named(
            client_factory(),
            night_prefix(pipeline, str(logical_date)[:10]),
            reason=f"flow run {flow_run.name} is {state.name}",
        )

    return hook
