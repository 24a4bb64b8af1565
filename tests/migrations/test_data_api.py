"""The Data API calls of a migration run, against the local endpoint (and one Stubber seam)."""

from __future__ import annotations

import pickle
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from local.stack import LocalStack
from migrations.data_api import StatementFailedError, WarehouseTarget, execute, fetch_rows, wait

TARGET = WarehouseTarget(database="dev", cluster_identifier="local", db_user="awsuser")


def test_request_fields_name_only_what_is_set() -> None:
    assert WarehouseTarget(database="dev", workgroup_name="wg").request_fields() == {
        "Database": "dev",
        "WorkgroupName": "wg",
    }
    assert TARGET.request_fields() == {
        "Database": "dev",
        "ClusterIdentifier": "local",
        "DbUser": "awsuser",
    }


def test_rows_come_back_typed_with_parameters_bound(
    local_stack: LocalStack, redshift_data: RedshiftDataAPIServiceClient
) -> None:
    statement_id = execute(
        redshift_data,
        TARGET,
        "select cast(:n as integer) as n, :s as s, cast(:b as boolean) as b, null as nothing",
        {"n": 7, "s": "it's", "b": True},
        name="mystore-migrate-test",
    )
    assert fetch_rows(redshift_data, statement_id) == [
        {"n": 7, "s": "it's", "b": True, "nothing": None}
    ]


def test_a_failed_statement_carries_the_database_message_and_pickles(
    local_stack: LocalStack, redshift_data: RedshiftDataAPIServiceClient
) -> None:
    with pytest.raises(StatementFailedError, match="missing_table") as failed:
        execute(redshift_data, TARGET, "select * from missing_table", name="mystore-migrate-test")
    assert failed.value.statement_id is not None
    assert failed.value.statement_id in str(failed.value)
    copy = pickle.loads(pickle.dumps(failed.value))
    assert (str(copy), copy.statement_id) == (str(failed.value), failed.value.statement_id)


def test_a_batch_is_one_transaction(
    local_stack: LocalStack, redshift_data: RedshiftDataAPIServiceClient, pg_conn: Any
) -> None:
    pg_conn.execute("drop table if exists public.mig_batch_probe")
    with pytest.raises(StatementFailedError):
        execute(
            redshift_data,
            TARGET,
            ["create table public.mig_batch_probe (a int)", "select 1/0"],
            name="mystore-migrate-test",
        )
    assert pg_conn.execute("select to_regclass('public.mig_batch_probe')").fetchone() == (None,)


def test_waiting_falls_back_to_short_polls_where_long_polls_are_refused() -> None:
    client = boto3.client(
        "redshift-data",
        region_name="us-east-1",
        aws_access_key_id="AKIDSTUB",
        aws_secret_access_key="stub",  # never sent: the Stubber answers
    )
    with Stubber(client) as stub:
        stub.add_client_error(
            "describe_statement",
            "ValidationException",
            "Unknown parameter in input: WaitTimeSeconds",
            expected_params={"Id": "s-1", "WaitTimeSeconds": 20},
        )
        stub.add_response("describe_statement", {"Id": "s-1", "Status": "STARTED"}, {"Id": "s-1"})
        stub.add_response("describe_statement", {"Id": "s-1", "Status": "FINISHED"}, {"Id": "s-1"})
        assert wait(client, "s-1")["Status"] == "FINISHED"
        stub.assert_no_pending_responses()
