"""Execute a Pipeline with Prefect: layer by layer, parallel within a layer, stop on failure.

Each step kind maps to one task in ``flows.steps`` over tasks/ (which own idempotency: a
retried or repeated step reattaches to its earlier Glue run or statement). This module owns
only ordering, the "later steps do not run" rule, progress lines and the night's summary.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import date
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import RUN_ID
from prefect.exceptions import Pause
from prefect.futures import PrefectFuture, wait

from flows.clean_reports import (
    UnreadableCleanReportError,
    read_rows_written,
    report_path,
    report_root,
)
from flows.hooks import stop_run_work
from flows.pipeline import GlueStep, Pipeline, Step
from flows.runtime import Runtime
from flows.steps import CheckFailedError, run_check, start_step, submit_step, task_options
from flows.summary import (
    NO_INPUT_STATUS,
    REATTACHED_STATE_NAME,
    NightSummary,
    StepOutcome,
    WarehouseChanges,
    finished_status,
    to_markdown,
)
from flows.waiting import Suspender, WaitMode, Work
from tasks.flow_run_tags import current_flow_run_id
from tasks.glue import GlueRunResult
from tasks.redshift_data import StatementResult, execute_statement
from tasks.stopping import clear_stop

__all__ = [
    "CheckFailedError",
    "NightFailedError",
    "run_check",
    "run_pipeline",
    "task_options",
]

PROGRESS_EVERY_SECONDS = 30.0

# Before the load: the newest change time of either table and the sales count. After it,
# every row this run writes is newer than that mark (a load stamps its rows with its
# transaction's start), so the warehouse's own timestamps tell what this run did (no clock
# comparison between the orchestrator and the database). Sales written minus the count's
# growth are the sales replaced: a load deletes and inserts a sale already there.
MARK_SQL = """
select
    cast(greatest(
        (select max(d.dw_update_date) from dw_mystore.customer_dim as d),
        (select max(f.dw_update_date) from dw_mystore.sale_fact as f)
    ) as varchar(32)) as mark,
    (select count(*) from dw_mystore.sale_fact) as sales
"""

CHANGES_SQL = """
with
new_rows as (
    select customer_id from dw_mystore.customer_dim
    where customer_key <> -1 and dw_insert_date > cast(:mark as timestamp)
),
old_rows as (
    select distinct customer_id from dw_mystore.customer_dim
    where customer_key <> -1 and dw_insert_date <= cast(:mark as timestamp)
)
select
    (select count(distinct n.customer_id) from new_rows as n
        where n.customer_id not in (select o.customer_id from old_rows as o))
        as customers_inserted,
    (select count(distinct c.customer_id) from dw_mystore.customer_dim as c
        where c.customer_key <> -1 and c.scd_current_flag = 'Y'
            and c.dw_insert_date <= cast(:mark as timestamp)
            and c.dw_update_date > cast(:mark as timestamp))
        as customers_updated_in_place,
    (select count(distinct n.customer_id) from new_rows as n
        where n.customer_id in (select o.customer_id from old_rows as o))
        as customers_versioned,
    (select count(*) from dw_mystore.sale_fact) as sales,
    (select count(*) from dw_mystore.sale_fact
        where dw_insert_date > cast(:mark as timestamp)) as sales_written
"""

EPOCH_MARK = "1900-01-01 00:00:00"


class NightFailedError(RuntimeError):
    """A step failed; ``summary`` says which, with the real error, and what was skipped."""

    def __init__(self, summary: NightSummary) -> None:
        super().__init__(summary.error)
        self.summary = summary.as_dict()


def _own_work(suspender: Suspender | None, step: Step) -> frozenset[str]:
    """The step's ``reattach_to``: this run's own work of the step's kind (suspend mode)."""
    if suspender is None:
        return frozenset()
    return suspender.own_ids("glue" if isinstance(step, GlueStep) else "statement")


def settle_layer(
    layer: tuple[Step, ...],
    pipeline: Pipeline,
    runtime: Runtime,
    night: date,
    force: bool,
    suspender: Suspender,
) -> set[str]:
    """Start everything the layer can start, then suspend until all of it has ended.

    A step whose start failed is left to the reading pass, which tries it as poll mode does
    and reports its error. Returns the steps whose work an earlier run did.
    """
    logger = get_run_logger()
    starts = {
        s.name: start_step(s, pipeline, runtime, night, force, _own_work(suspender, s))
        for s in layer
    }
    work: list[Work] = []
    earlier: set[str] = set()
    for step in layer:
        started = starts[step.name].result(raise_on_failure=False)
        if not isinstance(started, Mapping) or not isinstance(started.get("id"), str):
            logger.warning(
                "%s could not be started (%s); reading it as poll mode", step.name, started
            )
            continue
        if started.get("earlier"):
            earlier.add(step.name)
        if isinstance(step, GlueStep):
            work.append(Work("glue", started["id"], step.job_name))
        else:
            work.append(Work("statement", started["id"]))
    suspender.settle(work)
    return earlier


def outcome_of(
    step: Step, future: PrefectFuture[Any], runtime: Runtime, night: date
) -> tuple[StepOutcome, BaseException | None]:
    result = future.result(raise_on_failure=False)  # waits, so the state read next is final
    state = future.state
    if isinstance(result, BaseException) or not state.is_completed():
        error = result if isinstance(result, BaseException) else RuntimeError(str(state.message))
        return StepOutcome(step.name, step.kind, "failed", detail=str(error)[:500]), error
    status = finished_status(state.name == REATTACHED_STATE_NAME)
    if isinstance(result, GlueRunResult):
        path = report_path(report_root(runtime.settings), step.name, night)
        written = read_rows_written(path, runtime.read_s3)
        if written.rows is None and runtime.settings.allow_empty_input:
            error = UnreadableCleanReportError(step.name, result.run_id, written.missing_reason)
            return StepOutcome(step.name, step.kind, "failed", detail=str(error)[:500]), error
        detail = f"run {result.run_id}"
        if written.no_input:
            status = NO_INPUT_STATUS
            detail += f"; no raw partition for {night.isoformat()} (allowed: no input)"
        return StepOutcome(
            step.name,
            step.kind,
            status,
            float(result.execution_time or 0),
            written.rows,
            detail,
            rows_missing=written.missing_reason,
        ), None
    if isinstance(result, StatementResult) and step.kind != "check":
        return StepOutcome(
            step.name,
            step.kind,
            status,
            result.duration_seconds or 0.0,
            result.rows_affected,
            f"statement {result.statement_id}",
        ), None
    duration = (result.duration_seconds or 0.0) if isinstance(result, StatementResult) else 0.0
    return StepOutcome(step.name, step.kind, status, duration, detail="no offending rows"), None


def _query(runtime: Runtime, sql: str, **parameters: object) -> tuple[dict[str, Any], ...]:
    """An informative query (no run key: it may run again on a rerun, and that is fine).
    Not a work tag on the run: a read that ends in moments needs no stop hook, and suspend
    mode's poller would otherwise describe it again on every pass."""
    result = execute_statement.with_options(retries=0, task_run_name="read warehouse counts")(
        sql,
        target=runtime.target,
        parameters=parameters or None,
        fetch=True,
        policy=runtime.wait_policy(runtime.settings.statement_timeout_seconds),
        tag_flow_run=False,
    )
    return result.rows


@task(
    name="read-warehouse-mark",
    task_run_name="read warehouse mark",
    cache_policy=RUN_ID,
    persist_result=True,
    result_serializer="json",
)
def read_mark(runtime: Runtime) -> tuple[str, int] | None:
    """The change mark and sales count before the load; None when unreadable.

    Cached per flow run: a suspended run that resumes executes again from the top, after
    the load, and must compare with the mark read before it.
    """
    try:
        row = _query(runtime, MARK_SQL)[0]
    except Exception as exc:  # counts are informative; they must not fail the night
        get_run_logger().warning("Could not read warehouse counts: %s", exc)
        return None
    return str(row.get("mark") or EPOCH_MARK), int(row.get("sales") or 0)


def read_changes(runtime: Runtime, mark: tuple[str, int] | None) -> WarehouseChanges | None:
    if mark is None:
        return None
    try:
        row = _query(runtime, CHANGES_SQL, mark=mark[0])[0]
    except Exception as exc:
        get_run_logger().warning("Could not read warehouse changes: %s", exc)
        return None
    return WarehouseChanges.from_row(row, sales_before=int(mark[1]))


def _wait_with_progress(futures: Mapping[str, PrefectFuture[Any]]) -> None:
    logger = get_run_logger()
    started = time.monotonic()
    pending = dict(futures)
    while pending:
        done, _ = wait(list(pending.values()), timeout=PROGRESS_EVERY_SECONDS)
        pending = {n: f for n, f in pending.items() if f not in done}
        if pending:
            logger.info(
                "Still running after %.0fs: %s", time.monotonic() - started, ", ".join(pending)
            )


def _run_layers(
    pipeline: Pipeline,
    runtime: Runtime,
    night: date,
    force: bool,
    summary: NightSummary,
    suspender: Suspender | None,
) -> tuple[str, BaseException] | None:
    """Run layer after layer; after the first failure the rest are recorded as skipped."""
    logger = get_run_logger()
    failure: tuple[str, BaseException] | None = None
    for layer in pipeline.layers():
        if failure is not None:
            summary.steps += [
                StepOutcome(s.name, s.kind, "skipped", detail=f"not run: {failure[0]} failed")
                for s in layer
            ]
            continue
        logger.info("Starting %s", ", ".join(s.name for s in layer))
        started = {s.name: time.monotonic() for s in layer}
        earlier: set[str] = set()
        if suspender is not None:
            earlier = settle_layer(layer, pipeline, runtime, night, force, suspender)
        futures = {
            s.name: submit_step(
                s, pipeline, runtime, night, force, _own_work(suspender, s), s.name in earlier
            )
            for s in layer
        }
        _wait_with_progress(futures)
        for step in layer:
            outcome, error = outcome_of(step, futures[step.name], runtime, night)
            if not outcome.duration_seconds:
                outcome.duration_seconds = round(time.monotonic() - started[step.name], 1)
            summary.steps.append(outcome)
            if error is not None and failure is None:
                failure = (step.name, error)
    return failure


def run_pipeline(
    pipeline: Pipeline,
    runtime: Runtime,
    night: date,
    *,
    force: bool,
    wait_mode: WaitMode | None = None,
) -> NightSummary:
    """Run the pipeline's layers; ``wait_mode`` (default: the setting) picks how to wait:
    in this process (poll) or suspended, holding nothing (``flows.waiting``)."""
    summary = NightSummary(
        pipeline=pipeline.name,
        logical_date=night,
        target=runtime.settings.target,
        api_calls=runtime.api_calls,
    )
    if any(isinstance(s, GlueStep) for s in pipeline.steps):
        runtime.settings.check_clean_reports()  # before anything starts (deployed runs too)
    started = time.monotonic()
    clear_stop(current_flow_run_id())  # a new attempt of a run stopped in this process
    suspender = Suspender.begin(wait_mode or runtime.settings.wait_mode, runtime)
    mark = read_mark(runtime)
    if mark is not None:
        mark = (str(mark[0]), int(mark[1]))
    try:
        failure = _run_layers(pipeline, runtime, night, force, summary, suspender)
    except Pause:
        raise  # suspended: the work goes on and the resumed run reads it
    except BaseException as exc:
        # A stop (SIGTERM, cancellation, Ctrl-C, flow timeout) reaches only this thread;
        # the worker threads would keep waiting, so stop what this run waits on (its tags).
        if not isinstance(exc, Exception) or isinstance(exc, TimeoutError):
            reason = f"flow stopped: {type(exc).__name__}"
            stop_run_work(runtime, current_flow_run_id(), reason=reason)
        raise
    summary.changes = read_changes(runtime, mark)
    summary.wall_seconds = time.monotonic() - started
    if failure is not None:
        summary.error = f"step {failure[0]} failed: {failure[1]}"
    headline = summary.no_input_headline()
    if headline:
        get_run_logger().warning(headline)
    create_markdown_artifact(
        key=f"{pipeline.name}-summary",
        markdown=to_markdown(summary),
        description=f"{pipeline.name} {night.isoformat()}",
    )
    if failure is not None:
        raise NightFailedError(summary) from failure[1]
    return summary
