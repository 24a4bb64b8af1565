"""The warehouse for procedure tests: migrated once per session, data reset per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from local.stack import LocalStack
from tests.sql.staging import RESET, Warehouse


@pytest.fixture
def wh(
    migrated: LocalStack,
    redshift_data: RedshiftDataAPIServiceClient,
    pg_conn: psycopg.Connection[Any],
) -> Iterator[Warehouse]:
    """An empty warehouse (dimensions' fixed rows kept) with high-water marks reset."""
    pg_conn.execute(RESET)
    yield Warehouse(redshift_data, pg_conn)
