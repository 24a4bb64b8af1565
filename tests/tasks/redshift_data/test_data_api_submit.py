"""Idempotent submit: which attempt to run, and what is sent, with a stubbed client."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError
from botocore.stub import Stubber
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from tasks.jobs import JobError, RunKey, SubmitError, WaitPolicy, safe_to_retry
from tasks.redshift_data import RedshiftTarget, StatementFailedError
from tasks.redshift_data.errors import StatementLookupError
from tasks.redshift_data.submit import (
    PriorStatement,
    decide,
    submit_or_reattach,
    submit_statement,
)

Stubbed = tuple[RedshiftDataAPIServiceClient, Stubber]
SID = "d9b6c0c9-0747-4bf4-b142-e8883122f766"
SID2 = "aaaaaaaa-0747-4bf4-b142-e8883122f766"
TARGET = RedshiftTarget(database="dev", workgroup_name="mystore-wg")
STEP = RunKey("nightly", dt.date(2026, 11, 25), "load")


def prior(attempt: int, status: str, sid: str = SID, created: str = "2026-11-26") -> PriorStatement:
    return PriorStatement(sid, attempt, status, created)


@pytest.mark.parametrize(
    ("history", "force", "expected"),
    [
        ([], False, ("submit", 1, None)),
        ([prior(1, "STARTED")], False, ("reattach", 1, SID)),
        ([prior(1, "SUBMITTED")], False, ("reattach", 1, SID)),
        ([prior(1, "PICKED")], False, ("reattach", 1, SID)),
        ([prior(1, "FINISHED")], False, ("reattach", 1, SID)),
        ([prior(1, "FAILED")], False, ("submit", 2, None)),
        ([prior(1, "ABORTED")], False, ("submit", 2, None)),
        ([prior(1, "FAILED"), prior(2, "FINISHED", SID2)], False, ("reattach", 2, SID2)),
        ([prior(2, "ABORTED", SID2), prior(1, "FINISHED")], False, ("submit", 3, None)),
        ([prior(1, "FINISHED")], True, ("submit", 2, None)),
        ([], True, ("submit", 1, None)),
    ],
)
def test_decide(history: list[PriorStatement], force: bool, expected: tuple[Any, ...]) -> None:
    decision = decide(history, force=force)
    assert (decision.action, decision.attempt, decision.statement_id) == expected


def test_force_refuses_while_an_attempt_runs() -> None:
    with pytest.raises(JobError, match="still STARTED; cancel it"):
        decide([prior(1, "STARTED")], force=True)


def listed(name: str, status: str, sid: str = SID) -> dict[str, Any]:
    return {
        "Id": sid,
        "QueryString": "call x()",
        "Status": status,
        "StatementName": name,
        "CreatedAt": "2026-11-26T01:00:00Z",
    }


def test_reattach_after_paging_through_list_statements(stubbed: Stubbed) -> None:
    client, stub = stubbed
    prefix = "nightly/2026-11-25/load/attempt-"
    stub.add_response(
        "list_statements",
        {"Statements": [listed(prefix + "1", "FAILED")], "NextToken": "page2"},
        {"StatementName": prefix, "Status": "ALL", **TARGET.statement_filter()},
    )
    stub.add_response(
        "list_statements",
        # "load_customer" shares the text prefix "load" but is another step: ignored
        {
            "Statements": [
                listed(prefix + "2", "STARTED", SID2),
                listed("nightly/2026-11-25/load/attempt-2x", "FINISHED", SID),
            ]
        },
        {
            "StatementName": prefix,
            "Status": "ALL",
            "NextToken": "page2",
            **TARGET.statement_filter(),
        },
    )
    submission = submit_or_reattach(client, TARGET, "call x()", STEP)
    assert (submission.statement_id, submission.attempt, submission.reattached) == (SID2, 2, True)


def test_submit_next_attempt_after_failure(stubbed: Stubbed) -> None:
    client, stub = stubbed
    prefix = "nightly/2026-11-25/load/attempt-"
    stub.add_response("list_statements", {"Statements": [listed(prefix + "1", "FAILED")]})
    stub.add_response(
        "execute_statement",
        {"Id": SID2},
        {
            "Database": "dev",
            "WorkgroupName": "mystore-wg",
            "Sql": "call x(:p1)",
            "Parameters": [{"name": "p1", "value": "a"}],
            "StatementName": prefix + "2",
            "ClientToken": STEP.with_attempt(2).client_token(TARGET.scope()),
        },
    )
    submission = submit_or_reattach(client, TARGET, "call x(:p1)", STEP, parameters={"p1": "a"})
    assert (submission.statement_id, submission.attempt, submission.reattached) == (SID2, 2, False)
    assert submission.statement_name == prefix + "2"


def test_suspend_mode_submits_with_event(stubbed: Stubbed) -> None:
    """WithEvent=True makes the Data API announce the statement's end (EventBridge; the
    local endpoint runs the bridge), which wakes a suspended run."""
    client, stub = stubbed
    prefix = "nightly/2026-11-25/load/attempt-"
    stub.add_response("list_statements", {"Statements": []})
    stub.add_response(
        "execute_statement",
        {"Id": SID},
        {
            "Database": "dev",
            "WorkgroupName": "mystore-wg",
            "Sql": "call x()",
            "StatementName": prefix + "1",
            "ClientToken": STEP.with_attempt(1).client_token(TARGET.scope()),
            "WithEvent": True,
        },
    )
    submission = submit_or_reattach(client, TARGET, "call x()", STEP, with_event=True)
    assert (submission.statement_id, submission.reattached) == (SID, False)
    stub.assert_no_pending_responses()


def test_execute_statement_exception_is_described_not_resubmitted(stubbed: Stubbed) -> None:
    client, stub = stubbed
    stub.add_client_error(
        "execute_statement",
        "ExecuteStatementException",
        "environment",
        http_status_code=500,
        modeled_fields={"Message": "environment", "StatementId": SID},
    )
    stub.add_response("describe_statement", {"Id": SID, "Status": "STARTED"}, {"Id": SID})
    request = {
        "Sql": "select 1",
        "Database": "dev",
        "WorkgroupName": "mystore-wg",
        "ClientToken": "t",
    }
    assert submit_statement(client, "ExecuteStatement", request) == SID


def test_execute_statement_exception_for_a_failed_statement_raises_its_error(
    stubbed: Stubbed,
) -> None:
    client, stub = stubbed
    stub.add_client_error(
        "execute_statement",
        "ExecuteStatementException",
        "environment",
        http_status_code=500,
        modeled_fields={"Message": "environment", "StatementId": SID},
    )
    stub.add_response("describe_statement", {"Id": SID, "Status": "FAILED", "Error": "disk full"})
    request = {
        "Sql": "select 1",
        "Database": "dev",
        "WorkgroupName": "mystore-wg",
        "ClientToken": "t",
    }
    with pytest.raises(StatementFailedError, match="disk full"):
        submit_statement(client, "ExecuteStatement", request)


def test_capacity_refusals_are_retried_with_backoff(stubbed: Stubbed) -> None:
    client, stub = stubbed
    for _ in range(2):
        stub.add_client_error("execute_statement", "ActiveStatementsExceededException", "too many")
    stub.add_response("execute_statement", {"Id": SID})
    sleeps: list[float] = []
    request = {"Sql": "select 1", "Database": "dev", "WorkgroupName": "mystore-wg"}
    assert submit_statement(client, "ExecuteStatement", request, sleep=sleeps.append) == SID
    assert len(sleeps) == 2 and 0.8 <= sleeps[0] <= 1.2 and 1.6 <= sleeps[1] <= 2.4


def test_the_callers_policy_paces_the_retries_but_not_their_number(stubbed: Stubbed) -> None:
    client, stub = stubbed
    for _ in range(3):
        stub.add_client_error("execute_statement", "ThrottlingException", "Rate exceeded")
    sleeps: list[float] = []
    request = {"Sql": "select 1", "Database": "dev", "WorkgroupName": "mystore-wg"}
    policy = WaitPolicy(submit_interval=0.1, jitter=0.0)
    with pytest.raises(SubmitError, match="still refused after 3 tries"):
        submit_statement(
            client, "ExecuteStatement", request, retries=2, sleep=sleeps.append, policy=policy
        )
    assert sleeps == pytest.approx([0.1, 0.2])


def test_capacity_refusals_give_up_with_a_submit_error(stubbed: Stubbed) -> None:
    client, stub = stubbed
    for _ in range(2):
        stub.add_client_error("execute_statement", "ActiveStatementsExceededException", "too many")
    request = {"Sql": "select 1", "Database": "dev", "WorkgroupName": "mystore-wg"}
    with pytest.raises(SubmitError, match="still refused after 2 tries") as info:
        submit_statement(client, "ExecuteStatement", request, retries=1, sleep=lambda _: None)
    assert info.value.code == "ActiveStatementsExceededException"


def test_unknown_outcome_without_token_is_not_retried() -> None:
    client = boto3.client(
        "redshift-data",
        region_name="eu-west-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="not-a-secret",
        config=Config(retries={"max_attempts": 1}),
    )
    sleeps: list[float] = []
    request = {"Sql": "select 1", "Database": "dev", "WorkgroupName": "mystore-wg"}
    with pytest.raises(SubmitError, match="no ClientToken to retry safely"):
        submit_statement(client, "ExecuteStatement", request, sleep=sleeps.append)
    assert sleeps == []


def test_unknown_outcome_with_token_is_retried(stubbed: Stubbed) -> None:
    client, stub = stubbed
    calls: list[int] = []

    def drop_once(**_: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionClosedError(endpoint_url="https://redshift-data")

    client.meta.events.register("before-parameter-build.redshift-data.ExecuteStatement", drop_once)
    stub.add_response("execute_statement", {"Id": SID})
    request = {
        "Sql": "select 1",
        "Database": "dev",
        "WorkgroupName": "mystore-wg",
        "ClientToken": "t",
    }
    assert submit_statement(client, "ExecuteStatement", request, sleep=lambda _: None) == SID
    assert len(calls) == 2


def test_permanent_submit_error_names_the_cause(stubbed: Stubbed) -> None:
    client, stub = stubbed
    stub.add_client_error("execute_statement", "ValidationException", "Cluster not found")
    request = {
        "Sql": "select 1",
        "Database": "dev",
        "WorkgroupName": "mystore-wg",
        "ClientToken": "t",
    }
    with pytest.raises(JobError, match=r"ExecuteStatement was refused.*Cluster not found"):
        submit_statement(client, "ExecuteStatement", request)


def test_server_error_without_token_is_not_retried(stubbed: Stubbed) -> None:
    client, stub = stubbed
    stub.add_client_error(
        "execute_statement", "InternalServerException", "oops", http_status_code=500
    )
    request = {"Sql": "select 1", "Database": "dev", "WorkgroupName": "mystore-wg"}
    with pytest.raises(SubmitError, match="outcome unknown") as info:
        submit_statement(client, "ExecuteStatement", request, sleep=lambda _: None)
    assert info.value.code == "InternalServerException"


def test_refused_lookup_fails_at_once_naming_the_step_and_submits_nothing(
    stubbed: Stubbed,
) -> None:
    """A lookup refused outright (not transient) is not retried; the error names the step's
    StatementName prefix and its cause."""
    client, stub = stubbed
    stub.add_client_error("list_statements", "AccessDeniedException", "not allowed", 400)
    with pytest.raises(StatementLookupError) as caught:
        submit_or_reattach(client, TARGET, "call x()", STEP)
    assert "nightly/2026-11-25/load/attempt-" in str(caught.value)
    assert "AccessDeniedException" in str(caught.value)


def test_a_statement_of_this_run_the_data_api_forgot_is_not_submitted_again(
    stubbed: Stubbed,
) -> None:
    """A run resumed more than 24 hours later: the Data API no longer knows a statement the
    run started, which may have been this step's (and loaded already), so nothing is sent;
    one it still knows is another step's (it was not listed under this step's name)."""
    client, stub = stubbed
    stub.add_response("list_statements", {"Statements": []})
    stub.add_client_error(  # asked in id order: SID2 first
        "describe_statement",
        "ResourceNotFoundException",
        f"Query {SID2} does not exist",
        expected_params={"Id": SID2},
    )
    stub.add_response("describe_statement", {"Id": SID, "Status": "FINISHED"}, {"Id": SID})
    with pytest.raises(JobError, match=f"started {SID2}, which the Data API no longer knows"):
        submit_or_reattach(client, TARGET, "call x()", STEP, reattach_to={SID, SID2})

    stub.add_response("list_statements", {"Statements": []})
    stub.add_response("describe_statement", {"Id": SID, "Status": "FINISHED"}, {"Id": SID})
    stub.add_response("execute_statement", {"Id": SID2})
    submission = submit_or_reattach(client, TARGET, "call x()", STEP, reattach_to={SID})
    assert (submission.statement_id, submission.attempt) == (SID2, 1)


def test_a_statement_of_this_run_that_cannot_be_read_holds_the_submit(stubbed: Stubbed) -> None:
    """Throttled while telling whose an unlisted statement of this run is: nothing is sent,
    and the error is one a retry looks again after."""
    client, stub = stubbed
    stub.add_response("list_statements", {"Statements": []})
    stub.add_client_error("describe_statement", "ThrottlingException", "Rate exceeded")
    with pytest.raises(StatementLookupError, match=f"could not read {SID}") as caught:
        submit_or_reattach(client, TARGET, "call x()", STEP, reattach_to={SID})
    assert safe_to_retry(caught.value)
