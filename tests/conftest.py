"""Project-wide fixtures: one local stack (embedded PostgreSQL + AWS endpoint) per session.

Fixture names are a contract other test packages rely on: ``local_stack``,
``redshift_data`` and ``pg_conn``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import psycopg
import pytest
from botocore.config import Config
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from local.stack import LOCAL_REGION, LocalStack

TEST_ACCESS_KEY = "AKIDLOCALTEST"
TEST_SECRET_KEY = "local-test-secret"  # the local endpoint ignores secrets


def data_api_client(
    endpoint_url: str, access_key: str = TEST_ACCESS_KEY, *, max_attempts: int = 3
) -> RedshiftDataAPIServiceClient:
    """A real boto3 Data API client for the local endpoint, signing as ``access_key``.

    ``max_attempts`` counts every attempt (botocore's ``total_max_attempts``): 1 = no retry.
    """
    return boto3.client(
        "redshift-data",
        endpoint_url=endpoint_url,
        region_name=LOCAL_REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=TEST_SECRET_KEY,
        config=Config(
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            read_timeout=60,
            connect_timeout=5,
        ),
    )


@contextmanager
def throwaway_data_dir(prefix: str) -> Iterator[Path]:
    """A data dir outside pytest's tmp tree, removed afterwards.

    pytest resets ``/tmp/pytest-of-<user>`` to mode 0700 whenever a session starts, which
    locks the ``pgserver`` OS user (PostgreSQL runs as it under root) out of a data dir
    there while another pytest session runs.
    """
    path = Path(tempfile.mkdtemp(prefix=f"mystore-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fresh_data_dir() -> Iterator[Path]:
    """An empty data dir for a test that starts its own warehouse."""
    with throwaway_data_dir("test") as path:
        yield path


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    """The session's local stack on a throw-away data dir (PostgreSQL stops at the end)."""
    with throwaway_data_dir("stack") as data_dir:
        stack = LocalStack.start(data_dir)
        try:
            yield stack
        finally:
            stack.stop()


@pytest.fixture(scope="session")
def redshift_data(local_stack: LocalStack) -> RedshiftDataAPIServiceClient:
    """A boto3 ``redshift-data`` client pointed at the local endpoint (identity AKIDLOCALTEST)."""
    return data_api_client(local_stack.endpoint_url)


@pytest.fixture
def pg_conn(local_stack: LocalStack) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection to the warehouse database ``dev``."""
    with psycopg.connect(local_stack.pg_dsn, autocommit=True) as conn:
        yield conn
