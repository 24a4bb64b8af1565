"""The generator refuses absurd ranges before writing, and writes each raw partition so that
it is complete exactly when its manifest exists."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from glue.manifest import MANIFEST_FILE, check_partition, parse_manifest
from local.sample_data.feed import GenerateConfig
from local.sample_data.generate import generate, main, raw_partition
from local.sample_data.partitions import (
    MAX_DAYS,
    MAX_DAYS_ENV,
    SampleRangeError,
    check_range,
    max_days,
    write_partition,
)


def test_too_many_days_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    config = GenerateConfig(days=(date(9999, 12, 31) - date(2026, 11, 1)).days + 1)
    with pytest.raises(SampleRangeError) as exc:
        generate(config, tmp_path)
    message = str(exc.value)
    assert f"the limit is {MAX_DAYS:,} days" in message
    assert MAX_DAYS_ENV in message and "--max-days" in message
    assert list(tmp_path.iterdir()) == []


def test_the_day_limit_can_be_raised(tmp_path: Path) -> None:
    config = GenerateConfig(days=3, customers=20, sales_per_day=10)
    with pytest.raises(SampleRangeError):
        generate(config, tmp_path, day_limit=2)
    truth = generate(config, tmp_path, day_limit=3)
    assert len(truth["days"]) == 3
    assert max_days({MAX_DAYS_ENV: "4000"}) == 4000
    with pytest.raises(SampleRangeError, match="whole number"):
        max_days({MAX_DAYS_ENV: "lots"})


@pytest.mark.parametrize(
    ("start", "days", "words"),
    [
        (date(1, 1, 1), 1, "dates must be from 1900-01-01"),
        (date(9999, 12, 30), 1, "dates must be from 1900-01-01"),
        (date(2999, 12, 29), 3, "run past 2999-12-30"),
    ],
)
def test_dates_outside_the_supported_range_are_refused(start: date, days: int, words: str) -> None:
    with pytest.raises(SampleRangeError, match=words):
        check_range(start, days, MAX_DAYS)


@pytest.mark.parametrize(
    "argv",
    [
        ["--start-date", "0001-01-01"],
        ["--start-date", "2026-11-01", "--days", "5000"],
        ["--start-date", "9999-12-31"],
    ],
)
def test_the_cli_exits_2_with_a_message_and_no_traceback(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_every_partition_has_a_manifest_that_matches_its_files(tmp_path: Path) -> None:
    truth = generate(GenerateConfig(days=2, customers=30, sales_per_day=40), tmp_path)
    for day in truth["days"]:
        for table, counts in day["tables"].items():
            folder = raw_partition(tmp_path / "raw", table, day["date"])
            manifest = parse_manifest((folder / MANIFEST_FILE).read_text(), str(folder))
            listing = {p.name: p.stat().st_size for p in folder.iterdir()}
            check_partition(manifest, table, day["date"], listing, str(folder))
            assert manifest.rows == counts["raw_rows"]
            assert sorted(listing) == [MANIFEST_FILE, "part-00000.json"]  # no temporary files


def test_rewriting_a_partition_removes_the_old_manifest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "store_sale" / "ingest_date=2026-11-01"
    write_partition(folder, "store_sale", date(2026, 11, 1), [{"ticket_id": "1"}])
    assert (folder / MANIFEST_FILE).exists()

    def disk_full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("local.sample_data.partitions._write_then_rename", disk_full)
    with pytest.raises(OSError):
        write_partition(folder, "store_sale", date(2026, 11, 1), [{"ticket_id": "2"}])
    assert not (folder / MANIFEST_FILE).exists()  # so the clean job refuses it


def test_a_manifest_is_stable_json(tmp_path: Path) -> None:
    one = write_partition(tmp_path / "a", "store_sale", date(2026, 11, 1), [{"x": "1"}])
    text = (tmp_path / "a" / MANIFEST_FILE).read_text()
    assert json.loads(text)["files"] == [{"bytes": 11, "name": "part-00000.json", "rows": 1}]
    assert parse_manifest(text, "a") == one


def test_rows_are_written_as_they_come_and_a_failing_one_leaves_no_file(tmp_path: Path) -> None:
    """A day of a million sales is written row by row, never held whole; a row that cannot
    be made half-way (or a full disk) leaves neither the file nor its temporary copy."""
    folder = tmp_path / "store_sale" / "ingest_date=2026-11-01"
    made: list[int] = []

    def rows(count: int, fail_at: int | None = None) -> Iterator[dict[str, str | None]]:
        for i in range(count):
            if i == fail_at:
                raise ValueError(f"row {i} cannot be made")
            made.append(i)
            yield {"ticket_id": str(i)}

    written = write_partition(folder, "store_sale", date(2026, 11, 1), rows(1000))
    data = (folder / "part-00000.json").read_bytes()
    assert (written.files[0].rows, written.files[0].bytes) == (1000, len(data))
    listing = {p.name: p.stat().st_size for p in folder.iterdir()}
    check_partition(written, "store_sale", "2026-11-01", listing, str(folder))
    assert data.count(b"\n") == 1000 and made == list(range(1000))
    made.clear()
    with pytest.raises(ValueError, match="row 500 cannot be made"):
        write_partition(folder, "store_sale", date(2026, 11, 1), rows(1000, fail_at=500))
    assert made == list(range(500))  # the rows before it were written, then removed
    assert list(folder.iterdir()) == []  # no manifest, no part file, no temporary file
