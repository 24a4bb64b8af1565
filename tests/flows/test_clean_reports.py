"""Reading the clean job's report back: local files, S3 objects, and why a count is missing."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from flows.clean_reports import RowsWritten, read_rows_written, report_path, report_root
from flows.settings import Settings

NIGHT = date(2026, 11, 2)


def test_local_target_defaults_to_the_data_dirs_reports(tmp_path: Path) -> None:
    settings = Settings(target="local", local_data_dir=tmp_path)
    assert report_root(settings) == str(tmp_path.resolve() / "reports")
    assert report_path(report_root(settings), "clean_x", NIGHT) == str(
        tmp_path.resolve() / "reports" / "2026-11-02" / "clean_x.json"
    )


def test_the_setting_wins_and_aws_without_it_has_no_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MYSTORE_GLUE_REPORT_PATH", raising=False)
    aws = {
        "target": "aws",
        "workgroup_name": "mystore-wg",
        "raw_path": "s3://raw-zone/raw",
        "clean_path": "s3://clean-zone/c",
    }
    assert report_root(Settings(**aws, glue_report_path="s3://bkt/reports/")) == "s3://bkt/reports/"
    assert report_path(report_root(Settings(**aws)), "clean_x", NIGHT) is None
    missing = read_rows_written(None)
    assert (missing.rows, missing.missing_reason) == (
        None,
        "no report path: set MYSTORE_GLUE_REPORT_PATH",
    )


def test_a_local_report_gives_rows_written(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"rows_written": 88, "status": "SUCCEEDED"}))
    assert read_rows_written(str(path)).rows == 88


def test_an_s3_report_is_read_through_the_given_reader() -> None:
    seen: list[tuple[str, str]] = []

    def read_s3(bucket: str, key: str) -> bytes:
        seen.append((bucket, key))
        return b'{"rows_written": 5050}'

    found = read_rows_written("s3://lake/reports/2026-11-02/clean_store_sale.json", read_s3)
    assert found.rows == 5050
    assert seen == [("lake", "reports/2026-11-02/clean_store_sale.json")]


def test_an_unreadable_or_incomplete_report_says_why(tmp_path: Path) -> None:
    gone = read_rows_written(str(tmp_path / "absent.json"))
    assert gone.rows is None and "unreadable (FileNotFoundError" in gone.missing_reason
    cut_short = tmp_path / "cut_short.json"
    cut_short.write_text(json.dumps({"input": "complete: 5 row(s) in 1 file(s)"}))
    assert "has no rows_written (complete: 5 row(s)" in (
        read_rows_written(str(cut_short)).missing_reason
    )


def test_a_report_of_an_allowed_empty_day_is_a_no_input_verdict(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"input": "none (allowed by --allow_empty_input)"}))
    assert read_rows_written(str(empty)) == RowsWritten(0, no_input=True)
    counted = tmp_path / "counted.json"
    counted.write_text(json.dumps({"input": "complete: 5 row(s)", "rows_written": 5}))
    assert read_rows_written(str(counted)) == RowsWritten(5)
