from __future__ import annotations

from botocore.exceptions import ClientError

from tasks.redshift_data.status import is_capacity_error, parse_description, terminal_error


def client_error(code: str, message: str = "", status: int = 400) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "DescribeStatement",
    )


def test_capacity() -> None:
    assert is_capacity_error(client_error("ActiveStatementsExceededException"))
    assert not is_capacity_error(client_error("ThrottlingException"))


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


def test_a_failed_batch_names_the_failing_sub_statement() -> None:
    error = terminal_error(
        {
            "Id": "b",
            "Status": "FAILED",
            "Error": "division by zero",
            "RedshiftQueryId": 7,
            "SubStatements": [
                {"Id": "b:1", "Status": "FINISHED", "RedshiftQueryId": 8},
                {
                    "Id": "b:2",
                    "Status": "FAILED",
                    "RedshiftQueryId": 9,
                    "QueryString": "select 1/0",
                },
            ],
        }
    )
    assert error is not None and (error.query_id, error.sql, error.error) == (
        9,
        "select 1/0",
        "division by zero",
    )
    assert terminal_error({"Id": "x", "Status": "STARTED"}) is None
