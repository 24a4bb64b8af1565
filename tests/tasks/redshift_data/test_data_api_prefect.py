"""The Prefect layer against a real Prefect server and the local Data API endpoint."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import FlowRun
from prefect.logging.handlers import APILogWorker
from prefect.states import Failed, State

from local.stack import LocalStack
from tasks.redshift_data import (
    InvalidRequestError,
    RedshiftTarget,
    StatementFailedError,
    StatementStatusUnknownError,
    StepKey,
    SubmitError,
    WaitPolicy,
    submit_or_reattach,
)
from tasks.redshift_data.prefect_tasks import (
    _retry_lost_or_refused,
    call_procedure,
    cancel_night_hook,
    checkpointed_submit,
    run_statement,
)
from tests.conftest import PrefectApi, data_api_client

TARGET = RedshiftTarget(database="dev", cluster_identifier="local-test", db_user="awsuser")


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
def test_run_statement_logs_state_changes_and_publishes_a_table(
    prefect_settings: PrefectApi, local_stack: LocalStack
) -> None:
    client = data_api_client(local_stack.endpoint_url)
    describes: list[int] = []
    client.meta.events.register(
        "before-send.redshift-data.DescribeStatement", lambda **_: describes.append(1)
    )
    pipeline = f"p{uuid.uuid4().hex[:8]}"

    @flow(name="rsd-prefect-layer")
    def night() -> tuple[Any, Any, Any]:
        first = run_statement(
            client,
            TARGET,
            "select pg_sleep(2.5)",
            pipeline=pipeline,
            logical_date="2026-11-25",
            step="sleep",
            policy=WaitPolicy(long_poll_seconds=1),
        )
        again = run_statement(
            client,
            TARGET,
            "select pg_sleep(2.5)",
            pipeline=pipeline,
            logical_date="2026-11-25",
            step="sleep",
        )
        from prefect.runtime import flow_run

        return first, again, flow_run.id

    first, again, flow_run_id = night()
    assert again.statement_id == first.statement_id  # reattached to the FINISHED statement
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
                key=ArtifactFilterKey(any_=[f"redshift-statements-{pipeline}"])
            )
        )
    table = artifacts[0].data
    assert isinstance(table, str) and first.statement_id in table and "FINISHED" in table


@pytest.mark.slow
def test_checkpoint_returns_the_id_without_resubmitting(prefect_settings: PrefectApi) -> None:
    """A second flow run for the same run key gets the persisted id; AWS is not called."""
    client = boto3.client(
        "redshift-data",
        region_name="eu-west-1",
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="not-a-secret",
    )
    sid = "d9b6c0c9-0747-4bf4-b142-e8883122f766"
    key = f"redshift-data-submit-{uuid.uuid4().hex}"
    request = {
        "Sql": "select 1",
        "Database": "dev",
        "WorkgroupName": "mystore-wg",
        "ClientToken": "t",
    }

    @flow(name="rsd-checkpoint")
    def submit_once() -> str:
        return checkpointed_submit(key, "name", client, "ExecuteStatement", request)

    with Stubber(client) as stub:
        stub.add_response("execute_statement", {"Id": sid})
        assert submit_once() == sid
        assert submit_once() == sid  # no response queued: a second call would fail
        stub.assert_no_pending_responses()


@pytest.mark.slow
def test_a_checkpoint_from_another_warehouse_is_not_trusted(
    local_stack: LocalStack, fresh_data_dir: Any, prefect_settings: PrefectApi
) -> None:
    """Rebuilding the local warehouse (or the Data API forgetting a statement after 24 h)
    leaves a checkpoint naming an unknown id: the step submits afresh instead of failing."""
    step = f"rebuilt_{uuid.uuid4().hex[:8]}"

    @flow(name="rsd-rebuilt")
    def once(client: Any) -> str:
        result = run_statement(
            client, TARGET, "select 1", pipeline="rebuilt", logical_date="2026-11-25", step=step
        )
        return result.statement_id

    first = once(data_api_client(local_stack.endpoint_url))
    with LocalStack.start(fresh_data_dir, with_glue=False) as rebuilt:
        client = data_api_client(rebuilt.endpoint_url)
        second = once(client)
        assert second != first
        assert client.describe_statement(Id=second)["Status"] == "FINISHED"
        assert statuses(client, f"rebuilt/2026-11-25/{step}/") == ["FINISHED"]


@pytest.mark.slow
def test_task_timeout_cancels_the_statement(
    prefect_settings: PrefectApi, local_stack: LocalStack
) -> None:
    client = data_api_client(local_stack.endpoint_url)
    pipeline = f"p{uuid.uuid4().hex[:8]}"

    @flow(name="rsd-timeout")
    def night() -> str:
        try:
            run_statement.with_options(timeout_seconds=3, retries=0)(
                client,
                TARGET,
                "select pg_sleep(60)",
                pipeline=pipeline,
                logical_date="2026-11-25",
                step="sleep",
            )
        except TimeoutError as exc:
            return str(exc)
        return "no timeout"

    started = time.monotonic()
    assert re.search(r"still STARTED after [12]\.[0-9] s", night())
    assert time.monotonic() - started < 30
    assert statuses(client, StepKey(pipeline, "2026-11-25", "sleep").name_prefix) == ["ABORTED"]


@pytest.mark.slow
def test_call_procedure_validates_before_any_call(prefect_settings: PrefectApi) -> None:
    client = boto3.client(
        "redshift-data",
        region_name="eu-west-1",
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="not-a-secret",
    )

    @flow(name="rsd-bad-name")
    def night() -> str:
        try:
            call_procedure(
                client,
                TARGET,
                "stg_mystore",
                "x(); drop table y",
                [],
                pipeline="nightly",
                logical_date="2026-11-25",
            )
        except InvalidRequestError as exc:
            return str(exc)
        return "accepted"

    with Stubber(client):  # nothing queued: any call to AWS would raise something else
        assert night().startswith("procedure 'x(); drop table y' contains or starts with '('")


def test_cancel_hook_cancels_the_nights_running_statements(local_stack: LocalStack) -> None:
    """What a runner runs in its own process after stopping a cancelled flow run."""
    client = data_api_client(local_stack.endpoint_url)
    pipeline = f"p{uuid.uuid4().hex[:8]}"
    step = StepKey(pipeline, "2026-11-25", "sleep")
    submission = submit_or_reattach(client, TARGET, "select pg_sleep(60)", step)
    other_night = submit_or_reattach(
        client, TARGET, "select pg_sleep(1)", StepKey(pipeline, "2026-11-24", "sleep")
    )
    hook = cancel_night_hook(lambda: client, pipeline)
    flow_run = FlowRun(
        flow_id=uuid.uuid4(), name="stopped", parameters={"logical_date": "2026-11-25"}
    )
    hook(None, flow_run, State(type="CANCELLING"))  # type: ignore[arg-type]
    assert client.describe_statement(Id=submission.statement_id)["Status"] == "ABORTED"
    assert client.describe_statement(Id=other_night.statement_id)["Status"] != "ABORTED"


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (SubmitError("ActiveStatementsExceeded", code="ActiveStatementsExceededException"), True),
        (StatementStatusUnknownError("lost", statement_id="x"), True),
        (StatementFailedError("failed", statement_id="x", error="boom"), False),
        (InvalidRequestError("bad name"), False),
    ],
)
def test_task_retries_only_what_reattaches(exc: Exception, retry: bool) -> None:
    assert _retry_lost_or_refused(run_statement, None, Failed(data=exc)) is retry  # type: ignore[arg-type]


def test_prefect_names_are_exported_lazily() -> None:
    import tasks.redshift_data as package

    assert package.run_statement is run_statement
    assert package.call_procedure is call_procedure
    with pytest.raises(AttributeError):
        package.nope  # noqa: B018
