"""The statement store is migrated from an older layout, or refused with a message: its
records are never dropped (they keep a rerun of a finished night from running its CALL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from local.redshift_data.schema import SCHEMA_VERSION, StoreSchemaError, ensure_schema
from local.redshift_data.store import StatementStore
from local.stack import LocalStack
from local.warehouse.postgres import with_database

V3_LAYOUT = (Path(__file__).parent / "fixtures" / "store_v3.sql").read_text()
RECORD = """insert into local_data_api.statements (id, identity, owner_pid, owner_started, status, database)
            values ('kept-1', 'AKID', 1, 1.0, 'FINISHED', 'dev')"""


@pytest.fixture
def scratch_dsn(local_stack: LocalStack) -> Iterator[str]:
    """A database of its own, so the session's store is not touched."""
    name = f"store_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(local_stack.pg_dsn, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    try:
        yield with_database(local_stack.pg_dsn, name)
    finally:
        with psycopg.connect(local_stack.pg_dsn, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


def layout(dsn: str, version: int | None) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(V3_LAYOUT)
        if version is not None:
            conn.execute("insert into local_data_api.schema_version values (%s)", [version])
        else:
            conn.execute("drop table local_data_api.schema_version")
        conn.execute(RECORD)


def kept(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("select id, status from local_data_api.statements").fetchall()


def test_an_older_layout_is_migrated_with_its_records(scratch_dsn: str) -> None:
    layout(scratch_dsn, 3)
    assert ensure_schema(scratch_dsn) == [3, 4]
    assert kept(scratch_dsn) == [("kept-1", "FINISHED")]
    store = StatementStore(scratch_dsn)  # opens on the migrated layout
    try:
        store.record_incident("test", "the new table exists")
        assert [row["kind"] for row in store.incidents()] == ["test"]
        assert store.get("kept-1") is not None
        assert store.get("kept-1")["picked_by"] is None  # version 5's column
    finally:
        store.close()
    with psycopg.connect(scratch_dsn) as conn:
        assert conn.execute("select version from local_data_api.schema_version").fetchall() == [
            (SCHEMA_VERSION,)
        ]
    assert ensure_schema(scratch_dsn) == []  # current: nothing to do


@pytest.mark.parametrize("version", [SCHEMA_VERSION + 1, 1, None])
def test_a_layout_it_cannot_migrate_is_refused_and_left_untouched(
    scratch_dsn: str, version: int | None
) -> None:
    layout(scratch_dsn, version)
    with pytest.raises(StoreSchemaError) as exc:
        StatementStore(scratch_dsn)
    message = str(exc.value)
    assert f"version {SCHEMA_VERSION}" in message
    assert "left untouched" in message
    assert "drop schema local_data_api cascade" in message
    assert kept(scratch_dsn) == [("kept-1", "FINISHED")]


def test_a_new_database_gets_the_current_layout(scratch_dsn: str) -> None:
    assert ensure_schema(scratch_dsn) == []
    with psycopg.connect(scratch_dsn) as conn:
        assert conn.execute("select version from local_data_api.schema_version").fetchall() == [
            (SCHEMA_VERSION,)
        ]
