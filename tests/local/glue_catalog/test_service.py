"""The local Glue Data Catalog through real boto3 clients on a real local endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local.endpoint import AwsEndpoint
from local.glue_catalog import attach_glue_catalog, catalog_path
from local.glue_catalog.requests import parse_expression
from local.glue_catalog.store import CatalogStore

COLUMNS = [{"Name": "sale_id", "Type": "bigint"}, {"Name": "amount", "Type": "decimal(7,2)"}]


@pytest.fixture
def glue(tmp_path: Path) -> Iterator[Any]:
    endpoint = AwsEndpoint()
    attach_glue_catalog(endpoint, data_dir=tmp_path)
    endpoint.start()
    try:
        yield boto3.client(
            "glue",
            endpoint_url=endpoint.url,
            region_name="us-east-1",
            aws_access_key_id="AKIDLOCAL",
            aws_secret_access_key="local-dummy-secret",
        )
    finally:
        endpoint.stop()


def table_input(name: str = "store_sale", columns: list[dict[str, str]] = COLUMNS) -> Any:
    return {
        "Name": name,
        "PartitionKeys": [{"Name": "sale_date", "Type": "string"}],
        "StorageDescriptor": {"Columns": columns, "Location": f"file:/data/clean/{name}"},
        "Parameters": {"last_commit_time_sync": "20261101"},
    }


def partition(day: str) -> Any:
    return {
        "Values": [day],
        "StorageDescriptor": {"Location": f"file:/data/clean/store_sale/sale_date={day}"},
    }


def test_databases_tables_and_updates_round_trip(glue: Any, tmp_path: Path) -> None:
    glue.create_database(DatabaseInput={"Name": "clean_mystore"})
    with pytest.raises(ClientError) as exists:
        glue.create_database(DatabaseInput={"Name": "clean_mystore"})
    assert exists.value.response["Error"]["Code"] == "AlreadyExistsException"
    glue.create_table(DatabaseName="clean_mystore", TableInput=table_input())
    added = [*COLUMNS, {"Name": "channel", "Type": "string"}]
    glue.update_table(
        DatabaseName="clean_mystore", TableInput=table_input(columns=added), SkipArchive=True
    )
    table = glue.get_table(DatabaseName="clean_mystore", Name="store_sale")["Table"]
    assert table["StorageDescriptor"]["Columns"] == added
    assert (table["VersionId"], table["DatabaseName"]) == ("2", "clean_mystore")
    assert [t["Name"] for t in glue.get_tables(DatabaseName="clean_mystore")["TableList"]] == [
        "store_sale"
    ]
    with pytest.raises(ClientError) as missing:
        glue.get_table(DatabaseName="clean_mystore", Name="store_returns")
    assert missing.value.response["Error"]["Code"] == "EntityNotFoundException"
    # It persists: a new store over the same file sees the table.
    assert CatalogStore(catalog_path(tmp_path)).table("clean_mystore", "store_sale") is not None


def test_partitions_batch_operations_pages_and_segments(glue: Any) -> None:
    glue.create_database(DatabaseInput={"Name": "clean_mystore"})
    glue.create_table(DatabaseName="clean_mystore", TableInput=table_input())
    days = [f"2026-11-{d:02d}" for d in range(1, 31)]
    created = glue.batch_create_partition(
        DatabaseName="clean_mystore",
        TableName="store_sale",
        PartitionInputList=[partition(d) for d in days],
    )
    assert created.get("Errors", []) == []
    again = glue.batch_create_partition(
        DatabaseName="clean_mystore",
        TableName="store_sale",
        PartitionInputList=[partition(days[0])],
    )
    assert [e["ErrorDetail"]["ErrorCode"] for e in again["Errors"]] == ["AlreadyExistsException"]
    paginator = glue.get_paginator("get_partitions")
    pages = list(
        paginator.paginate(
            DatabaseName="clean_mystore", TableName="store_sale", PaginationConfig={"PageSize": 7}
        )
    )
    assert len(pages) == 5
    assert [p["Values"][0] for page in pages for p in page["Partitions"]] == days
    segments = [
        glue.get_partitions(
            DatabaseName="clean_mystore",
            TableName="store_sale",
            Segment={"SegmentNumber": n, "TotalSegments": 3},
        )["Partitions"]
        for n in range(3)
    ]
    assert sorted(p["Values"][0] for s in segments for p in s) == days
    filtered = glue.get_partitions(
        DatabaseName="clean_mystore",
        TableName="store_sale",
        Expression="sale_date = '2026-11-02' OR sale_date = '2026-11-09'",
    )["Partitions"]
    assert [p["Values"] for p in filtered] == [["2026-11-02"], ["2026-11-09"]]
    moved = {"Location": "file:/elsewhere/sale_date=2026-11-01"}
    updated = glue.batch_update_partition(
        DatabaseName="clean_mystore",
        TableName="store_sale",
        Entries=[
            {
                "PartitionValueList": ["2026-11-01"],
                "PartitionInput": {"Values": ["2026-11-01"], "StorageDescriptor": moved},
            }
        ],
    )
    assert updated.get("Errors", []) == []
    got = glue.batch_get_partition(
        DatabaseName="clean_mystore",
        TableName="store_sale",
        PartitionsToGet=[{"Values": ["2026-11-01"]}, {"Values": ["2027-01-01"]}],
    )["Partitions"]
    assert [p["StorageDescriptor"]["Location"] for p in got] == [moved["Location"]]
    deleted = glue.batch_delete_partition(
        DatabaseName="clean_mystore",
        TableName="store_sale",
        PartitionsToDelete=[{"Values": [d]} for d in days[:10]] + [{"Values": ["2027-01-01"]}],
    )
    assert [e["PartitionValues"] for e in deleted["Errors"]] == [["2027-01-01"]]
    remaining = glue.get_partitions(DatabaseName="clean_mystore", TableName="store_sale")
    assert len(remaining["Partitions"]) == 20


def test_job_operations_still_reach_the_job_service_or_are_named(glue: Any) -> None:
    with pytest.raises(ClientError) as info:
        glue.get_job_runs(JobName="raw2clean")
    assert info.value.response["Error"]["Code"] == "UnknownOperationException"
    assert "GetJobRuns is not a catalog operation" in info.value.response["Error"]["Message"]


def test_unsupported_expressions_are_named() -> None:
    assert parse_expression("a = '1' AND b = 2") == [[("a", "1"), ("b", "2")]]
    with pytest.raises(Exception) as info:
        parse_expression("a > '1'")
    assert "Expression term \"a > '1'\" is not supported locally" in str(info.value)
