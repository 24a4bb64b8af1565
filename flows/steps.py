"""One pipeline step as Prefect task runs: named after the step, with honest final states.

Each step kind has one task here that runs the step to its end through the tasks/ layer
(which owns idempotency) and ends in a state that says what happened: ``Completed`` when
this run did the work, ``Completed(name="Reattached")`` when it only read the work of an
earlier run (``flows.summary.finished_status``, the rule the summary uses too). Task runs
are named after their step (``load_warehouse``, ``check: check_sales_reconciled``,
``start load_warehouse``) so the run page reads like the pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import date
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext, TaskRunContext
from prefect.futures import PrefectFuture
from prefect.states import Completed, State

from flows.clean_reports import report_path, report_root
from flows.pipeline import CheckStep, GlueStep, Pipeline, ProcedureStep, Step, render_arguments
from flows.runtime import Runtime
from flows.summary import REATTACHED_STATE_NAME
from tasks.flow_run_tags import glue_run_tag, record_work
from tasks.glue import GlueRunResult, prefect_start_lock
from tasks.glue.runner import run_glue_job
from tasks.glue.task import start_tagged_run
from tasks.jobs import retry_condition
from tasks.redshift_data import RunKey, StatementResult, execute_statement
from tasks.redshift_data.identifiers import call_procedure_sql
from tasks.redshift_data.prefect_tasks import start_submission

MAX_CHECK_ROWS_SHOWN = 5


class CheckFailedError(RuntimeError):
    pass


def finished_state(result: Any, reattached: bool, earlier: bool = False) -> State[Any]:
    """The task run's final state: named "Reattached" when the work was an earlier run's
    (``earlier``: its start, before a suspend, found it so)."""
    if reattached or earlier:
        return Completed(data=result, name=REATTACHED_STATE_NAME, message="earlier run's work")
    return Completed(data=result)


def step_task_run_name(step: Step) -> str:
    return f"check: {step.name}" if isinstance(step, CheckStep) else step.name


def task_options(step: Step) -> dict[str, Any]:
    """Prefect task options from the step's retry policy (retries that reattach only)."""
    policy = step.retry
    retries = max(0, policy.attempts - 1)
    return {
        "task_run_name": step_task_run_name(step),
        "retries": retries,
        "retry_delay_seconds": [
            policy.delay_seconds * policy.backoff_rate**n for n in range(retries)
        ],
        "retry_jitter_factor": 0.5 if policy.jitter else None,
        "retry_condition_fn": retry_condition,
    }


def step_statement(step: CheckStep | ProcedureStep) -> tuple[str, Mapping[str, object] | None]:
    """The step's SQL and its Data API parameters: a check's query as written, or the CALL of
    a procedure with every argument a parameter (``call_procedure_sql``)."""
    if isinstance(step, ProcedureStep):
        return call_procedure_sql(step.schema, step.procedure, step.args)
    return step.sql, None


def _statement_step(
    step: CheckStep | ProcedureStep,
    pipeline: str,
    runtime: Runtime,
    night: date,
    force: bool,
    reattach_to: Collection[str],
    earlier: bool,
) -> State[StatementResult]:
    """The body of both statement steps: run the step's statement to its end inside this
    task (``execute_statement.fn``: the step's retries are the only ones); a check fetches
    its rows, and any row fails it, quoted."""
    sql, parameters = step_statement(step)
    result: StatementResult = execute_statement.fn(
        sql,
        target=runtime.target,
        parameters=parameters,
        run_key=RunKey(pipeline, night, step.name),
        fetch=isinstance(step, CheckStep),
        force=force,
        policy=runtime.wait_policy(step.wait.timeout_seconds),
        reattach_to=reattach_to,
    )
    if isinstance(step, CheckStep) and result.rows:
        rows = result.rows
        shown = "; ".join(json.dumps(r, default=str) for r in rows[:MAX_CHECK_ROWS_SHOWN])
        raise CheckFailedError(
            f"check {step.name!r} ({step.description}) found {len(rows)} offending row(s): {shown}"
        )
    return finished_state(result, result.reattached, earlier)


@task(name="data-quality-check", cache_policy=NO_CACHE)
def run_check(
    step: CheckStep,
    pipeline: str,
    runtime: Runtime,
    night: date,
    force: bool,
    reattach_to: Collection[str] = (),
    earlier: bool = False,
) -> State[StatementResult]:
    """Run a check query; its offending rows (if any) fail the step and are quoted."""
    return _statement_step(step, pipeline, runtime, night, force, reattach_to, earlier)


@task(name="redshift-procedure-step", cache_policy=NO_CACHE)
def run_procedure(
    step: ProcedureStep,
    pipeline: str,
    runtime: Runtime,
    night: date,
    force: bool,
    reattach_to: Collection[str] = (),
    earlier: bool = False,
) -> State[StatementResult]:
    """CALL the step's procedure to its end."""
    return _statement_step(step, pipeline, runtime, night, force, reattach_to, earlier)


@task(name="glue-step", cache_policy=NO_CACHE)
def run_glue(
    options: Mapping[str, Any],
    runtime: Runtime,
    reattach_to: Collection[str] = (),
    earlier: bool = False,
) -> State[GlueRunResult]:
    """Run the step's Glue job to its end (``run_glue_job`` on the runtime's client)."""
    from prefect import get_run_logger

    logger = get_run_logger()
    result = run_glue_job(
        runtime.glue,
        **options,
        poll=runtime.glue_poll_policy(),
        reattach_to=reattach_to,
        # lookup + StartJobRun under a Prefect lease per job: two invocations of one night
        # start one run per step (tasks/glue/lease.py)
        start_lock=prefect_start_lock(logger=logger),
        logger=logger,
        # tagged on the flow run as soon as known: what this run's stop hooks fence by
        on_start=lambda run_id: record_work(glue_run_tag(options["job_name"], run_id)),
    )
    return finished_state(result, result.reattached, earlier)


def glue_options(
    step: GlueStep, pipeline: Pipeline, runtime: Runtime, night: date, force: bool
) -> dict[str, Any]:
    settings = runtime.settings
    arguments = runtime.glue_arguments(render_arguments(step.arguments, night))
    report = report_path(report_root(settings), step.name, night)
    if report:
        arguments["--report_path"] = report
    return {
        "job_name": step.job_name,
        "arguments": arguments,
        "run_key": RunKey(pipeline.name, night, step.name),
        "worker_type": settings.glue_worker_type,
        "number_of_workers": settings.glue_number_of_workers,
        "timeout_minutes": min(settings.glue_timeout_minutes, int(step.wait.timeout_seconds // 60)),
        "force": force,
    }


def submit_step(
    step: Step,
    pipeline: Pipeline,
    runtime: Runtime,
    night: date,
    force: bool,
    reattach_to: Collection[str] = (),
    earlier: bool = False,
) -> PrefectFuture[Any]:
    """Run the step to its end in the task runner (waiting for it in this process)."""
    options = task_options(step)
    if isinstance(step, GlueStep):
        return run_glue.with_options(**options).submit(
            glue_options(step, pipeline, runtime, night, force), runtime, reattach_to, earlier
        )
    if isinstance(step, ProcedureStep):
        return run_procedure.with_options(**options).submit(
            step, pipeline.name, runtime, night, force, reattach_to, earlier
        )
    return run_check.with_options(**options).submit(
        step, pipeline.name, runtime, night, force, reattach_to, earlier
    )


def _start_key(context: TaskRunContext, parameters: dict[str, Any]) -> str | None:
    """Per flow run and step: a resumed run gets back what its first start found."""
    flow_run = FlowRunContext.get()
    if flow_run is None or flow_run.flow_run is None:
        return None
    return f"mystore-start-{flow_run.flow_run.id}-{parameters['step'].name}"


@task(
    name="start-step",
    cache_key_fn=_start_key,
    persist_result=True,
    result_serializer="json",
)
def start_work(
    step: Step,
    pipeline: str,
    runtime: Runtime,
    night: date,
    force: bool,
    reattach_to: Collection[str],
    glue: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Start (or reattach to) the step's work without waiting: suspend mode's first half.

    Returns ``{"id": ..., "earlier": bool}``, persisted per flow run and step: after the
    run resumes (and reattaches to its own work), "earlier" still says whether the work
    was an earlier run's, so the summary can say "reattached" honestly.
    """
    from prefect import get_run_logger

    if isinstance(step, GlueStep):
        assert glue is not None
        run_id, earlier = start_tagged_run(
            runtime.glue, **glue, reattach_to=reattach_to, logger=get_run_logger()
        )
        return {"id": run_id, "earlier": earlier}
    sql, parameters = step_statement(step)
    submission = start_submission(
        sql,
        target=runtime.target,
        run_key=RunKey(pipeline, night, step.name),
        parameters=parameters,
        force=force,
        reattach_to=reattach_to,
        policy=runtime.wait_policy(step.wait.timeout_seconds),
    )
    return {"id": submission.statement_id, "earlier": submission.reattached}


def start_step(
    step: Step,
    pipeline: Pipeline,
    runtime: Runtime,
    night: date,
    force: bool,
    reattach_to: Collection[str],
) -> PrefectFuture[dict[str, Any]]:
    options = {**task_options(step), "task_run_name": f"start {step.name}"}
    glue = (
        glue_options(step, pipeline, runtime, night, force) if isinstance(step, GlueStep) else None
    )
    return start_work.with_options(**options).submit(
        step, pipeline.name, runtime, night, force, reattach_to, glue
    )
