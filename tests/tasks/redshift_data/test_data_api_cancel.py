"""Cancelling: by id (outcomes returned, never raised) and by name (one night's running
statements, nothing else). Calls are asserted from the client's own event log, because
``cancel_statement`` swallows the error a missing Stubber response would raise."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from tasks.redshift_data.cancel import cancel_statement, cancel_statements_named

Stubbed = tuple[RedshiftDataAPIServiceClient, Stubber]
SID = "d9b6c0c9-0747-4bf4-b142-e8883122f766"
PREFIX = "nightly/2026-11-25/"


def _listed(*statements: tuple[str, str, str]) -> dict[str, object]:
    return {
        "Statements": [
            {"Id": sid, "StatementName": name, "Status": status, "QueryString": "select 1"}
            for sid, name, status in statements
        ]
    }


def test_cancel_by_name_cancels_only_this_nights_running_statements(
    stubbed: Stubbed, calls: list[str]
) -> None:
    client, stub = stubbed
    stub.add_response(
        "list_statements",
        _listed(
            ("run-1", f"{PREFIX}load/attempt-1", "STARTED"),
            ("done-1", f"{PREFIX}check/attempt-1", "FINISHED"),
            ("other-1", "nightly/2026-11-25x/load/attempt-1", "STARTED"),  # not this prefix
        ),
        {"StatementName": PREFIX, "Status": "ALL"},
    )
    stub.add_response("cancel_statement", {"Status": True}, {"Id": "run-1"})
    assert cancel_statements_named(client, PREFIX, reason="test") == {"run-1": "cancelled"}
    assert calls == ["ListStatements", "CancelStatement"]


def test_a_night_with_nothing_running_cancels_nothing(stubbed: Stubbed, calls: list[str]) -> None:
    client, stub = stubbed
    stub.add_response("list_statements", _listed(("done-1", f"{PREFIX}load/attempt-1", "FINISHED")))
    assert cancel_statements_named(client, PREFIX) == {}
    assert calls == ["ListStatements"]


def test_cancel_by_name_never_raises(stubbed: Stubbed) -> None:
    client, stub = stubbed
    stub.add_client_error("list_statements", "InternalServerException", "oops", 500)
    assert cancel_statements_named(client, PREFIX) == {}


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
