"""The local Delta sink keeps the Hudi semantics: upsert by key, event time, bounded history."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from glue.contract import STORE_CUSTOMER_ADDRESS, STORE_SALE, TableContract
from glue.sinks import DeltaSink, arrow_schema, merge_predicate, newer_predicate

ETL = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=UTC)


def address(address_id: str, when: datetime, street: str) -> dict[str, Any]:
    return {
        "address_id": address_id,
        "address_datetime": when,
        "street": street,
        "city": "Midway",
        "zip": "01234",
        "county": None,
        "state": "TN",
        "country": "United States",
        "gmt_offset": Decimal("-6.00"),
        "location_type": "condo",
        "processing_datetime": when,
        "etl_processing_datetime": ETL,
        "address_date": when.date(),
    }


def sale(ticket: int, item: int, when: datetime, quantity: int) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(STORE_SALE.column_names)
    return row | {
        "ticket_id": ticket,
        "item_id": item,
        "sale_datetime": when,
        "quantity": quantity,
        "net_paid": Decimal("1.50"),
        "processing_datetime": when,
        "etl_processing_datetime": ETL,
        "sale_date": when.date(),
    }


def table(contract: TableContract, rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=arrow_schema(contract))


def stored(path: Path, *columns: str) -> list[tuple[Any, ...]]:
    rows = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
    return sorted(tuple(r[c] for c in columns) for r in rows)


def test_predicates_name_the_key_and_the_ordering_field() -> None:
    assert merge_predicate(STORE_CUSTOMER_ADDRESS) == "t.`address_id` = s.`address_id`"
    assert merge_predicate(STORE_SALE, ["2026-11-02", "2026-11-01"]) == (
        "t.`ticket_id` = s.`ticket_id` AND t.`item_id` = s.`item_id` AND "
        "t.`sale_date` = s.`sale_date` AND t.`sale_date` IN ('2026-11-01', '2026-11-02')"
    )
    assert newer_predicate(STORE_SALE) == "s.`sale_datetime` >= t.`sale_datetime`"


def test_table_has_exactly_the_clean_columns(tmp_path: Path) -> None:
    sink = DeltaSink(str(tmp_path / "a"), STORE_CUSTOMER_ADDRESS)
    assert not sink.exists()
    result = sink.write_arrow(
        table(STORE_CUSTOMER_ADDRESS, [address("A1", at(1, 9), "x")]), "initial"
    )

    assert (result.table_format, result.commit_id, result.rows_inserted) == ("delta", "0", 1)
    snapshot = DeltaTable(str(tmp_path / "a")).to_pyarrow_table()
    assert snapshot.schema.names == list(STORE_CUSTOMER_ADDRESS.column_names)
    assert snapshot.schema == arrow_schema(STORE_CUSTOMER_ADDRESS)
    assert DeltaTable(str(tmp_path / "a")).metadata().partition_columns == []


def test_sales_files_are_partitioned_by_sale_date(tmp_path: Path) -> None:
    sink = DeltaSink(str(tmp_path / "s"), STORE_SALE)
    sink.write_arrow(
        table(STORE_SALE, [sale(1, 1, at(1, 9), 2), sale(2, 1, at(2, 9), 1)]), "initial"
    )
    assert DeltaTable(str(tmp_path / "s")).metadata().partition_columns == ["sale_date"]
    assert sorted(p.name for p in (tmp_path / "s").glob("sale_date=*")) == [
        "sale_date=2026-11-01",
        "sale_date=2026-11-02",
    ]


def test_late_older_record_never_overwrites_a_newer_one(tmp_path: Path) -> None:
    path = tmp_path / "a"
    sink = DeltaSink(str(path), STORE_CUSTOMER_ADDRESS)
    sink.write_arrow(
        table(
            STORE_CUSTOMER_ADDRESS,
            [address("A1", at(2, 9), "newer"), address("A2", at(1, 9), "old")],
        ),
        "initial",
    )
    result = sink.write_arrow(
        table(
            STORE_CUSTOMER_ADDRESS,
            [
                address("A1", at(1, 23), "late and older"),  # ignored
                address("A2", at(2, 10), "moved to a new day"),  # replaces, new partition
                address("A3", at(1, 8), "late but new key"),  # inserted in an old partition
            ],
        ),
        "incremental",
    )

    assert (result.rows_inserted, result.rows_updated, result.rows_ignored_older) == (1, 1, 1)
    assert stored(path, "address_id", "street", "address_date") == [
        ("A1", "newer", date(2026, 11, 2)),
        ("A2", "moved to a new day", date(2026, 11, 2)),
        ("A3", "late but new key", date(2026, 11, 1)),
    ]


def test_equal_event_time_lets_the_incoming_record_win(tmp_path: Path) -> None:
    path = tmp_path / "a"
    sink = DeltaSink(str(path), STORE_CUSTOMER_ADDRESS)
    sink.write_arrow(table(STORE_CUSTOMER_ADDRESS, [address("A1", at(1, 9), "first")]), "initial")
    sink.write_arrow(
        table(STORE_CUSTOMER_ADDRESS, [address("A1", at(1, 9), "resent")]), "incremental"
    )
    assert stored(path, "address_id", "street") == [("A1", "resent")]


def test_an_initial_load_replaces_the_table(tmp_path: Path) -> None:
    path = tmp_path / "a"
    sink = DeltaSink(str(path), STORE_CUSTOMER_ADDRESS)
    sink.write_arrow(table(STORE_CUSTOMER_ADDRESS, [address("A1", at(2, 9), "gone")]), "initial")
    sink.write_arrow(table(STORE_CUSTOMER_ADDRESS, [address("A2", at(1, 9), "only")]), "initial")
    assert stored(path, "address_id", "street") == [("A2", "only")]


def test_sales_are_matched_within_their_sale_date(tmp_path: Path) -> None:
    path = tmp_path / "s"
    sink = DeltaSink(str(path), STORE_SALE)
    sink.write_arrow(
        table(STORE_SALE, [sale(1, 1, at(1, 9), 2), sale(1, 2, at(1, 9), 1)]), "initial"
    )
    result = sink.write_arrow(
        table(
            STORE_SALE,
            [
                sale(1, 1, at(1, 9), 5),  # the same sale re-sent with a correction
                sale(2, 1, at(1, 20), 1),  # late sale from day 1, arriving day 2
                sale(3, 1, at(2, 10), 3),
            ],
        ),
        "incremental",
    )
    assert (result.rows_inserted, result.rows_updated) == (2, 1)
    assert stored(path, "ticket_id", "item_id", "quantity", "sale_date") == [
        (1, 1, 5, date(2026, 11, 1)),
        (1, 2, 1, date(2026, 11, 1)),
        (2, 1, 1, date(2026, 11, 1)),
        (3, 1, 3, date(2026, 11, 2)),
    ]


def test_history_is_bounded_to_the_last_ten_writes_after_fifteen_commits(tmp_path: Path) -> None:
    path = tmp_path / "a"
    sink = DeltaSink(str(path), STORE_CUSTOMER_ADDRESS, retain_commits=10)
    for night in range(1, 16):
        rows = [address(f"A{k}", at(night, 1 + k), f"night {night}") for k in range(3)]
        sink.write_arrow(table(STORE_CUSTOMER_ADDRESS, rows), "incremental")

    kept = sink.write_versions()
    assert len(kept) == 10
    assert kept == sorted(kept, reverse=True)
    newest = DeltaTable(str(path), version=kept[0]).to_pyarrow_table()
    assert newest.equals(DeltaTable(str(path)).to_pyarrow_table())
    oldest = DeltaTable(str(path), version=min(kept)).to_pyarrow_table()
    assert {r["street"] for r in oldest.to_pylist()} == {"night 6"}
    with pytest.raises(Exception, match=r"(?i)version|log segment|not found|invalid"):
        DeltaTable(str(path), version=min(kept) - 1)
    # Data files on disk are exactly those the ten kept versions reference.
    needed: set[str] = set()
    for version in kept:
        needed |= {Path(u).name for u in DeltaTable(str(path), version=version).file_uris()}
    on_disk = {
        name
        for folder, _, names in os.walk(path)
        if "_delta_log" not in folder
        for name in names
        if name.endswith(".parquet")
    }
    assert on_disk == needed
    assert len(on_disk) <= 10
    assert stored(path, "address_id", "street") == [
        ("A0", "night 15"),
        ("A1", "night 15"),
        ("A2", "night 15"),
    ]


def test_bad_retention_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="retain_commits must be at least 1, got 0"):
        DeltaSink(str(tmp_path), STORE_SALE, retain_commits=0)


class _RecordingWriter:
    """Stands in for DataFrameWriter: the seam between the sink and Hudi's Spark bundle."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def format(self, name: str) -> _RecordingWriter:
        self.calls.append(("format", name))
        return self

    def options(self, **options: str) -> _RecordingWriter:
        self.calls.append(("options", options))
        return self

    def mode(self, mode: str) -> _RecordingWriter:
        self.calls.append(("mode", mode))
        return self

    def save(self, path: str) -> None:
        self.calls.append(("save", path))


@pytest.mark.slow
def test_hudi_sink_writes_with_the_table_options_and_reads_the_timeline(
    spark: Any, tmp_path: Path
) -> None:
    from types import SimpleNamespace

    from glue.hudi_options import hudi_write_options
    from glue.sinks import HudiSink

    path = tmp_path / "store_sale"
    sink = HudiSink(spark, str(path), STORE_SALE, version="1.0", retain_commits=5)
    assert not sink.exists()
    (path / ".hoodie" / "timeline").mkdir(parents=True)
    for name in ("20261125010101000.commit", "20261126010101000.commit.requested"):
        (path / ".hoodie" / name).touch()
    (path / ".hoodie" / "timeline" / "20261127010101000_20261127010109000.commit").touch()
    writer = _RecordingWriter()

    result = sink.write(SimpleNamespace(write=writer), "incremental")  # type: ignore[arg-type]

    assert sink.exists()
    expected_options = hudi_write_options(
        STORE_SALE, version="1.0", load="incremental", retain_commits=5, catalog_database=None
    )
    assert writer.calls == [
        ("format", "hudi"),
        ("options", expected_options),
        ("mode", "append"),
        ("save", str(path)),
    ]
    assert (result.table_format, result.commit_id) == ("hudi", "20261127010101000")
