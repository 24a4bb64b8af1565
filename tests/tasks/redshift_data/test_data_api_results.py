from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from botocore.stub import Stubber
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from tasks.redshift_data.errors import ResultTooLargeError
from tasks.redshift_data.results import convert_field, get_rows

Stubbed = tuple[RedshiftDataAPIServiceClient, Stubber]
SID = "d9b6c0c9-0747-4bf4-b142-e8883122f766"
COLUMNS = [
    {"name": "id", "typeName": "int8"},
    {"name": "price", "typeName": "numeric"},
    {"name": "day", "typeName": "date"},
]


@pytest.mark.parametrize(
    ("field", "type_name", "expected"),
    [
        ({"isNull": True}, "int4", None),
        ({"longValue": 7}, "int4", 7),
        ({"booleanValue": False}, "bool", False),
        ({"doubleValue": 1.5}, "float8", 1.5),
        ({"stringValue": "12.30"}, "numeric", Decimal("12.30")),
        ({"stringValue": "2024-02-29"}, "date", dt.date(2024, 2, 29)),
        (
            {"stringValue": "2024-02-29 13:14:15.5"},
            "timestamp",
            dt.datetime(2024, 2, 29, 13, 14, 15, 500000),
        ),
        (
            {"stringValue": "2024-02-29 13:14:15+00"},
            "timestamptz",
            dt.datetime(2024, 2, 29, 13, 14, 15, tzinfo=dt.UTC),
        ),
        ({"stringValue": "13:14:15"}, "time", dt.time(13, 14, 15)),
        ({"stringValue": "it's"}, "varchar", "it's"),
        ({"stringValue": "not a date"}, "date", "not a date"),
    ],
)
def test_convert_field(field: dict[str, Any], type_name: str, expected: Any) -> None:
    assert convert_field(field, {"typeName": type_name}) == expected


def page(ids: list[int], token: str | None, total: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Records": [[{"longValue": i}, {"stringValue": f"{i}.50"}, {"isNull": True}] for i in ids],
        "ColumnMetadata": COLUMNS,
        "TotalNumRows": total,
    }
    if token:
        out["NextToken"] = token
    return out


def test_every_page_is_fetched(stubbed: Stubbed) -> None:
    client, stub = stubbed
    stub.add_response("get_statement_result", page([1, 2], "t1", 5), {"Id": SID})
    stub.add_response("get_statement_result", page([3, 4], "t2", 5), {"Id": SID, "NextToken": "t1"})
    stub.add_response("get_statement_result", page([5], None, 5), {"Id": SID, "NextToken": "t2"})
    rows = get_rows(client, SID)
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0] == {"id": 1, "price": Decimal("1.50"), "day": None}


def test_size_guard_fails_on_the_first_page(stubbed: Stubbed) -> None:
    client, stub = stubbed
    stub.add_response("get_statement_result", page([1, 2], "t1", 1_000_000), {"Id": SID})
    with pytest.raises(ResultTooLargeError, match="1000000 rows, more than max_rows=10"):
        get_rows(client, SID, max_rows=10)
