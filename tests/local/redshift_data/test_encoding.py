"""Value encoding and response shaping, on literal rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from local.redshift_data.encoding import encode_value, paginate
from local.redshift_data.responses import describe_shape, list_item_shape


def test_values_map_to_data_api_fields() -> None:
    assert encode_value(None) == {"isNull": True}
    assert encode_value(True) == {"booleanValue": True}
    assert encode_value(7) == {"longValue": 7}
    assert encode_value(1.5) == {"doubleValue": 1.5}
    assert encode_value("12.50") == {"stringValue": "12.50"}
    assert encode_value(b"\x01\xff") == {"stringValue": "01ff"}


def test_pages_split_by_rows_and_an_empty_result_has_one_empty_page() -> None:
    records = [[{"longValue": n}] for n in range(5)]
    pages = paginate(records, 2)
    assert [len(json.loads(page)) for page in pages] == [2, 2, 1]
    assert paginate([], 2) == ["[]"]


ROW: dict[str, Any] = {
    "id": "d9b6c0c9-0747-4bf4-b142-e8883122f766",
    "status": "FAILED",
    "created_at": datetime(2024, 1, 1, tzinfo=UTC),
    "updated_at": datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC),
    "duration_ns": 5,
    "has_result_set": False,
    "result_rows": -1,
    "result_size": -1,
    "redshift_pid": 123,
    "redshift_query_id": 9,
    "database": "dev",
    "is_batch": False,
    "execution_mode": None,
    "query_string": "select 1/0",
    "query_strings": None,
    "error": "ERROR: division by zero",
    "cluster_identifier": "c",
    "workgroup_name": None,
    "db_user": None,
    "secret_arn": None,
    "parameters": None,
    "statement_name": "nightly",
}


def test_describe_shape_of_a_failed_statement() -> None:
    shape = describe_shape(ROW, [])
    assert shape["Status"] == "FAILED"
    assert shape["Error"] == "ERROR: division by zero"
    assert shape["CreatedAt"] == 1704067200.0
    assert shape["QueryString"] == "select 1/0"
    assert "SubStatements" not in shape
    assert "WorkgroupName" not in shape
    assert shape["RedshiftPid"] == 123


def test_describe_shape_of_a_batch_lists_sub_statements() -> None:
    parent = {**ROW, "is_batch": True, "execution_mode": "TRANSACTION", "query_string": None}
    sub = {**ROW, "id": ROW["id"] + ":1", "error": None, "status": "FINISHED"}
    shape = describe_shape(parent, [sub])
    assert "QueryString" not in shape
    assert shape["ExecutionMode"] == "TRANSACTION"
    assert shape["SubStatements"][0]["Id"].endswith(":1")
    assert "Error" not in shape["SubStatements"][0]


def test_list_item_shape() -> None:
    item = list_item_shape(ROW)
    assert item["StatementName"] == "nightly"
    assert item["IsBatchStatement"] is False
    assert "QueryParameters" not in item
