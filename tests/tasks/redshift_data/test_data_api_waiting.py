"""The waiting loop against a stubbed client and a fake clock: calls, sleeps, outcomes."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import CredentialRetrievalError, ProxyConnectionError, SSLError
from botocore.stub import Stubber
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from tasks.jobs import JobError, WaitPolicy
from tasks.redshift_data import StatementAbortedError, StatementFailedError, StatementTimeoutError
from tasks.redshift_data.errors import StatementStatusUnknownError
from tasks.redshift_data.waiting import long_poll_seconds, wait_for_statement, wait_or_cancel

Stubbed = tuple[RedshiftDataAPIServiceClient, Stubber]
SID = "d9b6c0c9-0747-4bf4-b142-e8883122f766"


def desc(status: str, **extra: Any) -> dict[str, Any]:
    return {"Id": SID, "Status": status, **extra}


def run(
    client: RedshiftDataAPIServiceClient,
    clock: Any,
    policy: WaitPolicy | None = None,
    **kwargs: Any,
) -> Any:
    return wait_for_statement(
        client,
        SID,
        policy=policy,
        clock=clock,
        sleep=clock.sleep,
        unit_random=lambda: 0.5,
        **kwargs,
    )


def test_long_poll_never_outlives_the_deadline() -> None:
    policy = WaitPolicy()
    assert long_poll_seconds(policy, None) == 30
    assert long_poll_seconds(policy, 7.9) == 7
    assert long_poll_seconds(policy, 0.9) is None
    assert long_poll_seconds(WaitPolicy(long_poll_seconds=0), None) is None


def test_one_long_poll_notices_a_short_statement(stubbed: Stubbed, clock: Any) -> None:
    client, stub = stubbed
    stub.add_response("describe_statement", desc("FINISHED"), {"Id": SID, "WaitTimeSeconds": 30})
    clock.call_durations = [1.0]
    assert run(client, clock)["Status"] == "FINISHED"
    assert clock.sleeps == []


def test_full_long_polls_repeat_without_sleeping(stubbed: Stubbed, clock: Any) -> None:
    client, stub = stubbed
    for status in ("STARTED", "STARTED", "FINISHED"):
        stub.add_response("describe_statement", desc(status), {"Id": SID, "WaitTimeSeconds": 30})
    clock.call_durations = [30.0, 30.0, 5.0]
    changes: list[tuple[str | None, str]] = []
    run(client, clock, on_change=lambda prev, d: changes.append((prev, d["Status"])))
    assert clock.sleeps == []
    assert changes == [(None, "STARTED"), ("STARTED", "FINISHED")]


def test_early_answers_fall_back_to_backoff(stubbed: Stubbed, clock: Any) -> None:
    """An endpoint that ignores WaitTimeSeconds answers at once: back off, don't hammer."""
    client, stub = stubbed
    for status in ("SUBMITTED", "STARTED", "STARTED", "FINISHED"):
        stub.add_response("describe_statement", desc(status))
    policy = WaitPolicy(initial_interval=0.5, max_interval=4.0, jitter=0.0)
    run(client, clock, policy)
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_endpoint_rejecting_wait_time_switches_to_plain_polling(
    stubbed: Stubbed, clock: Any
) -> None:
    client, stub = stubbed
    stub.add_client_error(
        "describe_statement",
        "ValidationException",
        "Unknown parameter WaitTimeSeconds",
        expected_params={"Id": SID, "WaitTimeSeconds": 30},
    )
    stub.add_response("describe_statement", desc("FINISHED"), {"Id": SID})
    assert run(client, clock)["Status"] == "FINISHED"


@pytest.mark.parametrize(
    ("code", "message", "status"),
    [
        ("ThrottlingException", "Rate exceeded", 400),
        ("ValidationException", "Rate exceeded", 400),  # Serverless's wrapped throttle
        ("InternalServerException", "boom", 500),
        ("ServiceUnavailable", "later", 503),
    ],
)
def test_transient_errors_do_not_abandon_a_running_statement(
    stubbed: Stubbed, clock: Any, code: str, message: str, status: int
) -> None:
    client, stub = stubbed
    stub.add_response("describe_statement", desc("STARTED"))
    for _ in range(3):
        stub.add_client_error("describe_statement", code, message, http_status_code=status)
    stub.add_response("describe_statement", desc("FINISHED"))
    clock.call_durations = [30.0]
    assert run(client, clock)["Status"] == "FINISHED"
    assert len(clock.sleeps) == 3


def test_error_budget_exhausted_raises_status_unknown(stubbed: Stubbed, clock: Any) -> None:
    client, stub = stubbed
    for _ in range(3):
        stub.add_client_error("describe_statement", "ThrottlingException", "Rate exceeded")
    with pytest.raises(
        StatementStatusUnknownError, match="after 3 transient errors in a row"
    ) as info:
        run(client, clock, WaitPolicy(transient_error_budget=2))
    assert info.value.statement_id == SID


def test_permanent_describe_error_is_not_retried(stubbed: Stubbed, clock: Any) -> None:
    client, stub = stubbed
    stub.add_client_error("describe_statement", "ResourceNotFoundException", "no such statement")
    with pytest.raises(Exception, match="no such statement"):
        run(client, clock)


def test_failed_carries_message_ids_and_sql(stubbed: Stubbed, clock: Any) -> None:
    client, stub = stubbed
    stub.add_response(
        "describe_statement",
        desc(
            "FAILED",
            Error='ERROR: relation "x" does not exist',
            RedshiftQueryId=42,
            QueryString="call s.p()",
        ),
    )
    with pytest.raises(StatementFailedError) as info:
        run(client, clock, sql="CALL s.p(:p1)\n  -- long comment " + "x" * 500)
    err = info.value
    assert err.error == 'ERROR: relation "x" does not exist'
    assert (err.statement_id, err.query_id) == (SID, 42)
    assert err.sql.startswith("CALL s.p(:p1) -- long comment") and err.sql.endswith("...")
    assert len(err.sql) == 300
    assert (
        'relation "x" does not exist' in str(err) and SID in str(err) and "query_id=42" in str(err)
    )


def test_failed_batch_points_at_the_failing_sub_statement(stubbed: Stubbed, clock: Any) -> None:
    client, stub = stubbed
    subs = [
        {"Id": f"{SID}:1", "Status": "FINISHED", "RedshiftQueryId": 5, "QueryString": "select 1"},
        {"Id": f"{SID}:2", "Status": "FAILED", "RedshiftQueryId": 6, "QueryString": "select 1/0"},
    ]
    stub.add_response(
        "describe_statement", desc("FAILED", Error="division by zero", SubStatements=subs)
    )
    with pytest.raises(StatementFailedError) as info:
        run(client, clock)
    assert (info.value.query_id, info.value.sql) == (6, "select 1/0")


def test_aborted_is_its_own_error_and_does_not_loop(stubbed: Stubbed, clock: Any) -> None:
    client, stub = stubbed
    stub.add_response("describe_statement", desc("ABORTED"))
    with pytest.raises(StatementAbortedError, match="ABORTED"):
        run(client, clock)


def test_timeout_cancels_the_statement(stubbed: Stubbed, clock: Any, calls: list[str]) -> None:
    client, stub = stubbed
    stub.add_response("describe_statement", desc("STARTED"), {"Id": SID, "WaitTimeSeconds": 30})
    stub.add_response("describe_statement", desc("STARTED"), {"Id": SID, "WaitTimeSeconds": 15})
    stub.add_response("cancel_statement", {"Status": True}, {"Id": SID})
    clock.call_durations = [30.0, 15.0]
    with pytest.raises(StatementTimeoutError, match=r"still STARTED after 45\.0 s"):
        wait_or_cancel(
            client, SID, policy=WaitPolicy(timeout_seconds=45), clock=clock, sleep=clock.sleep
        )
    assert calls == ["DescribeStatement", "DescribeStatement", "CancelStatement"]


def test_interrupt_while_waiting_cancels_and_reraises(
    stubbed: Stubbed, clock: Any, calls: list[str]
) -> None:
    client, stub = stubbed
    stub.add_response("describe_statement", desc("STARTED"))
    stub.add_response("cancel_statement", {"Status": True}, {"Id": SID})

    def interrupted(_: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        wait_or_cancel(client, SID, clock=clock, sleep=interrupted)
    assert calls == ["DescribeStatement", "CancelStatement"]


def test_statement_failure_is_not_followed_by_a_cancel(
    stubbed: Stubbed, clock: Any, calls: list[str]
) -> None:
    client, stub = stubbed
    stub.add_response("describe_statement", desc("FAILED", Error="bad"))
    with pytest.raises(StatementFailedError):
        wait_or_cancel(client, SID, clock=clock, sleep=clock.sleep)
    assert calls == ["DescribeStatement"]


def test_losing_track_is_not_followed_by_a_cancel(
    stubbed: Stubbed, clock: Any, calls: list[str]
) -> None:
    """The statement is probably fine; the next attempt reattaches to it."""
    client, stub = stubbed
    stub.add_client_error("describe_statement", "ThrottlingException", "Rate exceeded")
    with pytest.raises(StatementStatusUnknownError):
        wait_or_cancel(
            client,
            SID,
            policy=WaitPolicy(transient_error_budget=0),
            clock=clock,
            sleep=clock.sleep,
        )
    assert calls == ["DescribeStatement"]


class BrokenLink:
    """A client whose DescribeStatement never gets an answer (``error`` every time), and
    which records any CancelStatement: what botocore raises past its own retries."""

    def __init__(self, error: Exception) -> None:
        self.error, self.cancelled = error, 0

    def describe_statement(self, **_: Any) -> Any:
        raise self.error

    def cancel_statement(self, **_: Any) -> dict[str, bool]:
        self.cancelled += 1
        return {"Status": True}


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (SSLError(endpoint_url="https://x", error="EOF in violation of protocol"), "unknown"),
        (ProxyConnectionError(proxy_url="http://proxy", error="refused"), "unknown"),
        (CredentialRetrievalError(provider="container-role", error_msg="timed out"), "job"),
    ],
    ids=["ssl", "proxy", "credentials"],
)
def test_no_answer_about_the_statement_is_not_followed_by_a_cancel(
    clock: Any, error: Exception, raised: str
) -> None:
    """A poll that gets no answer (TLS, a proxy, credentials that could not be fetched)
    says nothing about the statement: it is not cancelled, and the next run reattaches."""
    client = BrokenLink(error)
    expected = StatementStatusUnknownError if raised == "unknown" else JobError
    with pytest.raises(expected) as caught:
        wait_or_cancel(
            client,  # type: ignore[arg-type]
            SID,
            policy=WaitPolicy(transient_error_budget=1),
            clock=clock,
            sleep=clock.sleep,
        )
    assert caught.value.__cause__ is error
    assert client.cancelled == 0


def test_the_error_budget_counts_errors_in_a_row_only(stubbed: Stubbed, clock: Any) -> None:
    """Errors and successes alternating, more errors in all than the budget: still waits."""
    client, stub = stubbed
    for _ in range(3):
        stub.add_response("describe_statement", desc("STARTED"))
        for _ in range(2):
            stub.add_client_error("describe_statement", "ThrottlingException", "Rate exceeded")
    stub.add_response("describe_statement", desc("FINISHED"))
    clock.call_durations = [30.0] * 10
    assert run(client, clock, WaitPolicy(transient_error_budget=2))["Status"] == "FINISHED"


def test_a_full_long_poll_resets_the_backoff(stubbed: Stubbed, clock: Any) -> None:
    """Early answers back off (0.5, 1.0); a full long poll in between starts over at 0.5."""
    client, stub = stubbed
    for _ in range(4):
        stub.add_response("describe_statement", desc("STARTED"))
    stub.add_response("describe_statement", desc("FINISHED"))
    clock.call_durations = [0.0, 0.0, 30.0, 0.0, 0.0]
    run(client, clock, WaitPolicy(initial_interval=0.5, max_interval=4.0, jitter=0.0))
    assert clock.sleeps == [0.5, 1.0, 0.5]


def test_last_second_before_the_deadline_is_not_overshot(
    stubbed: Stubbed, clock: Any, calls: list[str]
) -> None:
    client, stub = stubbed
    stub.add_response("describe_statement", desc("STARTED"), {"Id": SID, "WaitTimeSeconds": 2})
    stub.add_response("describe_statement", desc("STARTED"), {"Id": SID})
    stub.add_response("cancel_statement", {"Status": True}, {"Id": SID})
    clock.call_durations = [2.0, 0.0]
    with pytest.raises(StatementTimeoutError):
        wait_or_cancel(
            client,
            SID,
            policy=WaitPolicy(timeout_seconds=2.5, initial_interval=1.0),
            clock=clock,
            sleep=clock.sleep,
            unit_random=lambda: 0.5,
        )
    assert clock.sleeps == [0.5]  # the remaining half second, not a 1 s long poll
    assert calls[-1] == "CancelStatement"
