"""Crashes and stops of the orchestrating process, which runs in its own process here.

(b) SIGKILL while waiting, then the same night in a new process: reattach, one execution.
(d) SIGTERM (how a pod is stopped) and a flow run cancelled through the Prefect API (a
    runner serving the flow stops its process): the running statement is cancelled.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from local.stack import LOCAL_REGION
from tasks.jobs import RunKey, WaitPolicy
from tasks.redshift_data import RedshiftTarget
from tasks.redshift_data.results import get_rows
from tasks.redshift_data.submit import execute_and_wait
from tests.conftest import (
    TEST_ACCESS_KEY,
    TEST_SECRET_KEY,
    PrefectApi,
    data_api_client,
    serve_endpoint,
    stop_process_group,
    throwaway_data_dir,
)
from tests.tasks.conftest import outcomes_of

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
DRIVER = Path(__file__).with_name("night_driver.py")
TARGET = RedshiftTarget(database="dev", cluster_identifier="local-test", db_user="awsuser")
SETUP = [
    "create schema if not exists rsd_test",
    "create table if not exists rsd_test.calls (tag text, a text, b text, c int, d date)",
    """create or replace procedure rsd_test.sp_slow(tag text, seconds float)
    language plpgsql as $$ begin
      insert into rsd_test.calls (tag) values (tag);
      perform pg_sleep(seconds);
    end $$""",
]


@pytest.fixture(scope="module")
def endpoint_process() -> Iterator[str]:
    """The endpoint in its own process, as AWS would be: it survives our crashes."""
    with throwaway_data_dir("endpoint-process") as data_dir, serve_endpoint(data_dir) as (_, url):
        execute_and_wait(data_api_client(url), TARGET, SETUP)
        yield url


def start_driver(
    api: PrefectApi,
    endpoint_url: str,
    pipeline: str,
    tag: str,
    seconds: float,
    log: Path,
    *extra: str,
) -> subprocess.Popen[bytes]:
    env = api.env(
        AWS_ENDPOINT_URL_REDSHIFT_DATA=endpoint_url,
        AWS_ACCESS_KEY_ID=TEST_ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=TEST_SECRET_KEY,
        AWS_DEFAULT_REGION=LOCAL_REGION,
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                str(DRIVER),
                "--pipeline",
                pipeline,
                "--date",
                "2026-11-25",
                "--tag",
                tag,
                "--seconds",
                str(seconds),
                *extra,
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def statements(client: RedshiftDataAPIServiceClient, pipeline: str) -> list[dict[str, Any]]:
    prefix = RunKey(pipeline, dt.date(2026, 11, 25), "slow").step_prefix
    return list(client.list_statements(StatementName=prefix, Status="ALL")["Statements"])


def wait_for_status(
    client: RedshiftDataAPIServiceClient,
    pipeline: str,
    status: str,
    proc: subprocess.Popen[bytes],
    log: Path,
    timeout: float = 90,
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = statements(client, pipeline)
        if found and found[0]["Status"] == status:
            return str(found[0]["Id"])
        if proc.poll() is not None:
            pytest.fail(f"driver exited ({proc.returncode}) early:\n{log.read_text()}")
        time.sleep(0.1)
    pytest.fail(f"no statement reached {status}:\n{log.read_text()}")


def executions(client: RedshiftDataAPIServiceClient, tag: str) -> int:
    result = execute_and_wait(
        client,
        TARGET,
        "select count(*) as n from rsd_test.calls where tag = :tag",
        parameters={"tag": tag},
    )
    return int(get_rows(client, result.statement_id)[0]["n"])


def test_sigkill_while_waiting_then_rerun_reattaches(
    endpoint_process: str, prefect_api: PrefectApi, tmp_path: Path
) -> None:
    client = data_api_client(endpoint_process)
    pipeline, tag, log = f"p{uuid.uuid4().hex[:8]}", uuid.uuid4().hex, tmp_path / "driver.log"
    first = start_driver(prefect_api, endpoint_process, pipeline, tag, 8, log)
    try:
        statement_id = wait_for_status(client, pipeline, "STARTED", first, log)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    assert client.describe_statement(Id=statement_id)["Status"] == "STARTED"  # still running

    second = start_driver(prefect_api, endpoint_process, pipeline, tag, 8, log)
    assert second.wait(timeout=120) == 0, log.read_text()
    assert f"RESULT {statement_id} FINISHED" in log.read_text()
    assert "reattaching to" in log.read_text()
    assert [s["Id"] for s in statements(client, pipeline)] == [statement_id]
    assert executions(client, tag) == 1


@pytest.mark.parametrize("mode", [(), ("--submit",)], ids=["direct", "thread-pool"])
def test_sigterm_cancels_the_running_statement(
    endpoint_process: str, prefect_api: PrefectApi, tmp_path: Path, mode: tuple[str, ...]
) -> None:
    client = data_api_client(endpoint_process)
    pipeline, tag, log = f"p{uuid.uuid4().hex[:8]}", uuid.uuid4().hex, tmp_path / "driver.log"
    proc = start_driver(prefect_api, endpoint_process, pipeline, tag, 120, log, *mode)
    try:
        statement_id = wait_for_status(client, pipeline, "STARTED", proc, log)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert client.describe_statement(Id=statement_id)["Status"] == "ABORTED", log.read_text()
    assert f"cancelled statement {statement_id}" in log.read_text()
    assert executions(client, tag) == 0  # the procedure's insert was rolled back


def test_flow_run_cancellation_cancels_the_statement(
    endpoint_process: str, prefect_settings: PrefectApi, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    client = data_api_client(endpoint_process)
    pipeline, tag, log = f"p{uuid.uuid4().hex[:8]}", uuid.uuid4().hex, tmp_path / "runner.log"
    env = prefect_settings.env(
        AWS_ENDPOINT_URL_REDSHIFT_DATA=endpoint_process,
        AWS_ACCESS_KEY_ID=TEST_ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=TEST_SECRET_KEY,
        AWS_DEFAULT_REGION=LOCAL_REGION,
        PREFECT_RUNNER_POLL_FREQUENCY="1",
    )
    with log.open("ab") as out:
        runner = subprocess.Popen(
            [sys.executable, str(DRIVER), "--serve"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with get_client(sync_client=True) as api:
            deadline = time.monotonic() + 90
            while True:
                try:
                    deployment = api.read_deployment_by_name("rsd-test-night/rsd-test")
                    break
                except Exception:
                    if runner.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"runner did not serve the flow:\n{log.read_text()}")
                    time.sleep(0.5)
            flow_run = api.create_flow_run_from_deployment(
                deployment.id,
                parameters={
                    "pipeline": pipeline,
                    "logical_date": "2026-11-25",
                    "tag": tag,
                    "seconds": 120,
                },
            )
            statement_id = wait_for_status(client, pipeline, "STARTED", runner, log)
            api.set_flow_run_state(flow_run.id, Cancelling(), force=True)
            deadline = time.monotonic() + 60
            while True:
                state = api.read_flow_run(flow_run.id).state
                if state is not None and state.is_cancelled():
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"flow run not cancelled ({state}):\n{log.read_text()}")
                time.sleep(0.5)
    finally:
        stop_process_group(runner)
    assert client.describe_statement(Id=statement_id)["Status"] == "ABORTED"
    assert executions(client, tag) == 0
    assert f"cancelled statement {statement_id}" in log.read_text()


def test_a_stopped_flow_run_cancels_its_statement_and_submits_no_other(
    endpoint_process: str, prefect_settings: PrefectApi
) -> None:
    """What the flow's main thread does on SIGTERM (``request_stop``) reaches a step waiting
    in a worker thread: it cancels its statement; a step that had not submitted yet submits
    nothing (tasks.stopping)."""
    from prefect import flow, task

    from tasks.flow_run_tags import current_flow_run_id
    from tasks.redshift_data.submit import submit_or_reattach
    from tasks.redshift_data.waiting import wait_or_cancel
    from tasks.stopping import WorkStoppedError, request_stop

    client = data_api_client(endpoint_process)
    pipeline, tag = f"p{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    night = dt.date(2026, 11, 25)

    @task(retries=0)
    def step(name: str) -> str:
        submitted = submit_or_reattach(
            client, TARGET, "call rsd_test.sp_slow(:tag, 60)", RunKey(pipeline, night, name),
            parameters={"tag": tag},
        )  # fmt: skip
        # A wait notices the stop between two long polls: the flow's stop path also cancels
        # the statements tagged on its run, which ends the poll at once; this one is not
        # tagged, so its polls are kept short.
        short_polls = WaitPolicy(long_poll_seconds=2)
        return str(wait_or_cancel(client, submitted.statement_id, policy=short_polls)["Status"])

    @flow
    def stopped_night() -> list[BaseException | str]:
        running = step.submit("slow")
        deadline = time.monotonic() + 90
        while not [s for s in statements(client, pipeline) if s["Status"] == "STARTED"]:
            assert time.monotonic() < deadline, "the statement never started"
            time.sleep(0.1)
        request_stop(current_flow_run_id())
        return outcomes_of(running, step.submit("later"))

    outcomes = stopped_night()
    assert all(isinstance(o, WorkStoppedError) for o in outcomes), outcomes
    (slow,) = statements(client, pipeline)
    assert slow["Status"] == "ABORTED"
    prefix = RunKey(pipeline, night, "later").step_prefix
    assert client.list_statements(StatementName=prefix, Status="ALL")["Statements"] == []
    assert executions(client, tag) == 0  # the procedure's insert was rolled back
