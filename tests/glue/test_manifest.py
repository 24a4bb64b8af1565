"""A raw partition is complete only as its manifest says: pure checks with literal values."""

from __future__ import annotations

from pathlib import Path

import pytest

from glue.manifest import (
    MANIFEST_FILE,
    IncompletePartition,
    Manifest,
    ManifestFile,
    check_partition,
    check_row_count,
    is_data_file,
    manifest_text,
    missing_manifest,
    parse_manifest,
    read_partition,
)

WHERE = "raw/store_sale/ingest_date=2026-11-01"
MANIFEST = Manifest(
    table="store_sale",
    ingest_date="2026-11-01",
    files=(ManifestFile("part-00000.json", 4000, 30), ManifestFile("part-00001.json", 100, 2)),
)
LISTING = {"part-00000.json": 4000, "part-00001.json": 100, MANIFEST_FILE: 321}


def test_a_manifest_round_trips_and_totals_its_rows() -> None:
    assert parse_manifest(manifest_text(MANIFEST), WHERE) == MANIFEST
    assert MANIFEST.rows == 32


def test_a_matching_partition_passes() -> None:
    check_partition(MANIFEST, "store_sale", "2026-11-01", LISTING, WHERE)
    check_row_count(MANIFEST, 32, WHERE)


@pytest.mark.parametrize(
    ("listing", "words"),
    [
        (
            {"part-00000.json": 4000, MANIFEST_FILE: 1},
            "part-00001.json is listed (2 rows) but missing",
        ),
        (
            {**LISTING, "part-00000.json": 3974},
            "part-00000.json has 3,974 bytes; the manifest says 4,000",
        ),
        ({**LISTING, "part-00002.json": 5}, "data file(s) not in the manifest: part-00002.json"),
    ],
)
def test_a_partition_that_differs_is_refused_naming_it_and_the_difference(
    listing: dict[str, int], words: str
) -> None:
    with pytest.raises(IncompletePartition) as exc:
        check_partition(MANIFEST, "store_sale", "2026-11-01", listing, WHERE)
    assert str(exc.value).startswith(f"raw partition {WHERE} is incomplete: ")
    assert words in str(exc.value)


def test_hidden_and_temporary_files_are_not_data() -> None:
    listing = {**LISTING, ".part-00000.json.tmp": 9, "_SUCCESS": 0}
    check_partition(MANIFEST, "store_sale", "2026-11-01", listing, WHERE)
    assert not is_data_file("_MANIFEST.json") and not is_data_file(".x.tmp")
    assert is_data_file("part-00000.json")


def test_a_manifest_of_another_table_or_date_is_refused() -> None:
    with pytest.raises(
        IncompletePartition, match="for store_sale 2026-11-01, not store_sale 2026-11-02"
    ):
        check_partition(MANIFEST, "store_sale", "2026-11-02", LISTING, WHERE)


def test_fewer_rows_read_than_listed_is_refused() -> None:
    with pytest.raises(IncompletePartition) as exc:
        check_row_count(MANIFEST, 26, WHERE)
    assert str(exc.value) == (
        f"raw partition {WHERE} is incomplete: read 26 rows, the manifest lists 32 in 2 file(s)"
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{not json", "is not valid JSON"),
        ('{"format": "other/9"}', "has format 'other/9'"),
        ('{"format": "mystore-raw-partition/1", "table": "t"}', "lacks or mangles a member"),
        (
            '{"format": "mystore-raw-partition/1", "table": "t", "ingest_date": "d",'
            ' "total_rows": 5, "files": [{"name": "a", "bytes": 1, "rows": 4}]}',
            "says total_rows 5 but its files add up to 4",
        ),
    ],
)
def test_a_mangled_manifest_is_refused(text: str, words: str) -> None:
    with pytest.raises(IncompletePartition) as exc:
        parse_manifest(text, WHERE)
    assert WHERE in str(exc.value) and words in str(exc.value)


def test_a_missing_manifest_says_the_partition_is_incomplete() -> None:
    message = str(missing_manifest(WHERE))
    assert f"raw partition {WHERE} has no {MANIFEST_FILE}" in message


def test_read_partition_lists_files_and_reads_the_manifest(tmp_path: Path) -> None:
    assert read_partition(str(tmp_path / "absent")) is None
    (tmp_path / "part-00000.json").write_text("{}\n")
    assert read_partition(str(tmp_path)) == ({"part-00000.json": 3}, None)
    (tmp_path / MANIFEST_FILE).write_text(manifest_text(MANIFEST))
    found = read_partition(str(tmp_path))
    assert found is not None and found[1] == manifest_text(MANIFEST)
