"""The Data API's HTTP mapping: one method per operation, from a request to its response.

Every request reaching a method has passed botocore's input shape (``ModeledService``);
requests.py adds the service's own rules, models.py does the work, and the functions here
shape stored statement rows into the members botocore's output shapes name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from local.core import Call, ModeledService
from local.redshift_data.exceptions import warehouse_unreachable
from local.redshift_data.models import RedshiftDataBackend
from local.redshift_data.requests import make_next_token, parse_list, parse_next_token, parse_submit
from local.redshift_data.schema import WarehouseDownError


def epoch(value: datetime | None) -> float | None:
    """Timestamps in the JSON protocol travel as epoch seconds."""
    return None if value is None else value.timestamp()


# Optional members and the statement columns they come from.
_TARGET = {
    "ClusterIdentifier": "cluster_identifier",
    "WorkgroupName": "workgroup_name",
    "DbUser": "db_user",
    "SecretArn": "secret_arn",
}
_DESCRIBED = {"Error": "error", **_TARGET, "QueryParameters": "parameters"}
_LISTED = {
    "StatementName": "statement_name",
    "SecretArn": "secret_arn",
    "QueryParameters": "parameters",
}


def _present(row: Mapping[str, Any], members: Mapping[str, str]) -> dict[str, Any]:
    """Optional members: the model has no nulls, so an unset column leaves its member out."""
    return {key: row[column] for key, column in members.items() if row[column] is not None}


def _progress(row: Mapping[str, Any]) -> dict[str, Any]:
    """Members a statement and a sub-statement share."""
    return {
        "Id": row["id"],
        "Status": row["status"],
        "CreatedAt": epoch(row["created_at"]),
        "UpdatedAt": epoch(row["updated_at"]),
        "Duration": row["duration_ns"] if row["duration_ns"] is not None else -1,
        "HasResultSet": bool(row["has_result_set"]),
        "ResultRows": row["result_rows"],
        "ResultSize": row["result_size"],
        "RedshiftQueryId": row["redshift_query_id"] or 0,
    }


def describe_shape(row: Mapping[str, Any], subs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A DescribeStatement response from a stored statement row (and its sub-statements)."""
    shape = {
        **_progress(row),
        "RedshiftPid": row["redshift_pid"] or 0,
        "Database": row["database"],
        "ResultFormat": "JSON",
    }
    if row["is_batch"]:
        shape["ExecutionMode"] = row["execution_mode"]
        shape["SubStatements"] = [sub_statement_shape(sub) for sub in subs]
    else:
        shape["QueryString"] = row["query_string"]
    return {**shape, **_present(row, _DESCRIBED)}


def sub_statement_shape(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **_progress(row),
        "QueryString": row["query_string"],
        **_present(row, {"Error": "error"}),
    }


def list_item_shape(row: Mapping[str, Any]) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "Id": row["id"],
        "Status": row["status"],
        "CreatedAt": epoch(row["created_at"]),
        "UpdatedAt": epoch(row["updated_at"]),
        "IsBatchStatement": bool(row["is_batch"]),
        "ResultFormat": "JSON",
    }
    if row["is_batch"]:
        shape["QueryStrings"] = row["query_strings"]
    else:
        shape["QueryString"] = row["query_string"]
    return {**shape, **_present(row, _LISTED)}


def submit_shape(row: Mapping[str, Any], waited: bool) -> dict[str, Any]:
    """ExecuteStatement / BatchExecuteStatement: the statement, and its status if waited on."""
    shape: dict[str, Any] = {
        "Id": row["id"],
        "CreatedAt": epoch(row["created_at"]),
        "Database": row["database"],
    }
    shape.update(_present(row, _TARGET))
    if waited:
        shape["Status"] = row["status"]
        shape["HasResultSet"] = bool(row["has_result_set"])
        if row["redshift_pid"]:
            shape["RedshiftPid"] = row["redshift_pid"]
    return shape


class RedshiftDataService(ModeledService):
    """``RedshiftData.*`` over a RedshiftDataBackend."""

    service_name = "redshift-data"

    def __init__(self, backend: RedshiftDataBackend) -> None:
        super().__init__()
        self.backend = backend

    def handle(self, call: Call) -> Mapping[str, Any]:
        try:
            return super().handle(call)
        except WarehouseDownError as exc:
            raise warehouse_unreachable(str(exc)) from exc

    def execute_statement(self, call: Call) -> Mapping[str, Any]:
        request = parse_submit(call.operation, call.body)
        row = self.backend.submit(call.operation, request, call.identity)
        return submit_shape(row, waited=bool(request.wait_time_seconds))

    batch_execute_statement = execute_statement

    def describe_statement(self, call: Call) -> Mapping[str, Any]:
        row = self.backend.owned(call.body["Id"], call.identity, call.body.get("WaitTimeSeconds"))
        return describe_shape(row, self.backend.sub_statements(row))

    def get_statement_result(self, call: Call) -> Mapping[str, Any]:
        page_no = parse_next_token(call.body)
        row = self.backend.owned(call.body["Id"], call.identity, call.body.get("WaitTimeSeconds"))
        records = self.backend.result_page(row, page_no)
        response: dict[str, Any] = {
            "Records": json.loads(records),
            "ColumnMetadata": row["column_metadata"] or [],
            "TotalNumRows": row["result_rows"],
        }
        if page_no + 1 < row["page_count"]:
            response["NextToken"] = make_next_token(page_no + 1)
        return response

    def cancel_statement(self, call: Call) -> Mapping[str, Any]:
        self.backend.cancel(call.body["Id"], call.identity)
        return {"Status": True}

    def list_statements(self, call: Call) -> Mapping[str, Any]:
        request = parse_list(call.body)
        rows, more = self.backend.list(call.identity, request)
        response: dict[str, Any] = {"Statements": [list_item_shape(row) for row in rows]}
        if more:
            response["NextToken"] = make_next_token(request.offset + request.max_results)
        return response
