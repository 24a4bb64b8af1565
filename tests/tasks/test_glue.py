"""Glue job-run tasks: pure rules with literal dicts, then ``run_glue_job`` with real boto3
clients against the real local endpoint running stand-in job scripts in child processes,
then the Prefect task under a real (temporary) Prefect server."""

from __future__ import annotations

import datetime as dt
import logging
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from mypy_boto3_glue import GlueClient

from local.endpoint import AwsEndpoint
from tasks.glue import (
    RUN_KEY_ARGUMENT,
    GlueConcurrencyError,
    GlueJobFailedError,
    GluePollError,
    run_glue_job,
    stop_runs_named,
)
from tasks.glue.policy import (
    build_start_request,
    pick_run_of_lost_start,
    pick_run_to_attach,
    pick_winner_of_race,
    run_links,
    runs_to_stop,
)
from tasks.jobs import InvalidRequestError, RunKey, WaitPolicy
from tests.conftest import PrefectApi
from tests.tasks.conftest import outcomes_of

REPO_ROOT = Path(__file__).resolve().parents[2]
FAST = {
    "poll": WaitPolicy(initial_interval=0.05, max_interval=0.2, timeout_seconds=None),
    "concurrency": WaitPolicy(initial_interval=0.1, max_interval=0.3, timeout_seconds=30),
}
NIGHT = dt.date(2026, 11, 25)


def within(seconds: float) -> dict[str, WaitPolicy]:
    """FAST, giving up on a busy job after ``seconds``."""
    return {**FAST, "concurrency": replace(FAST["concurrency"], timeout_seconds=seconds)}


CREDENTIALS = {"aws_access_key_id": "AKIDLOCALTEST", "aws_secret_access_key": "local-test-secret"}


# -- pure rules -------------------------------------------------------------------------


def test_run_key_and_start_request() -> None:
    key = RunKey("nightly", dt.date(2026, 11, 25), "clean_store_sale").glue_argument
    assert key == "nightly/2026-11-25/clean_store_sale"
    assert build_start_request(
        "raw2clean",
        {"--table": "store_sale"},
        key,
        worker_type="G.1X",
        number_of_workers=2,
        timeout_minutes=60,
    ) == {
        "JobName": "raw2clean",
        "Arguments": {"--table": "store_sale", RUN_KEY_ARGUMENT: key},
        "WorkerType": "G.1X",
        "NumberOfWorkers": 2,
        "Timeout": 60,
    }
    for kwargs, pattern in [
        ({"arguments": {"table": "x"}}, r"argument name 'table' must start with '--'"),
        ({"arguments": {RUN_KEY_ARGUMENT: "other"}}, r"--orchestrator_run_key is set by run_key"),
        ({"worker_type": "G.1X"}, r"worker_type and number_of_workers go together"),
        ({"worker_type": "G.3X", "number_of_workers": 2}, r"worker_type 'G.3X' is not one of"),
        ({"timeout_minutes": 10080}, r"timeout_minutes must be between 1 and 10079, got 10080"),
    ]:
        with pytest.raises(InvalidRequestError, match=pattern):
            build_start_request("raw2clean", kwargs.pop("arguments", None), key, **kwargs)


def _run(run_id: str, state: str, started: int, key: str = "k") -> dict[str, Any]:
    return {
        "Id": run_id,
        "JobRunState": state,
        "StartedOn": started,
        "Arguments": {RUN_KEY_ARGUMENT: key},
    }


def test_pick_run_to_attach() -> None:
    other = _run("jr_other", "RUNNING", 9, key="other")
    assert pick_run_to_attach([other], "k") is None
    # Two racing starters both see the earliest active run as the one to keep.
    assert (
        pick_run_to_attach([_run("b", "RUNNING", 2), _run("a", "STARTING", 1), other], "k")["Id"]
        == "a"
    )  # type: ignore[index]
    # A finished success is reused; a newest failure means start afresh; STOPPING is going away.
    assert pick_run_to_attach([_run("s", "SUCCEEDED", 1)], "k")["Id"] == "s"  # type: ignore[index]
    assert pick_run_to_attach([_run("s", "SUCCEEDED", 1), _run("f", "FAILED", 2)], "k") is None
    assert pick_run_to_attach([_run("x", "STOPPING", 3)], "k") is None
    assert pick_run_to_attach([_run("s", "SUCCEEDED", 1)], "k", reuse_succeeded=False) is None


def test_pick_winner_of_race_among_runs_new_since_the_lookup() -> None:
    old = _run("old", "SUCCEEDED", 1)
    first, second = _run("first", "SUCCEEDED", 5), _run("second", "RUNNING", 6)
    # botocore resent a StartJobRun whose answer was lost: the first run (done already) wins.
    assert pick_winner_of_race([second, first, old], "k", {"old"}) == first
    assert pick_winner_of_race([_run("mine", "FAILED", 5), second], "k", set()) == second
    assert pick_winner_of_race([old], "k", {"old"}) is None


def test_pick_run_of_lost_start_is_the_new_run_whatever_its_state() -> None:
    old = _run("old", "SUCCEEDED", 1)
    assert pick_run_of_lost_start([old], "k", {"old"}) is None  # nothing new: start again
    failed, twin = _run("lost", "FAILED", 5), _run("twin", "RUNNING", 6)
    assert pick_run_of_lost_start([failed, old], "k", {"old"}) == failed  # reported, not rerun
    assert pick_run_of_lost_start([twin, failed, old], "k", {"old"}) == twin
    assert pick_run_of_lost_start([_run("x", "RUNNING", 7, key="other")], "k", set()) is None


def test_runs_to_stop_are_this_nights_active_runs_only() -> None:
    night = "p/2026-11-25/"
    runs = [
        _run("ours", "RUNNING", 1, key="p/2026-11-25/clean_a"),
        _run("ours-starting", "STARTING", 2, key="p/2026-11-25/clean_b"),
        _run("ours-done", "SUCCEEDED", 1, key="p/2026-11-25/clean_c"),
        _run("other-night", "RUNNING", 1, key="p/2026-11-24/clean_a"),
        _run("other-pipeline", "RUNNING", 1, key="q/2026-11-25/clean_a"),
        {"Id": "no-key", "JobRunState": "RUNNING", "StartedOn": 1},
    ]
    assert [r["Id"] for r in runs_to_stop(runs, night)] == ["ours", "ours-starting"]


def test_links_point_at_the_console_on_aws_and_the_log_file_locally() -> None:
    aws = run_links(
        "raw2clean", "jr_1", region="eu-west-1", endpoint_url=None, log_group="/aws-glue/jobs"
    )
    assert (
        aws.console
        == "https://eu-west-1.console.aws.amazon.com/gluestudio/home?region=eu-west-1#/job/raw2clean/run/jr_1"
    )
    assert (
        aws.logs is not None
        and "log-group/$252Faws-glue$252Fjobs$252Foutput/log-events/jr_1" in aws.logs
    )
    local = run_links(
        "raw2clean",
        "jr_1",
        region="us-east-1",
        endpoint_url="http://127.0.0.1:5",
        log_group="/d/logs",
    )
    assert (local.console, local.logs) == (None, "/d/logs/jr_1.log")


# -- against the local endpoint ----------------------------------------------------------


def glue_client(endpoint_url: str, max_attempts: int = 1) -> GlueClient:
    return boto3.client(
        "glue",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": max_attempts, "mode": "standard"}),
        **CREDENTIALS,
    )


def runs_with_key(client: GlueClient, job: str, key: str) -> list[Any]:
    runs = client.get_job_runs(JobName=job)["JobRuns"]
    return [r for r in runs if r["Arguments"].get(RUN_KEY_ARGUMENT) == key]


def wait_state(
    client: GlueClient, job: str, run_id: str, states: set[str], timeout: float = 20
) -> str:
    deadline = time.monotonic() + timeout
    while True:
        state = client.get_job_run(JobName=job, RunId=run_id)["JobRun"]["JobRunState"]
        if state in states or time.monotonic() > deadline:
            return state
        time.sleep(0.05)


def test_success_logs_run_id_and_log_file(
    endpoint: AwsEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    client = glue_client(endpoint.url)
    caplog.set_level(logging.INFO, logger="tasks.glue")
    result = run_glue_job(
        client, "standin", {"--sleep": "0.3"}, run_key=RunKey("p", NIGHT, "ok"), **FAST
    )
    assert (result.state, result.reattached, result.console_url) == ("SUCCEEDED", False, None)
    assert result.log_url is not None and "stand-in job done" in Path(result.log_url).read_text()
    assert [r["Id"] for r in runs_with_key(client, "standin", "p/2026-11-25/ok")] == [result.run_id]
    started = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("Started Glue job")
    ]
    assert started and result.run_id in started[0] and result.log_url in started[0]
    assert "local-test-secret" not in caplog.text


def test_failure_raises_with_glues_error_message(endpoint: AwsEndpoint) -> None:
    client = glue_client(endpoint.url)
    with pytest.raises(GlueJobFailedError) as err:
        run_glue_job(
            client,
            "standin",
            {"--fail_with": "quarantine share 0.4 > 0.05"},
            run_key=RunKey("p", NIGHT, "fail"),
            **FAST,
        )
    failed = err.value
    assert (failed.job_name, failed.state) == ("standin", "FAILED")
    assert failed.error_message == "RuntimeError: quarantine share 0.4 > 0.05 (exit code 1)"
    assert failed.run_id in str(failed) and "quarantine share 0.4 > 0.05" in str(failed)
    copy = pickle.loads(pickle.dumps(failed))  # Prefect may persist a failed task's exception
    assert (copy.run_id, copy.state, copy.error_message, str(copy)) == (
        failed.run_id, failed.state, failed.error_message, str(failed),
    )  # fmt: skip


def test_retry_after_a_lost_watcher_reattaches_to_the_one_run(endpoint: AwsEndpoint) -> None:
    client = glue_client(endpoint.url)
    key = RunKey("p", NIGHT, "reattach")
    endpoint.faults.throttle("GetJobRun", 1000)  # the first attempt loses sight of its run
    began = time.monotonic()
    with pytest.raises(GluePollError, match="a retry will reattach") as err:
        run_glue_job(
            client,
            "standin",
            {"--sleep": "3"},
            run_key=key,
            **{**FAST, "poll": replace(FAST["poll"], transient_error_budget=2)},
        )
    lost_after = time.monotonic() - began
    assert isinstance(err.value.__cause__, ClientError)
    endpoint.faults.clear()
    (first,) = runs_with_key(client, "standin", key.glue_argument)
    assert first["JobRunState"] in ("STARTING", "RUNNING"), lost_after  # not stopped: needed
    retried = run_glue_job(client, "standin", {"--sleep": "1"}, run_key=key, **FAST)
    assert (retried.run_id, retried.reattached, retried.state) == (first["Id"], True, "SUCCEEDED")
    again = run_glue_job(
        client, "standin", {"--sleep": "1"}, run_key=key, **FAST
    )  # same night again
    assert (again.run_id, again.reattached) == (first["Id"], True)
    assert len(runs_with_key(client, "standin", key.glue_argument)) == 1
    fresh = run_glue_job(client, "standin", {}, run_key=key, force=True, **FAST)
    assert fresh.run_id != first["Id"] and not fresh.reattached


def test_after_a_failed_run_a_retry_starts_afresh(endpoint: AwsEndpoint) -> None:
    client = glue_client(endpoint.url)
    with pytest.raises(GlueJobFailedError):
        run_glue_job(
            client, "standin", {"--fail_with": "x"}, run_key=RunKey("p", NIGHT, "afresh"), **FAST
        )
    result = run_glue_job(client, "standin", {}, run_key=RunKey("p", NIGHT, "afresh"), **FAST)
    assert not result.reattached
    states = sorted(
        r["JobRunState"] for r in runs_with_key(client, "standin", "p/2026-11-25/afresh")
    )
    assert states == ["FAILED", "SUCCEEDED"]


def test_concurrency_limit_backs_off_then_gives_up_with_the_cause(endpoint: AwsEndpoint) -> None:
    client = glue_client(endpoint.url)
    blocker = client.start_job_run(JobName="single", Arguments={"--sleep": "30"})["JobRunId"]
    with pytest.raises(GlueConcurrencyError, match="could not start within 1s") as err:
        run_glue_job(client, "single", {}, run_key=RunKey("p", NIGHT, "busy"), **within(1))
    assert isinstance(err.value.__cause__, ClientError)
    assert err.value.__cause__.response["Error"]["Code"] == "ConcurrentRunsExceededException"
    client.batch_stop_job_run(JobName="single", JobRunIds=[blocker])


def test_concurrency_limit_waits_for_a_free_slot(endpoint: AwsEndpoint) -> None:
    client = glue_client(endpoint.url)
    client.start_job_run(JobName="single", Arguments={"--sleep": "1"})
    result = run_glue_job(client, "single", {}, run_key=RunKey("p", NIGHT, "wait"), **within(30))
    assert result.state == "SUCCEEDED" and not result.reattached


def test_concurrency_error_attaches_to_the_matching_run(endpoint: AwsEndpoint) -> None:
    client = glue_client(endpoint.url)
    key = RunKey("p", NIGHT, "mine")
    mine = client.start_job_run(
        JobName="single", Arguments={"--sleep": "0.5", RUN_KEY_ARGUMENT: key.glue_argument}
    )
    # force skips the first lookup, so StartJobRun hits the limit; the run found then is ours.
    result = run_glue_job(client, "single", {}, run_key=key, force=True, **within(0.01))
    assert (result.run_id, result.reattached) == (mine["JobRunId"], True)


def test_interrupted_wait_stops_the_run(endpoint: AwsEndpoint) -> None:
    client = glue_client(endpoint.url)
    polls = 0

    def interrupted_sleep(seconds: float) -> None:
        nonlocal polls
        polls += 1
        if polls == 3:
            raise KeyboardInterrupt  # what Ctrl-C, or a cancellation raised into the task, does
        time.sleep(seconds)

    with pytest.raises(KeyboardInterrupt):
        run_glue_job(
            client,
            "standin",
            {"--sleep": "60"},
            run_key=RunKey("p", NIGHT, "cancel"),
            sleep=interrupted_sleep,
            **FAST,
        )
    (run,) = runs_with_key(client, "standin", "p/2026-11-25/cancel")
    assert wait_state(client, "standin", run["Id"], {"STOPPED"}) == "STOPPED"


def test_the_poll_error_budget_counts_errors_in_a_row_only() -> None:
    """Errors and successes alternating, more errors in all than the budget: still waits."""
    client = boto3.client("glue", region_name="eu-west-1", **CREDENTIALS)
    key = RunKey("p", NIGHT, "flaky")
    running = {
        "Id": "jr_1",
        "JobRunState": "RUNNING",
        "Arguments": {RUN_KEY_ARGUMENT: key.glue_argument},
    }
    with Stubber(client) as stub:
        stub.add_response("get_job_runs", {"JobRuns": []})
        stub.add_response("start_job_run", {"JobRunId": "jr_1"})
        stub.add_response("get_job_runs", {"JobRuns": [running]})
        for _ in range(3):
            stub.add_response("get_job_run", {"JobRun": running})
            for _ in range(2):
                stub.add_client_error("get_job_run", "ThrottlingException", "Rate exceeded")
        stub.add_response("get_job_run", {"JobRun": {**running, "JobRunState": "SUCCEEDED"}})
        result = run_glue_job(
            client,
            "raw2clean",
            run_key=key,
            poll=replace(FAST["poll"], transient_error_budget=2),
            sleep=lambda _: None,
        )
        stub.assert_no_pending_responses()
    assert (result.run_id, result.state) == ("jr_1", "SUCCEEDED")


def test_stop_runs_named_stops_this_nights_runs_and_no_other() -> None:
    client = boto3.client("glue", region_name="eu-west-1", **CREDENTIALS)
    runs = [
        _run("ours", "RUNNING", 2, key="p/2026-11-25/clean_a"),
        _run("other-night", "RUNNING", 1, key="p/2026-11-24/clean_a"),
    ]
    stopped: list[list[str]] = []
    client.meta.events.register(
        "before-parameter-build.glue.BatchStopJobRun",
        lambda params, **_: stopped.append(params["JobRunIds"]),
    )
    with Stubber(client) as stub:
        stub.add_response("get_job_runs", {"JobRuns": runs})
        stub.add_response("batch_stop_job_run", {"SuccessfulSubmissions": [], "Errors": []})
        assert stop_runs_named(client, "raw2clean", "p/2026-11-25/") == ["ours"]
    assert stopped == [["ours"]]


# -- the Prefect task ------------------------------------------------------------------------


@pytest.mark.slow
def test_prefect_task_runs_and_its_timeout_stops_the_run(
    prefect_settings: PrefectApi, endpoint: AwsEndpoint
) -> None:
    from prefect import flow

    from tasks.glue import glue_job_run

    client = glue_client(endpoint.url)

    @flow
    def night() -> str:
        return glue_job_run(
            "standin", {"--sleep": "0.2"}, run_key=RunKey("flow", NIGHT, "ok"), client=client
        ).state

    assert night() == "SUCCEEDED"

    @flow
    def too_slow() -> None:
        # Long enough for the start (lease, lookup, StartJobRun) on a loaded machine: a
        # timeout that fires before the run exists leaves nothing to stop and no test.
        glue_job_run.with_options(timeout_seconds=10)(
            "standin", {"--sleep": "60"}, run_key=RunKey("flow", NIGHT, "slow"), client=client
        )

    state = too_slow(return_state=True)
    assert state.is_failed()
    (run,) = runs_with_key(client, "standin", "flow/2026-11-25/slow")
    assert wait_state(client, "standin", run["Id"], {"STOPPED"}) == "STOPPED"


def test_a_stopped_flow_run_stops_its_run_and_starts_no_other(
    prefect_settings: PrefectApi, endpoint: AwsEndpoint
) -> None:
    """The flow's stop (what its main thread does on SIGTERM) reaches the steps' threads:
    the one waiting on its run stops it and stays until Glue says STOPPED; the one waiting
    for a free slot of the one-run job never starts its run (tasks.stopping)."""
    from prefect import flow, task

    from tasks.flow_run_tags import current_flow_run_id
    from tasks.stopping import WorkStoppedError, request_stop

    client = glue_client(endpoint.url)

    @task(retries=0)
    def step(name: str) -> str:
        return run_glue_job(
            client, "single", {"--sleep": "60"}, run_key=RunKey("stop", NIGHT, name), **FAST
        ).state

    @flow
    def stopped_night() -> list[BaseException | str]:
        running = step.submit("running")
        deadline = time.monotonic() + 60
        while not runs_with_key(client, "single", "stop/2026-11-25/running"):
            assert time.monotonic() < deadline, "the first run never started"
            time.sleep(0.1)
        waiting = step.submit("waiting")  # the job's one slot is taken: it backs off
        time.sleep(1.0)
        request_stop(current_flow_run_id())
        return outcomes_of(running, waiting)

    outcomes = stopped_night()
    assert all(isinstance(o, WorkStoppedError) for o in outcomes), outcomes
    (run,) = runs_with_key(client, "single", "stop/2026-11-25/running")
    assert client.get_job_run(JobName="single", RunId=run["Id"])["JobRun"]["JobRunState"] == (
        "STOPPED"
    )  # already: the step waited for it
    assert runs_with_key(client, "single", "stop/2026-11-25/waiting") == []


@pytest.mark.slow
def test_the_prefect_tasks_poll_policy_paces_its_get_job_run_calls(
    prefect_settings: PrefectApi, endpoint: AwsEndpoint
) -> None:
    from prefect import flow

    from tasks.glue import glue_job_run

    client = glue_client(endpoint.url)
    polls: list[str] = []
    client.meta.events.register("before-call.glue.GetJobRun", lambda **_: polls.append("poll"))
    often = WaitPolicy(initial_interval=0.05, max_interval=0.05, timeout_seconds=None)

    @flow
    def night() -> str:
        key = RunKey("flow", NIGHT, "often")
        return glue_job_run(
            "standin", {"--sleep": "1"}, run_key=key, client=client, poll=often
        ).state

    assert night() == "SUCCEEDED"
    # a run of at least 1 s, polled every 0.05 s (+/- 20 %): many more than the default
    # policy's 1 s, 1.5 s ... would make (one or two)
    assert len(polls) >= 5, polls


FLOW_SCRIPT = textwrap.dedent(
    """
    import datetime
    import sys
    from prefect import flow
    from tasks.aws import aws_client
    from tasks.glue import glue_job_run
    from tasks.jobs import RunKey

    @flow
    def night():
        glue_job_run("standin", {"--sleep": "120"}, run_key=RunKey("flow", datetime.date(2026, 11, 25), "sigterm"),
                     client=aws_client("glue", endpoint_url=sys.argv[1]))

    night()
    """
)


@pytest.mark.slow
def test_sigterm_to_the_flow_process_stops_the_run(
    prefect_api: PrefectApi, endpoint: AwsEndpoint
) -> None:
    env = {
        **prefect_api.env(),
        "PYTHONPATH": str(REPO_ROOT),
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", FLOW_SCRIPT, endpoint.url],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    client = glue_client(endpoint.url)
    try:
        deadline = time.monotonic() + 60
        while not [
            r
            for r in runs_with_key(client, "standin", "flow/2026-11-25/sigterm")
            if r["JobRunState"] == "RUNNING"
        ]:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert time.monotonic() < deadline, "the flow never started its Glue run"
            time.sleep(0.1)
        time.sleep(0.5)  # let the task reach its wait loop
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    (run,) = runs_with_key(client, "standin", "flow/2026-11-25/sigterm")
    output = process.stdout.read().decode() if process.stdout else ""
    assert wait_state(client, "standin", run["Id"], {"STOPPED"}) == "STOPPED", output
    assert "Stopped Glue job standin run" in output
