"""The resumer's sweep (``flows.resume_waiting``) stops the work of runs that ended while
suspended, fenced as the stop hooks are: work another live run also waits on (a retry that
reattached to the same statement) is left running, and stopped once that run has ended too.
The whole suspend/resume loop is in tests/integration/test_suspend.py."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.states import Cancelled, Running

from flows.resume_waiting import one_pass
from flows.waiting import WAITING_TAG, Work
from local.embedded import LOCAL_TARGET
from local.stack import LocalStack
from tasks.flow_run_tags import statement_tag
from tests.flows.test_runner import _runtime

RUNNING = ("SUBMITTED", "PICKED", "STARTED")
LOG = logging.getLogger("test-resume-waiting")


@flow(name="resume-waiting-test-night")
def a_night() -> None:
    """Only a flow to hang flow runs on; never run."""


def _flow_run(tags: list[str], state: Any) -> Any:
    with get_client(sync_client=True) as client:
        return client.create_flow_run(a_night, tags=tags, state=state)


def _wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


@pytest.mark.usefixtures("prefect_settings")
def test_the_sweep_spares_work_another_live_run_waits_on(migrated: LocalStack) -> None:
    """A was cancelled while suspended; B, a live retry of the same night, reattached to
    A's statement. The sweep removes A's waiting tag and leaves the statement running; once
    B is cancelled while suspended too, the sweep cancels it."""
    runtime = _runtime(migrated)
    shared = runtime.redshift_data.execute_statement(
        **LOCAL_TARGET.request_fields(),
        Sql="select pg_sleep(60)",
        StatementName="resume-waiting-test/2026-11-21/load/attempt-1",
    )["Id"]

    def status() -> str:
        return str(runtime.redshift_data.describe_statement(Id=shared)["Status"])

    tags = [WAITING_TAG, statement_tag(shared)]
    run_a = _flow_run(tags, Cancelled())
    run_b = _flow_run([statement_tag(shared)], Running())

    report = one_pass(runtime, LOG)
    assert str(run_a.id) in report.swept
    assert shared not in report.cancelled_statements
    assert str(Work("statement", shared)) in report.left_running
    assert status() in RUNNING
    assert str(run_a.id) not in one_pass(runtime, LOG).swept  # its tag is gone: swept once

    with get_client(sync_client=True) as client:
        client.update_flow_run(run_b.id, tags=tags)
        client.set_flow_run_state(run_b.id, Cancelled(), force=True)
    report = one_pass(runtime, LOG)
    assert str(run_b.id) in report.swept
    assert report.cancelled_statements.count(shared) == 1
    _wait_for(lambda: status() == "ABORTED")


@pytest.mark.usefixtures("prefect_settings")
def test_work_not_read_in_a_pass_is_swept_by_a_later_pass(migrated: LocalStack) -> None:
    """A run cancelled while suspended, whose statement the Data API does not describe this
    pass (throttled): its waiting tag stays, so the next pass finds it and cancels the
    statement, instead of the tag going and the statement running on with nobody waiting."""
    runtime = _runtime(migrated)
    statement = runtime.redshift_data.execute_statement(
        **LOCAL_TARGET.request_fields(),
        Sql="select pg_sleep(60)",
        StatementName="resume-waiting-test/2026-11-22/load/attempt-1",
    )["Id"]
    run = _flow_run([WAITING_TAG, statement_tag(statement)], Cancelled())
    migrated.endpoint.faults.throttle("DescribeStatement", 1000)
    try:
        report = one_pass(runtime, LOG)
    finally:
        migrated.endpoint.faults.clear()
    assert str(run.id) in report.sweep_deferred and str(run.id) not in report.swept
    assert statement not in report.cancelled_statements

    report = one_pass(runtime, LOG)
    assert str(run.id) in report.swept
    assert report.cancelled_statements.count(statement) == 1
    _wait_for(lambda: runtime.redshift_data.describe_statement(Id=statement)["Status"] == "ABORTED")


@pytest.mark.usefixtures("prefect_settings")
def test_work_the_service_no_longer_knows_has_ended(migrated: LocalStack) -> None:
    """A statement the Data API forgot (it keeps them 24 h) is not running: the run that
    names it beside a running one is swept at once, not deferred on every pass."""
    runtime = _runtime(migrated)
    running = runtime.redshift_data.execute_statement(
        **LOCAL_TARGET.request_fields(),
        Sql="select pg_sleep(60)",
        StatementName="resume-waiting-test/2026-11-23/load/attempt-1",
    )["Id"]
    forgotten = str(uuid.uuid4())
    run = _flow_run([WAITING_TAG, statement_tag(forgotten), statement_tag(running)], Cancelled())
    report = one_pass(runtime, LOG)
    assert str(run.id) in report.swept and str(run.id) not in report.sweep_deferred
    assert running in report.cancelled_statements and forgotten not in report.cancelled_statements
    _wait_for(lambda: runtime.redshift_data.describe_statement(Id=running)["Status"] == "ABORTED")


def test_the_command_refuses_to_run_without_a_server_or_with_bad_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without PREFECT_API_URL the pass ran on a temporary server (no suspended runs there),
    and bad settings failed inside it as a validation dump: both exit 2 before starting."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.resume_waiting import main

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        monkeypatch.delenv("PREFECT_API_URL", raising=False)
        assert main([]) == 2
    assert "PREFECT_API_URL is not set" in capsys.readouterr().err
    monkeypatch.setenv("MYSTORE_TARGET", "aws")
    monkeypatch.setenv("MYSTORE_WORKGROUP_NAME", "wg")
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        assert main(["--install-automation"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: invalid settings: MYSTORE_WORKGROUP_NAME 'wg' is invalid; allowed: 3-63 "
        "lower-case letters, digits and hyphens, or a workgroup ARN\n"
    )


def test_the_command_names_a_server_that_does_not_answer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A configured server that is gone exits 1 with one line, not Prefect's traceback."""
    import socket

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.resume_waiting import main

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/api"
    with temporary_settings(updates={PREFECT_API_URL: url}):
        assert main([]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: the Prefect API at PREFECT_API_URL={url} does not answer (")
    assert err.endswith("Start that server (a local stack's: `python -m local up`)\n")
