from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from tasks.redshift_data import RedshiftDataError
from tasks.redshift_data.status import (
    is_capacity_error,
    is_transient,
    outcome_of,
    parse_description,
)


def client_error(code: str, message: str = "", status: int = 400) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "DescribeStatement",
    )


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (client_error("ThrottlingException", "Rate exceeded"), True),
        (client_error("ValidationException", "Rate exceeded"), True),
        (client_error("ValidationException", "Request throttled, try again"), True),
        (client_error("ValidationException", "Id must be a UUID"), False),
        (client_error("InternalServerException", "oops", 500), True),
        (client_error("SomethingNew", "bad gateway", 502), True),
        (client_error("ResourceNotFoundException", "gone"), False),
        (client_error("ActiveStatementsExceededException", "limit"), False),
        (ConnectionClosedError(endpoint_url="http://x"), True),
        (ReadTimeoutError(endpoint_url="http://x"), True),
        (ValueError("x"), False),
    ],
)
def test_is_transient(exc: Exception, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_capacity() -> None:
    assert is_capacity_error(client_error("ActiveStatementsExceededException"))
    assert not is_capacity_error(client_error("ThrottlingException"))


def test_every_status_has_one_outcome() -> None:
    assert [
        outcome_of(s) for s in ("SUBMITTED", "PICKED", "STARTED", "FINISHED", "FAILED", "ABORTED")
    ] == ["running", "running", "running", "finished", "failed", "aborted"]
    with pytest.raises(RedshiftDataError, match="unknown statement status 'PAUSED'"):
        outcome_of("PAUSED")


def test_parse_description_units_and_unknowns() -> None:
    result = parse_description(
        {
            "Id": "x",
            "Status": "FINISHED",
            "Duration": -1,
            "ResultRows": -1,
            "RedshiftQueryId": 0,
            "HasResultSet": True,
        },
        "name",
    )
    assert (result.duration_seconds, result.rows_affected, result.query_id) == (None, None, None)
    assert result.has_result_set and result.statement_name == "name"
