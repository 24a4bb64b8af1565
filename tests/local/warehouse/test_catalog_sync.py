"""Local catalog sync: real Spark-written Hudi tables (tests/fixtures/hudi), real Delta
tables written with deltalake, loaded into the session's real warehouse PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from local.glue_catalog.after_run import sync_after_clean_run
from local.warehouse.catalog_sync import (
    CatalogSyncError,
    column_types,
    conform,
    contract_columns,
    detect_format,
    load_snapshot,
    read_snapshot,
    sync_clean_table,
    sync_table,
)

HUDI_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hudi"
FIXTURE_ZIPS = (
    "cow_v6_nonpartitioned.zip",
    "cow_v8_nonpartitioned.zip",
    "cow_v6_partitioned.zip",
    "mor_v6_nonpartitioned.zip",
)
# The fixtures' own columns (they are Hudi's test tables, not the MyStore contract).
FIXTURE_COLUMNS = [
    ("id", "int"),
    ("name", "string"),
    ("isActive", "boolean"),
    ("longField", "bigint"),
    ("doubleField", "double"),
    ("decimalField", "decimal(10,5)"),
    ("dateField", "date"),
    ("timestampField", "timestamp"),
]


@pytest.fixture
def conn(local_stack: Any) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(local_stack.pg_dsn, autocommit=True) as connection:
        connection.execute("CREATE SCHEMA IF NOT EXISTS catalog_sync_test")
        yield connection


def unzip_fixture(name: str, into: Path) -> Path:
    archive = HUDI_FIXTURES / name
    with zipfile.ZipFile(archive) as zipped:
        members = [m for m in zipped.namelist() if not m.startswith("__MACOSX")]
        zipped.extractall(into, members)
    (table,) = {p.parent for p in into.rglob(".hoodie")}
    return table


# -- pure ------------------------------------------------------------------------------


def test_types_map_and_unknown_types_are_named() -> None:
    assert column_types("decimal(7,2)") == ("numeric(7,2)", pa.decimal128(7, 2))
    assert column_types("timestamp") == ("timestamp", pa.timestamp("us"))
    with pytest.raises(
        CatalogSyncError, match=r"unsupported column type 'map'; expected one of: string"
    ):
        column_types("map")


def test_conform_selects_casts_and_makes_timestamps_utc_wall_time() -> None:
    data = pa.table(
        {
            "extra": [1],
            "ts": pa.array(
                [dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)], pa.timestamp("us", tz="UTC")
            ),
            "n": pa.array([7], pa.int64()),
        }
    )
    out = conform(data, [("n", "int"), ("ts", "timestamp")])
    assert out.column_names == ["n", "ts"]
    assert out.schema.field("n").type == pa.int32()
    assert out.column("ts").to_pylist() == [dt.datetime(2026, 1, 1, 12)]
    with pytest.raises(
        CatalogSyncError,
        match=r"column 'missing' is missing from the snapshot \(has: extra, ts, n\)",
    ):
        conform(data, [("missing", "string")])


def test_a_folder_that_is_no_table_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        CatalogSyncError, match=r"is neither a Hudi table \(no .hoodie folder\) nor a Delta"
    ):
        detect_format(tmp_path)
    with pytest.raises(CatalogSyncError, match="has no --clean_path argument"):
        sync_after_clean_run("postgresql://unused", {"--table": "store_sale"})


# -- Hudi: all four real fixtures --------------------------------------------------------


@pytest.mark.parametrize("fixture", FIXTURE_ZIPS)
def test_hudi_fixture_snapshot_is_loaded(
    fixture: str, tmp_path: Path, local_stack: Any, conn: psycopg.Connection[Any]
) -> None:
    path = unzip_fixture(fixture, tmp_path)
    table_format, snapshot = read_snapshot(path)
    assert table_format == "hudi"
    assert not [c for c in snapshot.column_names if c.startswith("_hoodie_")]
    target = fixture.removesuffix(".zip")
    result = sync_table(
        local_stack.pg_dsn, path, target, FIXTURE_COLUMNS, schema="catalog_sync_test"
    )
    assert (result.rows, result.source_format) == (4, "hudi")
    rows = conn.execute(
        f'SELECT id, name, "decimalField", "dateField", "timestampField" FROM catalog_sync_test.{target} ORDER BY id'
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [(1, "Alice"), (2, "Bob"), (3, "Carol"), (4, "Diana")]
    expected = {r["id"]: r for r in snapshot.to_pylist()}
    for id_, _, decimal, date, timestamp in rows:
        assert decimal == expected[id_]["decimalField"]
        assert date == expected[id_]["dateField"]
        assert timestamp == expected[id_]["timestampField"].replace(tzinfo=None)


# -- Delta and the MyStore contract ------------------------------------------------------


def address_rows(n: int, city: str) -> pa.Table:
    columns = contract_columns("store_customer_address")
    values: dict[str, list[Any]] = {
        "address_id": [f"A{i}" for i in range(n)],
        "address_datetime": [dt.datetime(2026, 11, 25, 8, 30, 15, 123456)] * n,
        "street": [""] * n,  # empty string, not NULL
        "city": [city] * n,
        "zip": ["01234"] * n,
        "gmt_offset": [Decimal("-5.50")] * n,
        "address_date": [dt.date(2026, 11, 25)] * n,
    }
    return pa.table(
        {
            name: pa.array(values.get(name, [None] * n), column_types(type_)[1])
            for name, type_ in columns
        }
    )


def test_delta_clean_table_syncs_with_contract_types(
    tmp_path: Path, local_stack: Any, conn: psycopg.Connection[Any]
) -> None:
    table = tmp_path / "store_customer_address"
    write_deltalake(str(table), address_rows(3, "Old"), mode="overwrite")
    write_deltalake(
        str(table), address_rows(2, "New"), mode="overwrite"
    )  # the current version wins
    result = sync_clean_table(
        local_stack.pg_dsn, "store_customer_address", tmp_path, schema="catalog_sync_test"
    )
    assert (result.rows, result.source_format) == (2, "delta")
    rows = conn.execute(
        "SELECT address_id, city, street, county, zip, gmt_offset, address_datetime, address_date"
        " FROM catalog_sync_test.store_customer_address ORDER BY 1"
    ).fetchall()
    assert rows == [
        ("A0", "New", "", None, "01234", Decimal("-5.50"), dt.datetime(2026, 11, 25, 8, 30, 15, 123456), dt.date(2026, 11, 25)),
        ("A1", "New", "", None, "01234", Decimal("-5.50"), dt.datetime(2026, 11, 25, 8, 30, 15, 123456), dt.date(2026, 11, 25)),
    ]  # fmt: skip
    types = dict(
        conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'catalog_sync_test' AND table_name = 'store_customer_address'"
        ).fetchall()
    )
    assert (
        types["gmt_offset"] == "numeric"
        and types["address_datetime"] == "timestamp without time zone"
    )


def test_no_table_yet_creates_an_empty_external_table(
    tmp_path: Path, local_stack: Any, conn: psycopg.Connection[Any]
) -> None:
    conn.execute("DROP TABLE IF EXISTS catalog_sync_test.store_sale")
    result = sync_clean_table(
        local_stack.pg_dsn, "store_sale", tmp_path, schema="catalog_sync_test"
    )
    assert (result.rows, result.source_format) == (0, "none")
    count = conn.execute("SELECT count(*) FROM catalog_sync_test.store_sale").fetchone()
    assert count == (0,)


def test_a_failed_load_leaves_the_previous_snapshot(
    local_stack: Any, conn: psycopg.Connection[Any]
) -> None:
    columns = [("k", "int")]
    with psycopg.connect(local_stack.pg_dsn) as writer:
        load_snapshot(
            writer, "catalog_sync_test", "atomic_fail", columns, pa.table({"k": [1, 2, 3]})
        )
    conn.execute("ALTER TABLE catalog_sync_test.atomic_fail ADD CONSTRAINT k_small CHECK (k < 100)")
    bad = pa.table({"k": [*([1] * 50_000), 100]})  # the last row breaks the CHECK
    with (
        psycopg.connect(local_stack.pg_dsn) as writer,
        pytest.raises(psycopg.errors.CheckViolation),
    ):
        load_snapshot(writer, "catalog_sync_test", "atomic_fail", columns, bad)
    assert conn.execute(
        "SELECT array_agg(k ORDER BY k) FROM catalog_sync_test.atomic_fail"
    ).fetchone() == ([1, 2, 3],)


def test_readers_never_see_a_half_loaded_table(
    local_stack: Any, conn: psycopg.Connection[Any]
) -> None:
    columns = [("k", "int")]
    with psycopg.connect(local_stack.pg_dsn) as writer:
        load_snapshot(
            writer, "catalog_sync_test", "atomic_read", columns, pa.table({"k": list(range(10))})
        )
    big = pa.table({"k": list(range(200_000))})  # several COPY chunks
    seen: set[int] = set()
    done, reading = threading.Event(), threading.Event()

    def read() -> None:
        with psycopg.connect(local_stack.pg_dsn, autocommit=True) as reader:
            while not done.is_set():
                row = reader.execute(
                    "SELECT count(*) FROM catalog_sync_test.atomic_read"
                ).fetchone()
                assert row is not None
                seen.add(row[0])
                reading.set()

    thread = threading.Thread(target=read)
    thread.start()
    assert reading.wait(10)
    try:
        with psycopg.connect(local_stack.pg_dsn) as writer:
            load_snapshot(writer, "catalog_sync_test", "atomic_read", columns, big)
    finally:
        done.set()
        thread.join()
    assert seen <= {10, 200_000} and 10 in seen


# -- from the catalog (the embedded default's path) -------------------------------------


def catalog_with_fixture(tmp_path: Path, columns: list[dict[str, str]]) -> tuple[Any, Path]:
    from local.glue_catalog.service import GlueCatalogService
    from local.glue_catalog.store import CatalogStore

    table_path = unzip_fixture("cow_v6_nonpartitioned.zip", tmp_path / "hudi")
    store = CatalogStore(tmp_path / "catalog.json")
    service = GlueCatalogService(store)
    service.create_database({"DatabaseInput": {"Name": "clean_fixture"}})
    service.create_table(
        {
            "DatabaseName": "clean_fixture",
            "TableInput": {
                "Name": "fixture",
                "StorageDescriptor": {"Columns": columns, "Location": str(table_path)},
            },
        }
    )
    return store, table_path


def test_the_stand_in_follows_the_catalog_and_its_schema_changes(
    local_stack: Any, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    from local.glue_catalog.service import GlueCatalogService
    from local.warehouse.catalog_sync import refresh_from_catalog

    meta = {"Name": "_hoodie_commit_time", "Type": "string"}
    columns = [meta, {"Name": "id", "Type": "int"}, {"Name": "name", "Type": "string"}]
    store, table_path = catalog_with_fixture(tmp_path, columns)
    conn.execute("DROP TABLE IF EXISTS catalog_sync_test.fixture")
    result = refresh_from_catalog(
        local_stack.pg_dsn, store, "clean_fixture", "fixture", schema="catalog_sync_test"
    )
    assert (result.source_format, result.rows) == ("hudi", 4)
    conn.execute(
        "CREATE VIEW catalog_sync_test.v_fixture AS SELECT id FROM catalog_sync_test.fixture"
    )
    # The clean table gains a column; the catalog says so; the external table follows.
    added = [*columns, {"Name": "longField", "Type": "bigint"}]
    GlueCatalogService(store).update_table(
        {
            "DatabaseName": "clean_fixture",
            "TableInput": {
                "Name": "fixture",
                "StorageDescriptor": {"Columns": added, "Location": f"file:{table_path}"},
            },
        }
    )
    refresh_from_catalog(
        local_stack.pg_dsn, store, "clean_fixture", "fixture", schema="catalog_sync_test"
    )
    rows = conn.execute(
        'SELECT id, name, "longField" FROM catalog_sync_test.fixture ORDER BY id'
    ).fetchall()
    assert [r[0] for r in rows] == [1, 2, 3, 4]
    assert all(isinstance(r[2], int) for r in rows)
    names = [
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "'catalog_sync_test' AND table_name = 'fixture' ORDER BY ordinal_position"
        ).fetchall()
    ]
    assert names == ["id", "name", "longField"]
    assert conn.execute("SELECT count(*) FROM catalog_sync_test.v_fixture").fetchone() == (4,)
    conn.execute("DROP VIEW catalog_sync_test.v_fixture")


def test_a_table_missing_from_the_catalog_is_named(local_stack: Any, tmp_path: Path) -> None:
    from local.glue_catalog.store import CatalogStore
    from local.warehouse.catalog_sync import refresh_from_catalog

    with pytest.raises(CatalogSyncError) as info:
        refresh_from_catalog(local_stack.pg_dsn, CatalogStore(None), "clean_mystore", "store_sale")
    assert str(info.value).startswith(
        "the catalog has no table clean_mystore.store_sale: the clean job's catalog sync did not run"
    )


def test_only_registered_partitions_are_kept() -> None:
    from local.warehouse.catalog_sync import keep_registered_partitions

    data = pa.table({"id": [1, 2, 3], "day": ["2026-11-01", "2026-11-02", "2026-11-01"]})
    kept = keep_registered_partitions(data, ["day"], [{"Values": ["2026-11-01"]}])
    assert kept.column("id").to_pylist() == [1, 3]
