"""A stop of a flow run reaches its worker threads' pauses and nobody else's (tasks.stopping);
work started for a caller is undone when the caller stops waiting, not after an error.

Real Prefect flow and task runs on the session's test server: the flow run id comes from
Prefect's run context, in the task's worker thread as in the flow's main thread.
"""

from __future__ import annotations

import signal
import time

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from prefect import flow, task
from prefect._internal.concurrency.cancellation import CancelledError
from prefect.exceptions import TerminationSignal
from prefect.task_engine import TaskRunTimeoutError

from local.endpoint import AwsEndpoint
from tasks.flow_run_tags import current_flow_run_id
from tasks.glue import RUN_KEY_ARGUMENT, run_glue_job
from tasks.jobs import RunKey, WaitPolicy
from tasks.redshift_data import execute_statement
from tasks.stopping import (
    WorkStoppedError,
    abandons_work,
    clear_stop,
    raise_if_stopping,
    request_stop,
    stoppable_sleep,
    undone_if_abandoned,
)
from tests.conftest import PrefectApi
from tests.tasks.conftest import outcomes_of
from tests.tasks.redshift_data.test_data_api_prefect import NIGHT, recorded_target
from tests.tasks.test_glue import FAST, glue_client, runs_with_key

PAUSE = 30.0  # far longer than any stop takes to arrive


@task(retries=0)
def pause_then_start(seconds: float) -> str:
    stoppable_sleep(seconds)
    raise_if_stopping("not starting the work")
    return "started"


@task(retries=0)
def start_now() -> str:
    raise_if_stopping("not starting the work")
    return "started"


def test_a_stop_of_the_flow_run_ends_its_worker_threads_pause(
    prefect_settings: PrefectApi,
) -> None:
    @flow
    def stopped_while_a_step_pauses() -> tuple[str | BaseException, float]:
        future = pause_then_start.submit(PAUSE)
        time.sleep(1.0)  # the step is in its pause
        asked = time.monotonic()
        request_stop(current_flow_run_id())
        (outcome,) = outcomes_of(future)
        return outcome, time.monotonic() - asked

    outcome, seconds = stopped_while_a_step_pauses()
    assert isinstance(outcome, WorkStoppedError), outcome
    assert "is being stopped" in str(outcome)
    assert seconds < PAUSE / 2, f"the pause did not end early: {seconds:.1f} s"


def test_work_not_yet_started_is_not_started_after_the_stop(prefect_settings: PrefectApi) -> None:
    @flow
    def stopped_before_a_step_starts() -> str | BaseException:
        request_stop(current_flow_run_id())
        (outcome,) = outcomes_of(start_now.submit())
        return outcome

    outcome = stopped_before_a_step_starts()
    assert isinstance(outcome, WorkStoppedError), outcome
    assert "not starting the work" in str(outcome)


def test_a_stop_of_another_flow_run_is_ignored_and_a_cleared_stop_is_forgotten(
    prefect_settings: PrefectApi,
) -> None:
    @flow
    def others_stop_and_a_cleared_one() -> tuple[str | BaseException, str | BaseException]:
        request_stop("00000000-0000-0000-0000-000000000000")  # another run's id
        (other,) = outcomes_of(pause_then_start.submit(0.2))
        own = current_flow_run_id()
        request_stop(own)
        clear_stop(own)  # what a new attempt of the run does first (flows.runner)
        (own_later,) = outcomes_of(pause_then_start.submit(0.2))
        return other, own_later

    assert others_stop_and_a_cleared_one() == ("started", "started")


def test_outside_a_flow_run_a_pause_is_a_plain_sleep() -> None:
    request_stop(None)  # nothing to stop: no flow run
    started = time.monotonic()
    stoppable_sleep(0.2)
    raise_if_stopping("plain code is never stopped")
    assert time.monotonic() - started >= 0.2  # slept the whole pause


@pytest.mark.parametrize(
    ("exc", "abandons"),
    [
        (KeyboardInterrupt(), True),
        (SystemExit(1), True),
        (CancelledError(), True),  # what a Prefect task timeout injects into the task's thread
        (TerminationSignal(signal.SIGTERM), True),  # SIGTERM, or a runner cancelling the run
        (TaskRunTimeoutError("Scope timed out"), False),  # raised only after the unwinding
        (WorkStoppedError("the flow run is being stopped"), False),  # handled by the waits
        (ClientError({"Error": {"Code": "ThrottlingException"}}, "GetJobRuns"), False),
        (RuntimeError("a bug"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_only_a_caller_that_stops_waiting_undoes_the_work(
    exc: BaseException, abandons: bool
) -> None:
    undone: list[str] = []
    assert abandons_work(exc) is abandons
    with pytest.raises(type(exc)), undone_if_abandoned(lambda: undone.append("stopped")):
        raise exc
    assert undone == (["stopped"] if abandons else [])


# -- work the stopped run only joined ---------------------------------------------------------


def test_a_stopped_run_leaves_a_glue_run_another_live_run_waits_on(
    prefect_settings: PrefectApi, endpoint: AwsEndpoint
) -> None:
    """A Glue run this flow run's step joined, which the stop path's fence leaves running
    because another live run waits on it too (``request_stop(..., leave_running=...)``, as
    flows.hooks.stop_run_work asks): the step's thread ends without stopping it."""
    client = glue_client(endpoint.url)
    key = RunKey("joined", NIGHT, "glue")
    theirs = client.start_job_run(
        JobName="standin", Arguments={RUN_KEY_ARGUMENT: key.glue_argument, "--sleep": "60"}
    )["JobRunId"]

    @task(retries=0)
    def step() -> str:
        return run_glue_job(client, "standin", {"--sleep": "60"}, run_key=key, **FAST).run_id

    @flow
    def stopped_night() -> str | BaseException:
        future = step.submit()
        time.sleep(1.0)  # the step waits on the run it joined
        request_stop(current_flow_run_id(), leave_running=[theirs])
        (outcome,) = outcomes_of(future)
        return outcome

    try:
        outcome = stopped_night()
        assert isinstance(outcome, WorkStoppedError), outcome
        run = client.get_job_run(JobName="standin", RunId=theirs)["JobRun"]
        assert run["JobRunState"] == "RUNNING"
        assert [r["Id"] for r in runs_with_key(client, "standin", key.glue_argument)] == [theirs]
    finally:
        client.batch_stop_job_run(JobName="standin", JobRunIds=[theirs])


def test_a_stopped_run_leaves_a_statement_another_live_run_waits_on(
    prefect_settings: PrefectApi,
) -> None:
    """The same for a statement: not cancelled by the stopped run's thread."""
    target, client, ops = recorded_target()
    key = RunKey("joined", NIGHT, "load")
    started = {"Id": "sid-1", "Status": "STARTED", "StatementName": key.statement_name}
    with Stubber(client) as stub:
        stub.add_response("list_statements", {"Statements": [started]})
        stub.add_response("describe_statement", {"Id": "sid-1", "Status": "STARTED"})
        stub.add_response("cancel_statement", {"Status": True})  # answered, were it asked

        @flow
        def stopped_night() -> object:
            future = execute_statement.with_options(retries=0).submit(
                "call s.p()",
                target=target,
                run_key=key,
                policy=WaitPolicy(initial_interval=PAUSE, max_interval=PAUSE),
                tag_flow_run=False,
            )
            deadline = time.monotonic() + 30
            while "DescribeStatement" not in [name for name, _ in ops]:
                assert time.monotonic() < deadline, ops
                time.sleep(0.1)
            request_stop(current_flow_run_id(), leave_running=["sid-1"])
            (outcome,) = outcomes_of(future)
            return outcome

        outcome = stopped_night()
    assert isinstance(outcome, WorkStoppedError), outcome
    assert [name for name, _ in ops] == ["ListStatements", "DescribeStatement"]  # no cancel
