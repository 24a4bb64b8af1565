"""The Prefect tasks against a real Prefect server: the checkpoint, run keys, force, client
tokens and fetched rows. Fast tests stub the target's own client; slow ones use the local
Data API endpoint."""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from botocore.stub import Stubber
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogWorker
from prefect_aws import AwsCredentials

import tasks.redshift_data
from local.stack import LOCAL_REGION, LocalStack
from tasks.jobs import InvalidRequestError
from tasks.redshift_data import (
    RedshiftTarget,
    RunKey,
    StatementResult,
    WaitPolicy,
    call_procedure,
    execute_statement,
    prefect_tasks,
)
from tasks.redshift_data.artifact import artifact_key
from tests.conftest import TEST_ACCESS_KEY, TEST_SECRET_KEY, PrefectApi
from tests.tasks.conftest import TASK_TIMEOUTS, HangingPrefectApi, timed_out_in_a_flow

NIGHT = dt.date(2026, 11, 25)
Ops = list[tuple[str, dict[str, Any]]]


def recorded_target() -> tuple[RedshiftTarget, RedshiftDataAPIServiceClient, Ops]:
    """A target, its own client (built by the target, as in a flow) and ``ops``, where every
    call the client was asked to make is recorded with its parameters."""
    target = RedshiftTarget(
        database="dev",
        workgroup_name="mystore-wg",
        region_name="eu-west-1",
        aws_credentials=AwsCredentials(
            aws_access_key_id="AKIDTEST", aws_secret_access_key="not-a-secret"
        ),
    )
    client = target.data_api_client()
    ops: Ops = []
    client.meta.events.register(
        "before-parameter-build.redshift-data",
        lambda model, params, **_: ops.append((model.name, dict(params))),
    )
    return target, client, ops


@pytest.fixture
def stubbed_target() -> Iterator[tuple[RedshiftTarget, Stubber, Ops]]:
    """A ``recorded_target`` whose client answers from a Stubber."""
    target, client, ops = recorded_target()
    with Stubber(client) as stub:
        yield target, stub, ops
        stub.assert_no_pending_responses()


def local_target(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> RedshiftTarget:
    """A target on the local endpoint, reached the standard way (environment variables)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_REDSHIFT_DATA", stack.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY)
    return RedshiftTarget(
        database="dev", cluster_identifier="local-test", db_user="awsuser", region_name=LOCAL_REGION
    )


def finished(sid: str, **extra: Any) -> dict[str, Any]:
    return {"Id": sid, "Status": "FINISHED", "Duration": 1_000_000, **extra}


def submits(ops: Ops) -> list[dict[str, Any]]:
    return [params for name, params in ops if name == "ExecuteStatement"]


def in_a_flow(**kwargs: Any) -> StatementResult:
    @flow(name="rsd-tasks")
    def one() -> StatementResult:
        return execute_statement(**kwargs)

    return one()


# -- fast: the checkpoint, force, tokens ----------------------------------------------------


def test_a_resumed_submit_is_served_from_the_checkpoint(
    prefect_settings: PrefectApi, stubbed_target: tuple[RedshiftTarget, Stubber, Ops]
) -> None:
    """The second run's ListStatements does not show the statement yet (as when the Data
    API lags); the checkpoint, keyed on the run key alone, still returns its id."""
    target, stub, ops = stubbed_target
    key = RunKey(f"p{uuid.uuid4().hex[:8]}", NIGHT, "load")
    stub.add_response("list_statements", {"Statements": []})
    stub.add_response("execute_statement", {"Id": "sid-a"})
    stub.add_response("describe_statement", finished("sid-a"))
    first = in_a_flow(sql="call p()", target=target, run_key=key)
    stub.add_response("list_statements", {"Statements": []})
    stub.add_response("describe_statement", {"Id": "sid-a", "Status": "STARTED"})
    stub.add_response("describe_statement", finished("sid-a"))
    second = in_a_flow(sql="call p()", target=target, run_key=key)
    assert first.statement_id == second.statement_id == "sid-a"
    assert len(submits(ops)) == 1
    assert submits(ops)[0]["StatementName"] == key.statement_name


def test_a_checkpoint_the_data_api_does_not_know_is_not_trusted(
    prefect_settings: PrefectApi, stubbed_target: tuple[RedshiftTarget, Stubber, Ops]
) -> None:
    """A checkpoint from another warehouse behind the same names (a rebuilt local stack),
    or older than the Data API's 24 h: the step submits afresh instead of failing."""
    target, stub, ops = stubbed_target
    key = RunKey(f"p{uuid.uuid4().hex[:8]}", NIGHT, "load")
    stub.add_response("list_statements", {"Statements": []})
    stub.add_response("execute_statement", {"Id": "sid-old"})
    stub.add_response("describe_statement", finished("sid-old"))
    in_a_flow(sql="call p()", target=target, run_key=key)
    stub.add_response("list_statements", {"Statements": []})
    stub.add_client_error("describe_statement", "ResourceNotFoundException", "no such id")
    stub.add_response("execute_statement", {"Id": "sid-new"})
    stub.add_response("describe_statement", finished("sid-new"))
    again = in_a_flow(sql="call p()", target=target, run_key=key)
    assert again.statement_id == "sid-new"
    assert len(submits(ops)) == 2


def test_call_procedure_passes_force_on(
    prefect_settings: PrefectApi, stubbed_target: tuple[RedshiftTarget, Stubber, Ops]
) -> None:
    target, stub, ops = stubbed_target
    key = RunKey(f"p{uuid.uuid4().hex[:8]}", NIGHT, "load")
    stub.add_response(
        "list_statements",
        {
            "Statements": [
                {
                    "Id": "sid-1",
                    "StatementName": key.statement_name,
                    "Status": "FINISHED",
                    "QueryString": "call s.p()",
                }
            ]
        },
    )
    stub.add_response("execute_statement", {"Id": "sid-2"})
    stub.add_response("describe_statement", finished("sid-2"))
    result = call_procedure(
        "stg_mystore.sp_run_incremental_load", target=target, run_key=key, force=True
    )
    assert (result.statement_id, result.reattached) == ("sid-2", False)
    assert submits(ops)[0]["StatementName"] == key.with_attempt(2).statement_name
    assert submits(ops)[0]["Sql"] == 'CALL "stg_mystore"."sp_run_incremental_load"()'


def test_a_forced_step_retried_after_a_lost_status_waits_on_its_own_attempt(
    prefect_settings: PrefectApi, stubbed_target: tuple[RedshiftTarget, Stubber, Ops]
) -> None:
    """``force`` submits past an earlier run's FINISHED attempt; when the task is retried
    because that new attempt's status was lost (the only kind of error retried), the retry
    waits on it: no second attempt, and no "cancel it before forcing" about its own."""
    target, stub, ops = stubbed_target
    key = RunKey(f"p{uuid.uuid4().hex[:8]}", NIGHT, "load")

    def listed(*statements: tuple[str, int, str]) -> dict[str, Any]:
        return {
            "Statements": [
                {"Id": sid, "StatementName": key.with_attempt(n).statement_name, "Status": st}
                for sid, n, st in statements
            ]
        }

    stub.add_response("list_statements", listed(("sid-1", 1, "FINISHED")))
    stub.add_response("execute_statement", {"Id": "sid-2"})
    stub.add_client_error("describe_statement", "ThrottlingException", "Rate exceeded")
    stub.add_response("list_statements", listed(("sid-2", 2, "STARTED"), ("sid-1", 1, "FINISHED")))
    stub.add_response("describe_statement", finished("sid-2"))

    @flow(name="rsd-forced-retry")
    def forced() -> StatementResult:
        return execute_statement.with_options(retries=1, retry_delay_seconds=0)(
            "call s.p()",
            target=target,
            run_key=key,
            force=True,
            policy=WaitPolicy(transient_error_budget=0),
            tag_flow_run=False,
        )

    result = forced()
    assert (result.statement_id, result.reattached) == ("sid-2", False)  # its own, not sent
    assert [p["StatementName"] for p in submits(ops)] == [key.with_attempt(2).statement_name]


def test_a_second_call_after_a_failed_attempt_submits_the_next_one(
    prefect_settings: PrefectApi, stubbed_target: tuple[RedshiftTarget, Stubber, Ops]
) -> None:
    """Only a retry of the same task run waits on its earlier try's statement: another call
    with the same key, in the same flow run, after that statement FAILED, submits attempt 2."""
    target, stub, ops = stubbed_target
    key = RunKey(f"p{uuid.uuid4().hex[:8]}", NIGHT, "load")
    stub.add_response("list_statements", {"Statements": []})
    stub.add_response("execute_statement", {"Id": "sid-1"})
    stub.add_response("describe_statement", {"Id": "sid-1", "Status": "FAILED", "Error": "x"})
    failed = {"Id": "sid-1", "StatementName": key.statement_name, "Status": "FAILED"}
    stub.add_response("list_statements", {"Statements": [failed]})
    stub.add_response("execute_statement", {"Id": "sid-2"})
    stub.add_response("describe_statement", finished("sid-2"))

    @flow(name="rsd-second-call")
    def twice() -> StatementResult:
        once = execute_statement.with_options(retries=0)
        first = once("call s.p()", target=target, run_key=key, return_state=True)
        assert first.is_failed()
        return once("call s.p()", target=target, run_key=key, tag_flow_run=False)

    assert twice().statement_id == "sid-2"
    assert [p["StatementName"] for p in submits(ops)] == [
        key.with_attempt(1).statement_name,
        key.with_attempt(2).statement_name,
    ]


def test_without_a_run_key_a_retry_keeps_its_client_token(
    prefect_settings: PrefectApi, stubbed_target: tuple[RedshiftTarget, Stubber, Ops]
) -> None:
    """A retried task run cannot start a second statement; another call is another one."""
    target, stub, ops = stubbed_target
    stub.add_response("execute_statement", {"Id": "sid-a"})
    stub.add_client_error("describe_statement", "ThrottlingException", "Rate exceeded")
    stub.add_response("execute_statement", {"Id": "sid-a"})  # same token: same statement
    stub.add_response("describe_statement", finished("sid-a"))
    retried = execute_statement.with_options(retries=1, retry_delay_seconds=0)(
        "select 1", target=target, policy=WaitPolicy(transient_error_budget=0)
    )
    stub.add_response("execute_statement", {"Id": "sid-b"})
    stub.add_response("describe_statement", finished("sid-b"))
    other = execute_statement("select 1", target=target)
    tokens = [params["ClientToken"] for params in submits(ops)]
    assert (retried.statement_id, other.statement_id) == ("sid-a", "sid-b")
    assert tokens[0] == tokens[1] != tokens[2]
    assert all(len(token) == 64 for token in tokens)
    assert "StatementName" not in submits(ops)[0]


def test_a_statement_tags_its_flow_run_unless_told_not_to(
    prefect_settings: PrefectApi, stubbed_target: tuple[RedshiftTarget, Stubber, Ops]
) -> None:
    """The tag is what the stop hooks cancel and suspend mode waits on; an informative read
    (``tag_flow_run=False``) is left off the run, and costs no tag write."""
    target, stub, _ = stubbed_target
    for sid in ("sid-work", "sid-count"):
        stub.add_response("execute_statement", {"Id": sid})
        stub.add_response("describe_statement", finished(sid))

    @flow(name="rsd-tags")
    def night() -> Any:
        from prefect.runtime import flow_run

        execute_statement("call stg_mystore.sp_load()", target=target)
        execute_statement("select count(*) from t", target=target, tag_flow_run=False)
        return flow_run.id

    flow_run_id = night()
    with get_client(sync_client=True) as client:
        tags = client.read_flow_run(flow_run_id).tags
    assert [t for t in tags if t.startswith("redshift-stmt:")] == ["redshift-stmt:sid-work"]


def test_call_procedure_validates_before_any_call(
    prefect_settings: PrefectApi, stubbed_target: tuple[RedshiftTarget, Stubber, Ops]
) -> None:
    target, _, ops = stubbed_target
    with pytest.raises(InvalidRequestError, match=r"procedure 'x\(\); drop table y' contains"):
        call_procedure("stg_mystore.x(); drop table y", target=target)
    with pytest.raises(InvalidRequestError, match=r"allowed: 'schema\.name'"):
        call_procedure("sp_without_schema", target=target)
    assert ops == []


def test_the_public_names_fit_on_one_screen() -> None:
    assert len(tasks.redshift_data.__all__) <= 12
    for name in tasks.redshift_data.__all__:
        assert getattr(tasks.redshift_data, name) is not None


# -- against the local endpoint -------------------------------------------------------------


def test_fetch_returns_typed_rows(
    prefect_settings: PrefectApi, local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = local_target(local_stack, monkeypatch)
    result = execute_statement(
        "select cast(:n as numeric(5, 2)) as n, cast(:d as date) as d, 'x' as s",
        target=target,
        parameters={"n": "1.50", "d": "2026-11-25"},
        fetch=True,
    )
    assert result.rows == ({"n": Decimal("1.50"), "d": NIGHT, "s": "x"},)
    assert execute_statement("select 1 as one", target=target).rows == ()


def statuses(client: RedshiftDataAPIServiceClient, prefix: str) -> list[str]:
    return [
        s["Status"]
        for s in client.list_statements(StatementName=prefix, Status="ALL")["Statements"]
    ]


def flow_logs(flow_run_id: Any) -> list[str]:
    APILogWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as api:
        logs = api.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
    return [entry.message for entry in logs]


@pytest.mark.slow
def test_execute_statement_logs_state_changes_and_publishes_a_table(
    prefect_settings: PrefectApi, local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = local_target(local_stack, monkeypatch)
    describes: list[int] = []
    target.data_api_client().meta.events.register(
        "before-send.redshift-data.DescribeStatement", lambda **_: describes.append(1)
    )
    pipeline = f"p{uuid.uuid4().hex[:8]}"
    key = RunKey(pipeline, NIGHT, "sleep")

    @flow(name="rsd-prefect-layer")
    def night() -> tuple[Any, Any, Any]:
        first = execute_statement(
            "select pg_sleep(2.5)",
            target=target,
            run_key=key,
            policy=WaitPolicy(long_poll_seconds=1),
        )
        again = execute_statement("select pg_sleep(2.5)", target=target, run_key=key)
        from prefect.runtime import flow_run

        return first, again, flow_run.id

    first, again, flow_run_id = night()
    assert again.statement_id == first.statement_id  # reattached to the FINISHED statement
    assert again.reattached and not first.reattached
    assert len(describes) >= 4  # at least 3 one-second polls, plus the reattach
    messages = flow_logs(flow_run_id)
    changes = [m for m in messages if m.startswith(f"statement {pipeline}/")]
    assert changes == [
        f"statement {pipeline}/2026-11-25/sleep/attempt-1 is STARTED",
        f"statement {pipeline}/2026-11-25/sleep/attempt-1: STARTED -> FINISHED",
        f"statement {pipeline}/2026-11-25/sleep/attempt-1 is FINISHED",
    ]
    assert any(m.startswith("reattaching to") for m in messages)
    with get_client(sync_client=True) as api:
        artifacts = api.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
                key=ArtifactFilterKey(any_=[artifact_key("rsd-prefect-layer")]),
            )
        )
    assert len(artifacts) == 1  # one statements table per flow run, updated in place
    table = artifacts[0].data
    assert isinstance(table, str) and first.statement_id in table and "FINISHED" in table


@pytest.mark.slow
def test_a_checkpoint_from_a_rebuilt_warehouse_is_not_trusted(
    local_stack: LocalStack,
    fresh_data_dir: Any,
    prefect_settings: PrefectApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """End to end: rebuilding the local warehouse leaves a checkpoint naming an unknown id."""
    key = RunKey("rebuilt", NIGHT, f"rebuilt_{uuid.uuid4().hex[:8]}")
    first = in_a_flow(sql="select 1", target=local_target(local_stack, monkeypatch), run_key=key)
    with LocalStack.start(fresh_data_dir, with_glue=False) as rebuilt:
        target = local_target(rebuilt, monkeypatch)
        second = in_a_flow(sql="select 1", target=target, run_key=key)
        assert second.statement_id != first.statement_id
        client = target.data_api_client()
        assert client.describe_statement(Id=second.statement_id)["Status"] == "FINISHED"
        assert statuses(client, key.step_prefix) == ["FINISHED"]


@pytest.mark.slow
def test_task_timeout_cancels_the_statement(
    prefect_settings: PrefectApi, local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = local_target(local_stack, monkeypatch)
    key = RunKey(f"p{uuid.uuid4().hex[:8]}", NIGHT, "sleep")

    task_with_timeout = execute_statement.with_options(timeout_seconds=3, retries=0)
    started = time.monotonic()
    outcome = timed_out_in_a_flow(
        partial(task_with_timeout, "select pg_sleep(60)", target=target, run_key=key)
    )
    assert re.search(r"still STARTED after [12]\.[0-9] s", outcome), outcome
    assert time.monotonic() - started < 30
    assert statuses(target.data_api_client(), key.step_prefix) == ["ABORTED"]


@pytest.mark.parametrize(
    ("task_name", "where"),  # the checkpoint's end is one path for both tasks
    [
        ("execute_statement", "tagging"),
        ("start_statement", "tagging"),
        ("execute_statement", "checkpoint-end"),
    ],
)
def test_a_task_timeout_between_the_submit_and_the_wait_cancels_the_statement(
    prefect_settings: PrefectApi, monkeypatch: pytest.MonkeyPatch, task_name: str, where: str
) -> None:
    """The Prefect API hangs after ExecuteStatement answered and before the wait (whose own
    cancel is not in force yet): while the checkpoint task records its result, or while the
    flow run is tagged with the statement. The task's timeout fires there, and the statement
    is cancelled rather than left running with nobody waiting on it."""
    hanging = HangingPrefectApi()
    if where == "tagging":
        monkeypatch.setattr(prefect_tasks, "record_work", hanging)
    else:
        noted = prefect_tasks._note_submitted

        def noted_then_hangs(statement_id: str | None) -> None:
            noted(statement_id)  # the id is in hand; then Prefect's calls to end the task
            if statement_id is not None:
                hanging()

        monkeypatch.setattr(prefect_tasks, "_note_submitted", noted_then_hangs)
    for seconds in TASK_TIMEOUTS:
        target, client, ops = recorded_target()
        key = RunKey(f"p{uuid.uuid4().hex[:8]}", NIGHT, "load")
        data_api_task = getattr(prefect_tasks, task_name).with_options(
            timeout_seconds=seconds, retries=0
        )
        with Stubber(client) as stub:
            stub.add_response("list_statements", {"Statements": []})  # no earlier attempt
            stub.add_response("execute_statement", {"Id": "sid-abandoned"})
            stub.add_response("cancel_statement", {"Status": True})
            reached = hanging.calls
            outcome = timed_out_in_a_flow(
                partial(data_api_task, "call p()", target=target, run_key=key)
            )
            if hanging.calls > reached and "timed out" in outcome:
                stub.assert_no_pending_responses()
                break  # the timeout fired in the hang, the window this test is about
    else:
        pytest.fail(f"no task timeout of {TASK_TIMEOUTS} s fired in the hang: {outcome}")
    assert [(name, params.get("Id")) for name, params in ops][-2:] == [
        ("ExecuteStatement", None),
        ("CancelStatement", "sid-abandoned"),
    ]
