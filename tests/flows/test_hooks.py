"""The stop hook stops the work of *its* flow run, read from the run's tags on the Prefect
server (as a runner's hook process must), and leaves another run of the same night alone."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.states import Cancelled, Crashed, Running

from flows.hooks import stop_hook, stop_run_work
from flows.pipeline import GlueStep, Pipeline, ProcedureStep
from flows.runtime import Runtime
from flows.waiting import Work
from local.embedded import LOCAL_TARGET
from local.stack import LocalStack
from tasks.flow_run_tags import glue_run_tag, statement_tag
from tasks.glue import RUN_KEY_ARGUMENT
from tasks.redshift_data import RunKey
from tasks.redshift_data.prefect_tasks import start_statement
from tests.conftest import TEST_ACCESS_KEY, TEST_SECRET_KEY, PrefectApi
from tests.flows.test_runner import _runtime

NIGHT = date(2026, 11, 21)
PIPELINE = Pipeline(
    name="hook-test",
    steps=(
        GlueStep("clean_store_sale", job_name="raw2clean", arguments={"--table": "store_sale"}),
        ProcedureStep(
            "load", "stg_mystore", "sp_run_incremental_load", depends_on=("clean_store_sale",)
        ),
    ),
)
RUNNING = ("SUBMITTED", "PICKED", "STARTED")


@flow(name="hook-test-night")
def a_night() -> None:
    """Only a flow to hang flow runs on; never run."""


def _wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


def _flow_run(tags: list[str]) -> Any:
    """A flow run of the night on the test server, Running, tagged with its work."""
    with get_client(sync_client=True) as client:
        return client.create_flow_run(a_night, tags=tags, state=Running())


def _set_state(flow_run_id: Any, state: Any) -> None:
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, state, force=True)


def _submit(runtime: Runtime, name: str) -> str:
    return runtime.redshift_data.execute_statement(
        **LOCAL_TARGET.request_fields(), Sql="select pg_sleep(60)", StatementName=name
    )["Id"]


def _status(runtime: Runtime, statement_id: str) -> str:
    return str(runtime.redshift_data.describe_statement(Id=statement_id)["Status"])


@pytest.mark.usefixtures("prefect_settings")
def test_the_hook_of_one_run_stops_only_its_own_work(
    migrated: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs of the same night: run A (crashed) started the load's attempt 1 and a Glue
    run; run B (live) started attempt 2 of the same step. A's hook stops A's work only."""
    # The hook builds its own runtime from settings: same endpoint, same identity.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY)
    for name, value in migrated.client_env().items():
        monkeypatch.setenv(name, value)
    runtime = _runtime(migrated)
    glue = runtime.glue
    theirs_a = _submit(runtime, "hook-test/2026-11-21/load/attempt-1")
    theirs_b = _submit(runtime, "hook-test/2026-11-21/load/attempt-2")
    glue_a = glue.start_job_run(
        JobName="raw2clean",
        Arguments={
            RUN_KEY_ARGUMENT: "hook-test/2026-11-21/clean_store_sale",
            "--table": "store_sale",
            "--logical_date": "2026-11-21",
        },
    )["JobRunId"]
    run_a = _flow_run([statement_tag(theirs_a), glue_run_tag("raw2clean", glue_a)])
    run_b = _flow_run([statement_tag(theirs_b)])
    _wait_for(lambda: _status(runtime, theirs_a) == "STARTED")
    _set_state(run_a.id, Crashed())
    with get_client(sync_client=True) as client:
        crashed = client.read_flow_run(run_a.id)

    stop_hook(lambda _: (PIPELINE, NIGHT))(a_night, crashed, crashed.state)

    _wait_for(lambda: _status(runtime, theirs_a) == "ABORTED")

    def glue_state() -> str:
        return str(glue.get_job_run(JobName="raw2clean", RunId=glue_a)["JobRun"]["JobRunState"])

    _wait_for(lambda: glue_state() in ("STOPPED", "SUCCEEDED", "FAILED"))
    assert glue_state() == "STOPPED"
    assert _status(runtime, theirs_b) in RUNNING  # run B's, same night and step: untouched
    runtime.redshift_data.cancel_statement(Id=theirs_b)
    _set_state(run_b.id, Cancelled())


@pytest.mark.usefixtures("prefect_settings")
def test_work_another_live_run_waits_on_is_left_running(migrated: LocalStack) -> None:
    """B reattached to A's statement and still waits on it: A's stop leaves it running;
    once B has ended too, A's stop path does stop it."""
    runtime = _runtime(migrated)
    shared = _submit(runtime, "hook-test/2026-11-21/check/attempt-1")
    run_a = _flow_run([statement_tag(shared)])
    run_b = _flow_run([statement_tag(shared)])
    _set_state(run_a.id, Crashed())
    assert stop_run_work(runtime, run_a.id, reason="test") == []
    assert _status(runtime, shared) in RUNNING
    _set_state(run_b.id, Cancelled())
    assert stop_run_work(runtime, run_a.id, reason="test") == [Work("statement", shared)]
    _wait_for(lambda: _status(runtime, shared) == "ABORTED")


@pytest.mark.usefixtures("prefect_settings")
def test_a_stopped_runs_waiting_thread_leaves_work_another_live_run_waits_on(
    migrated: LocalStack,
) -> None:
    """A's step waits, in its worker thread, on the statement B (live) also waits on; A is
    stopped (its stop path, as on SIGTERM): the fence leaves the statement running, and so
    does the thread, which ends with WorkStoppedError instead of cancelling B's load."""
    from prefect import flow as prefect_flow

    from tasks.flow_run_tags import current_flow_run_id
    from tasks.jobs import WaitPolicy
    from tasks.redshift_data import execute_statement
    from tasks.stopping import WorkStoppedError
    from tests.tasks.conftest import outcomes_of

    runtime = _runtime(migrated)
    key = RunKey("hook-test", NIGHT, "shared-wait")
    shared = _submit(runtime, key.with_attempt(1).statement_name)
    _flow_run([statement_tag(shared)])  # B: Running, waits on it too

    @prefect_flow(name="hook-test-night-a")
    def night_a() -> object:
        waiting = execute_statement.with_options(retries=0).submit(
            "select pg_sleep(60)",
            target=runtime.target,
            run_key=key,
            policy=WaitPolicy(initial_interval=0.2, max_interval=0.2, long_poll_seconds=1),
        )
        _wait_for(lambda: statement_tag(shared) in _tags(current_flow_run_id()))
        stop_run_work(runtime, current_flow_run_id(), reason="test")
        (outcome,) = outcomes_of(waiting)
        return outcome

    try:
        outcome = night_a()
        assert isinstance(outcome, WorkStoppedError), outcome
        assert _status(runtime, shared) in RUNNING
    finally:
        runtime.redshift_data.cancel_statement(Id=shared)


def _tags(flow_run_id: Any) -> list[str]:
    with get_client(sync_client=True) as client:
        return list(client.read_flow_run(flow_run_id).tags)


def test_a_task_tags_its_flow_run_with_the_statement_it_started(
    migrated: LocalStack, prefect_settings: PrefectApi
) -> None:
    """What the fence reads is written by the tasks themselves, before anyone waits."""
    runtime = _runtime(migrated)

    @flow(name="hook-test-tagging")
    def starts_one() -> tuple[Any, str]:
        from prefect.context import FlowRunContext

        context = FlowRunContext.get()
        assert context is not None and context.flow_run is not None
        key = RunKey("hook-test", NIGHT, f"tagging{time.time_ns()}")
        statement_id = start_statement("select 1", target=runtime.target, run_key=key)
        return context.flow_run.id, statement_id

    flow_run_id, statement_id = starts_one()
    with get_client(sync_client=True) as client:
        tags = client.read_flow_run(flow_run_id).tags
    assert statement_tag(statement_id) in tags
