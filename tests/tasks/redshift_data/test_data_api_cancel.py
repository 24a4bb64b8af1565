from __future__ import annotations

import pytest
from botocore.stub import Stubber
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from tasks.redshift_data import cancel_statement, cancel_statements_on_stop
from tasks.redshift_data.cancel import waiting_on

Stubbed = tuple[RedshiftDataAPIServiceClient, Stubber]
SID = "d9b6c0c9-0747-4bf4-b142-e8883122f766"


class Stop(BaseException):
    """Stands for Prefect's TerminationSignal, which is also a bare BaseException."""


# In the guard's real use, a worker thread is inside ``waiting_on`` while the flow's thread
# unwinds through ``cancel_statements_on_stop``; here the outer ``waiting_on`` plays it.


def test_a_stop_cancels_what_is_being_waited_on(stubbed: Stubbed) -> None:
    client, stub = stubbed
    stub.add_response("cancel_statement", {"Status": True}, {"Id": SID})
    with waiting_on(client, SID), pytest.raises(Stop), cancel_statements_on_stop():
        raise Stop


def test_a_flow_timeout_cancels_too(stubbed: Stubbed) -> None:
    client, stub = stubbed
    stub.add_response("cancel_statement", {"Status": True}, {"Id": SID})
    with waiting_on(client, SID), pytest.raises(TimeoutError), cancel_statements_on_stop():
        raise TimeoutError


def test_an_ordinary_failure_cancels_nothing(stubbed: Stubbed) -> None:
    client, _ = stubbed  # nothing queued: a CancelStatement would fail the test
    with waiting_on(client, SID), pytest.raises(ValueError), cancel_statements_on_stop():
        raise ValueError


def test_finished_waits_are_forgotten(stubbed: Stubbed) -> None:
    client, _ = stubbed
    with waiting_on(client, SID):
        pass
    with pytest.raises(Stop), cancel_statements_on_stop():
        raise Stop


@pytest.mark.parametrize(
    ("code", "message", "outcome"),
    [
        (
            "ValidationException",
            "Could not cancel a query that is already in FINISHED state",
            "already-ended",
        ),
        ("ResourceNotFoundException", "Query does not exist", "already-ended"),
        ("ValidationException", "Rate exceeded", "error"),
        ("InternalServerException", "oops", "error"),
    ],
)
def test_cancel_outcomes_are_returned_not_raised(
    stubbed: Stubbed, code: str, message: str, outcome: str
) -> None:
    client, stub = stubbed
    stub.add_client_error("cancel_statement", code, message)
    assert cancel_statement(client, SID) == outcome


def test_declined_cancel(stubbed: Stubbed) -> None:
    client, stub = stubbed
    stub.add_response("cancel_statement", {"Status": False})
    assert cancel_statement(client, SID) == "not-cancelled"
