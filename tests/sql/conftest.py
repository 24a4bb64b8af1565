"""The warehouse for procedure tests: migrated once per session, data reset per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from flows.migrate import LOCAL_PARAMETERS, migrate
from local.stack import LocalStack
from tests.sql.staging import RESET, TARGET, Warehouse


@pytest.fixture(scope="session")
def migrated(local_stack: LocalStack, redshift_data: RedshiftDataAPIServiceClient) -> LocalStack:
    """sql/ applied once per session, through the migration runner (idempotent)."""
    migrate(redshift_data, TARGET, parameters=LOCAL_PARAMETERS, log=lambda _: None)
    return local_stack


@pytest.fixture
def wh(
    migrated: LocalStack,
    redshift_data: RedshiftDataAPIServiceClient,
    pg_conn: psycopg.Connection[Any],
) -> Iterator[Warehouse]:
    """An empty warehouse (dimensions' fixed rows kept) with high-water marks reset."""
    pg_conn.execute(RESET)
    yield Warehouse(redshift_data, pg_conn)
