"""The ETL role of sql/ (V012) lets a Data API user run the night without owning anything,
and the local Data API enforces it by running as the DbUser."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from flows.pipeline import QUALITY_CHECKS
from tasks.redshift_data import RedshiftTarget, StatementFailedError
from tasks.redshift_data.results import get_rows
from tasks.redshift_data.submit import execute_and_wait
from tests.sql.staging import START, Warehouse


@pytest.fixture
def users(pg_conn: psycopg.Connection[Any]) -> Iterator[tuple[str, str]]:
    """An ETL user granted mystore_etl, and a user with no grant (roles are cluster-wide)."""
    etl, stranger = (f"{kind}_{uuid.uuid4().hex[:8]}" for kind in ("etl", "stranger"))
    pg_conn.execute(f"create role {etl} login")
    pg_conn.execute(f"create role {stranger} login")
    pg_conn.execute(f"grant mystore_etl to {etl}")
    yield etl, stranger
    for user in (etl, stranger):
        pg_conn.execute(f"drop owned by {user}")
        pg_conn.execute(f"drop role {user}")


def as_user(user: str) -> RedshiftTarget:
    return RedshiftTarget(database="dev", cluster_identifier="local", db_user=user)


def test_an_etl_user_without_ownership_runs_the_night_and_its_checks(
    wh: Warehouse, users: tuple[str, str]
) -> None:
    etl, _ = users
    wh.customers({"customer_id": "C1"})
    wh.addresses({"address_id": "A1"})
    wh.sales({"ticket_id": 1, "at": START})
    owners = {
        r[0] for r in wh.rows("select tableowner from pg_tables where schemaname = 'dw_mystore'")
    }
    assert etl not in owners

    execute_and_wait(wh.client, as_user(etl), "call stg_mystore.sp_run_incremental_load()")

    assert wh.facts() == {(1, 1): wh.dim("C1")[0]["customer_key"]}
    for check in QUALITY_CHECKS:
        result = execute_and_wait(wh.client, as_user(etl), check.sql)
        assert get_rows(wh.client, result.statement_id) == [], check.name


def test_the_etl_user_cannot_change_tables_directly(wh: Warehouse, users: tuple[str, str]) -> None:
    etl, _ = users
    with pytest.raises(StatementFailedError, match="permission denied for table sale_fact"):
        execute_and_wait(wh.client, as_user(etl), "delete from dw_mystore.sale_fact")
    # The inner procedures run with the caller's rights: without the entry procedure's
    # SECURITY DEFINER they reach no table.
    with pytest.raises(StatementFailedError, match="permission denied for view v_store_customer"):
        execute_and_wait(wh.client, as_user(etl), "call stg_mystore.sp_load_customer_dim()")


def test_a_user_without_the_grant_cannot_run_the_night(
    wh: Warehouse, users: tuple[str, str]
) -> None:
    _, stranger = users
    with pytest.raises(StatementFailedError, match="permission denied for"):
        execute_and_wait(wh.client, as_user(stranger), "call stg_mystore.sp_run_incremental_load()")
