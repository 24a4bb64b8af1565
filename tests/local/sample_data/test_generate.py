"""The sample-data generator: deterministic, realistic, and its truth file agrees with its data.

The truth is re-derived here from the raw files by an independent reading of the rules
(bad row = no key or unparseable event time; one row per key per batch, latest event then
processing time; a stored row is replaced only by one at least as new).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from glue.contract import CLEAN_TABLES
from local.sample_data.feed import GenerateConfig
from local.sample_data.generate import generate, main, raw_partition

REPO = Path(__file__).resolve().parents[3]
CONFIG = GenerateConfig(
    days=4, customers=300, sales_per_day=400, seed=11, start_date=date(2026, 11, 1)
)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("gen")
    return out, generate(CONFIG, out)


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def read_day(out: Path, table: str, day: str) -> list[dict[str, str | None]]:
    path = raw_partition(out / "raw", table, day) / "part-00000.json"
    return [json.loads(line) for line in path.read_text().splitlines()]


def parse_time(value: str | None) -> datetime | None:
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(value or "", fmt)
        except ValueError:
            continue
    return None


def test_same_seed_same_bytes_other_seed_other_data(
    sample: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, _ = sample
    generate(CONFIG, tmp_path / "again")
    assert files(tmp_path / "again") == files(out)
    other = GenerateConfig(**{**CONFIG.__dict__, "seed": 12})
    generate(other, tmp_path / "other")
    assert (
        files(tmp_path / "other")["raw/store_sale/ingest_date=2026-11-01/part-00000.json"]
        != files(out)["raw/store_sale/ingest_date=2026-11-01/part-00000.json"]
    )


def test_raw_layout_is_one_json_lines_file_per_table_and_ingest_date(
    sample: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = sample
    expected = {
        f"raw/{table}/ingest_date=2026-11-0{d}/{name}"
        for table in CLEAN_TABLES
        for d in range(1, 5)
        for name in ("part-00000.json", "_MANIFEST.json")
    }
    assert {k for k in files(out) if k.startswith("raw/")} == expected
    row = read_day(out, "store_sale", "2026-11-02")[0]
    assert list(row) == [c.name for c in CLEAN_TABLES["store_sale"].raw_columns]
    assert all(v is None or isinstance(v, str) for v in row.values())


def test_truth_counts_agree_with_the_raw_files(sample: tuple[Path, dict[str, Any]]) -> None:
    out, truth = sample
    stored: dict[str, dict[tuple[str, ...], datetime]] = {t: {} for t in CLEAN_TABLES}
    for night in truth["days"]:
        for table, contract in CLEAN_TABLES.items():
            rows = read_day(out, table, night["date"])
            good = [
                r
                for r in rows
                if all((r[k] or "").strip() for k in contract.key)
                and parse_time(r[contract.ordering])
            ]
            latest: dict[tuple[str, ...], tuple[datetime, datetime]] = {}
            for r in good:
                key = tuple(str(r[k]) for k in contract.key)
                event, processed = (
                    parse_time(r[contract.ordering]),
                    parse_time(r["processing_datetime"]),
                )
                assert event is not None and processed is not None
                times = (event, processed)
                latest[key] = max(latest.get(key, times), times)
            stale = 0
            for key, (event, _) in latest.items():
                if key in stored[table] and event < stored[table][key]:
                    stale += 1
                else:
                    stored[table][key] = event
            assert night["tables"][table] == {
                "raw_rows": len(rows),
                "quarantined": len(rows) - len(good),
                "duplicates_dropped": len(good) - len(latest),
                "rows_written": len(latest),
                "stale_ignored": stale,
                "clean_rows": len(stored[table]),
            }, (table, night["date"])
    assert truth["distinct_customers"] == len(stored["store_customer"])


def test_the_feed_has_the_imperfections_of_a_real_one(sample: tuple[Path, dict[str, Any]]) -> None:
    out, truth = sample
    days = truth["days"]
    assert all(d["tables"]["store_sale"]["quarantined"] > 0 for d in days)
    assert all(d["tables"]["store_sale"]["duplicates_dropped"] > 0 for d in days)
    assert sum(d["tables"]["store_customer"]["stale_ignored"] for d in days) > 0
    assert truth["customers_with_moves"] > 0
    assert truth["address_versions_total"] == len(truth["final_customer_address"]) + sum(
        n - 1 for n in truth["address_versions"].values()
    )
    sales = read_day(out, "store_sale", "2026-11-03")
    late = [
        s
        for s in sales
        if (parse_time(s["sale_datetime"]) or datetime.max).date() < date(2026, 11, 3)
    ]
    assert late
    assert any(s["promo_id"] is None for s in sales)
    customers = read_day(out, "store_customer", "2026-11-01")
    assert any("T" in (c["customer_datetime"] or "") for c in customers)  # ISO-8601 variant
    assert any(c["email_address"] is None for c in customers)
    zips = [a["zip"] for a in read_day(out, "store_customer_address", "2026-11-01")]
    assert any(z and z.startswith("0") for z in zips)


def test_bad_config_is_named() -> None:
    with pytest.raises(ValueError, match="customers must be at least 1, got 0"):
        GenerateConfig(customers=0)
    with pytest.raises(ValueError, match=r"sales_per_day 1,000,001 is too many; at most 1,000,000"):
        GenerateConfig(sales_per_day=1_000_001)
    with pytest.raises(ValueError, match=r"customers 5,000,000 is too many; .* in memory"):
        GenerateConfig(customers=5_000_000)
    GenerateConfig(customers=1_000_000, sales_per_day=1_000_000)  # the cap itself is allowed
    with pytest.raises(ValueError, match=r"bad_share must be between 0 and 0\.5, got 0\.9"):
        GenerateConfig(bad_share=0.9)


def test_cli_help_and_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "local.sample_data", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    for option in ("--days", "--customers", "--sales-per-day", "--seed", "--start-date", "--out"):
        assert option in proc.stdout
    argv = ["--days", "1", "--customers", "5", "--sales-per-day", "3", "--out", str(tmp_path)]
    assert main(argv) == 0
    assert (
        json.loads((tmp_path / "truth.json").read_text())["days"][0]["tables"]["store_customer"][
            "clean_rows"
        ]
        == 5
    )
    progress = capsys.readouterr().err.splitlines()
    assert progress == ["generating 2026-11-01 (day 1 of 1)"]  # on stderr, before its work
    assert main(["--days", "0", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: days must be at least 1, got 0"


# sha256 of every file a small feed writes (raw partitions, manifests, truth), pinned: the
# generator's rewrites for memory (rows streamed to disk, yesterday's sales kept as JSON,
# sales' truth as event times) changed no byte. A deliberate change to the feed updates it.
PINNED_FEED = "855164bbe5cd0b349119ea24f18b40dcd204ac7c769e7f0eb1ecae1d5543be62"  # before them


def test_the_feeds_bytes_are_pinned(tmp_path: Path) -> None:
    generate(GenerateConfig(days=4, customers=500, sales_per_day=3000), tmp_path)
    digest = hashlib.sha256()
    for path in sorted(p for p in tmp_path.rglob("*") if p.is_file()):
        digest.update(path.relative_to(tmp_path).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    assert digest.hexdigest() == PINNED_FEED
