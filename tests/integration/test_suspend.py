"""Suspend mode end to end: a real Prefect server, a real runner (``serve``), the local
Data API endpoint in its own process, a procedure that sleeps (``pg_sleep``).

The run suspends and its flow process exits; the resumer (``flows.resume_waiting``)
resumes it once the statement ended; the statement ran exactly once even after an early
resume and with the local result folder wiped; FAILED and ABORTED surface as poll mode's
errors; cancelling the suspended run lets the sweep cancel its statement.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from flows.resume_waiting import PassReport, one_pass
from flows.runtime import Runtime, target_from_settings
from flows.settings import Settings
from flows.waiting import WAITING_TAG
from local.stack import LOCAL_REGION
from tasks.aws import aws_client
from tasks.jobs import RunKey
from tests.conftest import (
    TEST_ACCESS_KEY,
    TEST_SECRET_KEY,
    PrefectApi,
    child_commands,
    data_api_client,
    stop_process_group,
    wait_for_flow_run,
)
from tests.tasks.redshift_data.test_data_api_reliability import (
    TARGET,
    endpoint_process,  # noqa: F401  (fixture)
    executions,
)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
APP = Path(__file__).with_name("suspend_app.py")
NIGHT = dt.date(2026, 11, 25)
DEPLOYMENT = "suspend-test-night/suspend-test"
GATE_SECONDS = 120  # the most a gated statement runs unreleased (a stuck test still ends)
FAILING = """create or replace procedure rsd_test.sp_slow_fail(tag text, seconds float)
language plpgsql as $$ begin
  insert into rsd_test.calls (tag) values (tag);
  perform pg_sleep(seconds);
  raise exception 'boom %', tag;
end $$"""
# A statement that runs until the test releases it (a row in rsd_test.releases), at most
# ``seconds``: a test needs its statement running through suspend and an early resume,
# however slow the machine, and then over as soon as it says so. Each query of a plpgsql
# loop takes a fresh snapshot (READ COMMITTED), so the loop sees the release commit.
GATED = [
    "create table if not exists rsd_test.releases (tag text)",
    """create or replace procedure rsd_test.sp_gated(tag text, seconds float)
language plpgsql as $$
declare give_up timestamptz := clock_timestamp() + make_interval(secs => seconds);
begin
  insert into rsd_test.calls (tag) values (tag);
  while clock_timestamp() < give_up
        and not exists (select 1 from rsd_test.releases r where r.tag = sp_gated.tag) loop
    perform pg_sleep(0.1);
  end loop;
end $$""",
]


@dataclass
class Served:
    runner: subprocess.Popen[bytes]
    log: Path
    deployment_id: UUID
    endpoint: str
    api: PrefectApi


@pytest.fixture(scope="module")
def glue_endpoint(endpoint_process: str) -> str:  # noqa: F811
    """Where the runner's Glue client points (test_resume_events.py overrides it with an
    endpoint serving a tiny job); here the Data API endpoint, whose Glue nobody calls."""
    return endpoint_process


@pytest.fixture(scope="module")
def served(
    endpoint_process: str,  # noqa: F811
    glue_endpoint: str,
    prefect_api: PrefectApi,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    from prefect.client.orchestration import SyncPrefectClient

    from tasks.redshift_data.submit import execute_and_wait

    execute_and_wait(data_api_client(endpoint_process), TARGET, FAILING)
    execute_and_wait(data_api_client(endpoint_process), TARGET, GATED)
    log = tmp_path_factory.mktemp("suspend") / "runner.log"
    env = prefect_api.runner_env(endpoint_process, glue_endpoint)
    with log.open("ab") as out:
        runner = subprocess.Popen(
            [sys.executable, str(APP)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with SyncPrefectClient(api=prefect_api.api_url) as api:
            deadline = time.monotonic() + 120
            while True:
                try:
                    deployment = api.read_deployment_by_name(DEPLOYMENT)
                    break
                except Exception:
                    if runner.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"runner did not serve the flow:\n{log.read_text()}")
                    time.sleep(0.5)
        yield Served(runner, log, deployment.id, endpoint_process, prefect_api)
    finally:
        stop_process_group(runner)


@pytest.fixture
def resumer(served: Served, monkeypatch: pytest.MonkeyPatch) -> Callable[[], PassReport]:
    """One pass of the resumer in this process, as the runner's identity."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    for key, value in {
        "AWS_ENDPOINT_URL_REDSHIFT_DATA": served.endpoint,
        "AWS_ENDPOINT_URL_GLUE": served.endpoint,
        "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY,
        "AWS_DEFAULT_REGION": LOCAL_REGION,
    }.items():
        monkeypatch.setenv(key, value)
    settings = Settings(target="local", cluster_identifier="local-test")
    runtime = Runtime.with_clients(
        settings, target_from_settings(settings), aws_client("glue", region=LOCAL_REGION)
    )

    def run() -> PassReport:
        with temporary_settings(updates={PREFECT_API_URL: served.api.api_url}):
            return one_pass(runtime, logging.getLogger("test-resumer"))

    return run


def start(served: Served, **parameters: Any) -> tuple[UUID, str, str]:
    from prefect.client.orchestration import SyncPrefectClient

    pipeline, tag = f"s{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    with SyncPrefectClient(api=served.api.api_url) as api:
        run = api.create_flow_run_from_deployment(
            served.deployment_id,
            parameters={"pipeline": pipeline, "logical_date": NIGHT.isoformat(), "tag": tag}
            | parameters,
        )
    return run.id, pipeline, tag


def wait_for(
    served: Served, run_id: UUID, done: Callable[[Any], bool], timeout: float = 120
) -> Any:
    return wait_for_flow_run(served.api.api_url, run_id, done, timeout, served.log)


def release(client: RedshiftDataAPIServiceClient, tag: str) -> None:
    """Let the ``sp_gated`` statement of ``tag`` finish (within its 0.1 s loop)."""
    from tasks.redshift_data.submit import execute_and_wait

    execute_and_wait(
        client, TARGET, "insert into rsd_test.releases (tag) values (:tag)", parameters={"tag": tag}
    )


def suspended(run: Any) -> bool:
    return bool(run.state.is_paused() and run.state.name == "Suspended")


def statements(client: RedshiftDataAPIServiceClient, pipeline: str) -> list[dict[str, Any]]:
    prefix = RunKey(pipeline, NIGHT, "slow").step_prefix
    return list(client.list_statements(StatementName=prefix, Status="ALL")["Statements"])


def held_by(served: Served, idle: set[int]) -> list[str]:
    """The runner's processes beyond those in ``idle`` (a flow run's while one executes)."""
    return [c for pid, c in child_commands(served.runner.pid).items() if pid not in idle]


def test_suspends_holds_no_process_and_resumes_once(
    served: Served, resumer: Callable[[], PassReport]
) -> None:
    from prefect.flow_runs import resume_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    client = data_api_client(served.endpoint)
    idle = set(child_commands(served.runner.pid))
    run_id, pipeline, tag = start(served, seconds=GATE_SECONDS, procedure="sp_gated")
    run = wait_for(served, run_id, suspended)
    assert WAITING_TAG in run.tags
    (statement,) = statements(client, pipeline)
    assert f"redshift-stmt:{statement['Id']}" in run.tags
    assert run.state.message.startswith("waiting on 1: statement " + statement["Id"])
    deadline = time.monotonic() + 30
    while (held := held_by(served, idle)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert held == [], f"still held by {held}:\n{served.log.read_text()[-3000:]}"

    assert str(run_id) not in resumer().resumed  # the statement still runs
    with temporary_settings(updates={PREFECT_API_URL: served.api.api_url}):
        resume_flow_run(run_id)  # too early: the run looks, then suspends again
    run = wait_for(
        served, run_id, lambda r: suspended(r) and len(r.empirical_policy.pause_keys) >= 2
    )

    shutil.rmtree(served.api.storage, ignore_errors=True)  # a new host: no local checkpoints
    assert client.describe_statement(Id=statement["Id"])["Status"] != "FINISHED"
    release(client, tag)
    while client.describe_statement(Id=statement["Id"])["Status"] != "FINISHED":
        time.sleep(0.2)
    report = resumer()
    assert str(run_id) in report.resumed
    assert str(run_id) not in resumer().resumed  # a second pass resumes nothing twice
    run = wait_for(served, run_id, lambda r: r.state.is_final())
    assert run.state.is_completed(), run.state
    assert WAITING_TAG not in run.tags
    assert len(statements(client, pipeline)) == 1
    assert executions(client, tag) == 1


def test_failed_statement_after_resume_fails_the_run(
    served: Served, resumer: Callable[[], PassReport]
) -> None:
    client = data_api_client(served.endpoint)
    run_id, pipeline, tag = start(served, seconds=3, procedure="sp_slow_fail")
    wait_for(served, run_id, suspended)
    (statement,) = statements(client, pipeline)
    while client.describe_statement(Id=statement["Id"])["Status"] != "FAILED":
        time.sleep(0.5)
    assert str(run_id) in resumer().resumed
    run = wait_for(served, run_id, lambda r: r.state.is_final())
    assert run.state.is_failed()
    assert "step slow failed" in served.log.read_text()
    assert f"boom {tag}" in served.log.read_text()
    assert len(statements(client, pipeline)) == 1, "a FAILED statement was submitted again"


def test_aborted_statement_after_resume_fails_the_run(
    served: Served, resumer: Callable[[], PassReport]
) -> None:
    client = data_api_client(served.endpoint)
    run_id, pipeline, _ = start(served, seconds=120)
    wait_for(served, run_id, suspended)
    (statement,) = statements(client, pipeline)
    client.cancel_statement(Id=statement["Id"])
    while client.describe_statement(Id=statement["Id"])["Status"] != "ABORTED":
        time.sleep(0.5)
    assert str(run_id) in resumer().resumed
    run = wait_for(served, run_id, lambda r: r.state.is_final())
    assert run.state.is_failed()
    assert "StatementAbortedError" in served.log.read_text()
    assert len(statements(client, pipeline)) == 1


def test_cancelled_suspended_run_is_swept_once(
    served: Served, resumer: Callable[[], PassReport]
) -> None:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.states import Cancelling

    client = data_api_client(served.endpoint)
    run_id, pipeline, _ = start(served, seconds=120)
    wait_for(served, run_id, suspended)
    (statement,) = statements(client, pipeline)
    with SyncPrefectClient(api=served.api.api_url) as api:
        api.set_flow_run_state(run_id, Cancelling(), force=True)
    wait_for(served, run_id, lambda r: r.state.is_cancelled())
    report = resumer()
    assert str(run_id) in report.swept
    assert report.cancelled_statements == [statement["Id"]]
    deadline = time.monotonic() + 30
    while client.describe_statement(Id=statement["Id"])["Status"] != "ABORTED":
        assert time.monotonic() < deadline, "the sweep did not cancel the statement"
        time.sleep(0.5)
    assert str(run_id) not in resumer().swept  # the tag is gone: swept once


def test_early_resume_suspends_again_and_runs_each_statement_once(
    served: Served, resumer: Callable[[], PassReport]
) -> None:
    """A resume while the statement still runs (a duplicate or early event, a user's
    click): the run looks, finds it running, suspends again; it still completes once."""
    from prefect.flow_runs import resume_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    client = data_api_client(served.endpoint)
    run_id, pipeline, tag = start(served, seconds=GATE_SECONDS, procedure="sp_gated")
    wait_for(served, run_id, suspended)
    (statement,) = statements(client, pipeline)
    with temporary_settings(updates={PREFECT_API_URL: served.api.api_url}):
        resume_flow_run(run_id)
    run = wait_for(
        served, run_id, lambda r: suspended(r) and len(r.empirical_policy.pause_keys) >= 2
    )
    assert client.describe_statement(Id=statement["Id"])["Status"] != "FINISHED", (
        "the statement ended before the early resume was looked at: not an early resume"
    )
    assert run.state.message.startswith("waiting on 1: statement " + statement["Id"])
    assert [s["Id"] for s in statements(client, pipeline)] == [statement["Id"]]

    release(client, tag)
    while client.describe_statement(Id=statement["Id"])["Status"] != "FINISHED":
        time.sleep(0.2)
    assert str(run_id) in resumer().resumed
    run = wait_for(served, run_id, lambda r: r.state.is_final())
    assert run.state.is_completed(), run.state
    assert len(statements(client, pipeline)) == 1
    assert executions(client, tag) == 1


def test_resume_with_checkpoints_and_ids_lost_reattaches_by_name(served: Served) -> None:
    """A resume on a fresh process (a new host) with the local result folder wiped and the
    statement's id gone from the run's tags: only the StatementName (the run key) is left,
    and the run reattaches through it instead of running the procedure again."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.flow_runs import resume_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    client = data_api_client(served.endpoint)
    run_id, pipeline, tag = start(served, seconds=GATE_SECONDS, procedure="sp_gated")
    run = wait_for(served, run_id, suspended)
    (statement,) = statements(client, pipeline)
    shutil.rmtree(served.api.storage, ignore_errors=True)
    with SyncPrefectClient(api=served.api.api_url) as api:
        api.update_flow_run(
            run_id, tags=[t for t in run.tags if not t.startswith("redshift-stmt:")]
        )
    release(client, tag)
    while client.describe_statement(Id=statement["Id"])["Status"] != "FINISHED":
        time.sleep(0.2)
    with temporary_settings(updates={PREFECT_API_URL: served.api.api_url}):
        resume_flow_run(run_id)  # the runner starts a fresh flow process
    run = wait_for(served, run_id, lambda r: r.state.is_final())
    assert run.state.is_completed(), run.state
    assert [s["Id"] for s in statements(client, pipeline)] == [statement["Id"]]
    assert executions(client, tag) == 1
