"""The Prefect tasks: ``execute_statement`` and ``call_procedure``, one line each to call.

Thin on purpose: the decisions live in the sync modules. What Prefect adds is
- a client built from the target block inside the task (nothing to pass but the target);
- a checkpoint: with a run key, the submit is a task whose persisted result is the
  statement id, cached on the run key (pipeline, logical date, step, attempt) and not on
  the task's source code, so a crashed, retried or resumed run gets the id back instead
  of submitting again; without one, the ClientToken is derived from the task run, so a
  retry of the same task run cannot start a second statement within the token's 8 hours;
- retries only for what reattaches (``tasks.jobs.retry_condition``), the same on both tasks;
- one log line per state change through the run logger;
- cancellation when waiting is abandoned (task timeout, SIGTERM via Prefect's
  TerminationSignal), from ExecuteStatement's answer on: also while the checkpoint task
  ends and while the flow run is tagged, before the wait; a flow run stopped from outside
  is handled by its work tags in ``flows.hooks``;
- one table artifact per flow run listing its statements, updated in place
  (``tasks.redshift_data.artifact``);
- a tag on the flow run per statement it waits on (``tasks.flow_run_tags``), which fences
  its stop hooks;
- task runs named after their step (``submit <step>``), not ``<task>-<random>``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext

from tasks.flow_run_tags import record_work, statement_tag
from tasks.jobs import Logger, RunKey, WaitPolicy, task_retry_options
from tasks.redshift_data.artifact import record_statement
from tasks.redshift_data.cancel import cancelled_if_abandoned
from tasks.redshift_data.errors import StatementError
from tasks.redshift_data.identifiers import ArgValue, call_procedure_sql, split_procedure_name
from tasks.redshift_data.requests import ExecutionMode, SubmitOperation, build_submit_request
from tasks.redshift_data.results import DEFAULT_MAX_ROWS, get_rows
from tasks.redshift_data.status import StatementResult, parse_description
from tasks.redshift_data.submit import Submission, submit_or_reattach, submit_statement
from tasks.redshift_data.target import RedshiftTarget
from tasks.redshift_data.waiting import wait_or_cancel

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

CHECKPOINT_TTL = dt.timedelta(hours=24)  # the Data API keeps statements 24 h
TIMEOUT_MARGIN = 1.0  # seconds left to cancel the statement before the task timeout hits


def checkpoint_key(run: RunKey, target: RedshiftTarget) -> str:
    """The Prefect cache key of one attempt's submit: the run key and the warehouse only."""
    return f"redshift-data-submit-{run.client_token(target.scope())}"


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
    target: RedshiftTarget,
    operation: SubmitOperation,
    request: Mapping[str, Any],
    policy: WaitPolicy | None = None,
) -> str:
    """The statement id, persisted under ``cache_key`` before anyone waits on it."""
    statement_id = submit_statement(
        target.data_api_client(), operation, request, logger=get_run_logger(), policy=policy
    )
    _note_submitted(statement_id)
    return statement_id


# The id the checkpoint task of this thread submitted, for the caller to cancel if it is
# abandoned while that task ends (Prefect records its result and state: calls to the API).
# Nested sync tasks run in their caller's thread.
_submitted = threading.local()


def _note_submitted(statement_id: str | None) -> None:
    _submitted.statement_id = statement_id


def _noted_submission() -> str | None:
    return getattr(_submitted, "statement_id", None)


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


def _submit_checkpointed(
    target: RedshiftTarget, logger: Logger
) -> Callable[[RunKey, SubmitOperation, Mapping[str, Any], WaitPolicy | None], str]:
    """The ``submit`` hook of ``submit_or_reattach``: submit through the checkpoint."""
    client = target.data_api_client()

    def submit(
        run: RunKey,
        operation: SubmitOperation,
        request: Mapping[str, Any],
        policy: WaitPolicy | None,
    ) -> str:
        key = checkpoint_key(run, target)
        named = checkpointed_submit.with_options(task_run_name=f"submit {run.step}")
        _note_submitted(None)
        with cancelled_if_abandoned(client, _noted_submission, logger):
            state = named(
                key, run.statement_name, target, operation, request, policy, return_state=True
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
        with cancelled_if_abandoned(client, _noted_submission, logger):
            return named.with_options(refresh_cache=True)(
                key, run.statement_name, target, operation, request, policy
            )

    return submit


def _tag_flow_run(client: RedshiftDataAPIServiceClient, statement_id: str, logger: Logger) -> None:
    """Tag the flow run with the statement (its stop hooks' fence, suspend mode's poller),
    cancelling the statement if the task is abandoned during that call to the Prefect API."""
    with cancelled_if_abandoned(client, lambda: statement_id, logger):
        record_work(statement_tag(statement_id))


def _task_run_token(target: RedshiftTarget) -> str:
    """A ClientToken stable across retries of this task run, new for every other call."""
    context = TaskRunContext.get()
    run_id = str(context.task_run.id) if context and context.task_run else str(uuid.uuid4())
    return hashlib.sha256(f"{target.scope()}|task-run|{run_id}".encode()).hexdigest()


def _submit_without_key(
    target: RedshiftTarget,
    sql: str | Sequence[str],
    parameters: Mapping[str, object] | None,
    execution_mode: ExecutionMode | None,
    logger: Logger,
    policy: WaitPolicy | None,
) -> Submission:
    operation, request = build_submit_request(
        target,
        sql,
        parameters=parameters,
        client_token=_task_run_token(target),
        execution_mode=execution_mode,
    )
    statement_id = submit_statement(
        target.data_api_client(), operation, request, logger=logger, policy=policy
    )
    logger.info("submitted statement %s", statement_id)
    return Submission(statement_id, statement_id, 1, False)


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


@task(name="redshift-data-execute-statement", cache_policy=NO_CACHE, **task_retry_options())
def execute_statement(
    sql: str | Sequence[str],
    *,
    target: RedshiftTarget,
    parameters: Mapping[str, object] | None = None,
    run_key: RunKey | None = None,
    fetch: bool = False,
    force: bool = False,
    policy: WaitPolicy | None = None,
    execution_mode: ExecutionMode | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    reattach_to: Collection[str] = (),
    tag_flow_run: bool = True,
) -> StatementResult:
    """Run SQL on ``target`` through the Data API and wait for it to finish.

    Args:
        sql: one statement, or a list that runs as one BatchExecuteStatement.
        target: where to run it (a ``RedshiftTarget`` block, e.g. ``RedshiftTarget.load(name)``).
        parameters: values for ``:name`` placeholders; they travel as Data API Parameters.
        run_key: makes the statement once-only across runs: a retry, a restarted flow run or
            a second call with the same key reattaches to the running or finished statement
            (found by its StatementName ``pipeline/date/step/attempt-N``); only after FAILED
            or ABORTED does a new attempt submit. Without one every call submits anew.
        fetch: also return the result rows, typed (Decimal, date, datetime ...), in ``rows``.
        force: with a run key, submit a new attempt even if an earlier one FINISHED.
        policy: how to wait (long polling, backoff, timeout) and how patiently a refused
            submit is tried again (``submit_interval``); the defaults suit Redshift.
        execution_mode: for a batch, TRANSACTION (default) or AUTO_COMMIT.
        max_rows: with ``fetch``, fail rather than fetch more rows than this.
        reattach_to: with a run key, ids of statements this flow run already started
            (``start_statement``); this step's is reattached whatever its status, never
            resubmitted.
        tag_flow_run: tag the flow run with the statement (``redshift-stmt:<id>``), so its
            stop hooks cancel it and suspend mode's poller waits on it. False for a short
            read-only query nothing needs to stop: an informative count that ended before
            the run suspended would otherwise be asked about on every poller pass.

    Raises StatementFailedError (with Redshift's message, statement and query id),
    StatementAbortedError, StatementTimeoutError (after cancelling the statement).
    """
    started = time.monotonic()
    logger = get_run_logger()
    client = target.data_api_client()
    if run_key is None:
        submission = _submit_without_key(target, sql, parameters, execution_mode, logger, policy)
    else:
        submission = submit_or_reattach(
            client,
            target,
            sql,
            run_key,
            parameters=parameters,
            force=force,
            execution_mode=execution_mode,
            logger=logger,
            submit=_submit_checkpointed(target, logger),
            reattach_to=reattach_to,
            policy=policy,
        )
    if tag_flow_run:
        _tag_flow_run(client, submission.statement_id, logger)
    context = TaskRunContext.get()
    task_timeout = context.task.timeout_seconds if context else None
    if task_timeout:
        left = task_timeout - (time.monotonic() - started) - TIMEOUT_MARGIN
        policy = (policy or WaitPolicy()).within(left)
    try:
        description = wait_or_cancel(
            client,
            submission.statement_id,
            policy=policy,
            sql=sql if isinstance(sql, str) else "; ".join(sql),
            logger=logger,
            label=submission.statement_name,
        )
    except StatementError as exc:
        record_statement(_row(submission.statement_name, None, exc))
        raise
    result = replace(
        parse_description(description, submission.statement_name if run_key else None),
        reattached=submission.reattached,
    )
    record_statement(_row(submission.statement_name, result, None))
    logger.info(
        "%s FINISHED in %s s (statement %s, query %s, rows %s)",
        submission.statement_name,
        result.duration_seconds,
        result.statement_id,
        result.query_id,
        result.rows_affected,
    )
    if fetch and result.has_result_set:
        rows = get_rows(client, result.statement_id, max_rows=max_rows)
        result = replace(result, rows=tuple(rows))
    return result


@task(name="redshift-data-call-procedure", cache_policy=NO_CACHE, **task_retry_options())
def call_procedure(
    procedure: str,
    args: Sequence[ArgValue] | Mapping[str, ArgValue] = (),
    *,
    target: RedshiftTarget,
    run_key: RunKey | None = None,
    force: bool = False,
    policy: WaitPolicy | None = None,
    reattach_to: Collection[str] = (),
) -> StatementResult:
    """``CALL schema.procedure(args...)`` on ``target``; like ``execute_statement``.

    ``procedure`` is ``"schema.name"``; both parts are validated and quoted, and every
    argument travels as a Data API parameter (None and '' become SQL NULL and '').
    """
    schema, name = split_procedure_name(procedure)
    sql, parameters = call_procedure_sql(schema, name, args)
    return execute_statement.fn(
        sql,
        target=target,
        parameters=parameters,
        run_key=run_key,
        force=force,
        policy=policy,
        reattach_to=reattach_to,
    )


@task(name="redshift-data-start-statement", cache_policy=NO_CACHE, **task_retry_options())
def start_statement(
    sql: str | Sequence[str],
    *,
    target: RedshiftTarget,
    run_key: RunKey,
    parameters: Mapping[str, object] | None = None,
    force: bool = False,
    reattach_to: Collection[str] = (),
) -> str:
    """Submit (or reattach to) the run key's statement and return its id without waiting.

    For flows that suspend while the warehouse works: the submit is checkpointed exactly
    as in ``execute_statement``, so a resumed run finds the same statement; the flow later
    reads the outcome with ``execute_statement(..., reattach_to=[<id>])``. It is submitted
    with ``WithEvent=True``, so its end reaches EventBridge (and, locally, the endpoint's
    event bridge), which resumes the suspended run (``flows.resume_events``).
    """
    return start_submission(
        sql,
        target=target,
        run_key=run_key,
        parameters=parameters,
        force=force,
        reattach_to=reattach_to,
    ).statement_id


def start_submission(
    sql: str | Sequence[str],
    *,
    target: RedshiftTarget,
    run_key: RunKey,
    parameters: Mapping[str, object] | None = None,
    force: bool = False,
    reattach_to: Collection[str] = (),
    policy: WaitPolicy | None = None,
) -> Submission:
    """``start_statement``'s body, inside a task run: the submission, including whether it
    reattached to an earlier run's statement (for flows that report it). ``policy`` paces
    the lookup of earlier attempts and a refused submit, as in ``execute_statement``."""
    logger = get_run_logger()
    client = target.data_api_client()
    submission = submit_or_reattach(
        client,
        target,
        sql,
        run_key,
        parameters=parameters,
        force=force,
        logger=logger,
        submit=_submit_checkpointed(target, logger),
        reattach_to=reattach_to,
        with_event=True,
        policy=policy,
    )
    _tag_flow_run(client, submission.statement_id, logger)
    return submission
