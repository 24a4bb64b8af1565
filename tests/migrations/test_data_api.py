"""The Data API calls of a migration run, against the local endpoint."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from local.stack import LocalStack
from migrations.data_api import execute, fetch_rows
from tasks.redshift_data import RedshiftTarget, StatementFailedError

TARGET = RedshiftTarget(database="dev", cluster_identifier="local", db_user="awsuser")


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
