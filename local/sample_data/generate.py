"""Deterministic MyStore raw data, the way a real feed delivers it, plus the truth about it.

The clean job and the warehouse load are only as well tested as their input is realistic:
a nightly feed repeats rows, re-sends stale versions, delivers yesterday's events today,
changes customers (type 1) and moves them (type 2), leaves fields empty and sometimes
sends garbage. This module writes such a feed for N days and, next to it, a truth file
computed by a plain-Python model of the clean tables (event-time upsert by key), so tests
can check the Spark job and the warehouse against numbers that were not produced by the
code under test.

Layout (all values are strings or null, as a raw zone holds them)::

    <out>/raw/<table>/ingest_date=YYYY-MM-DD/part-00000.json   (JSON lines)
    <out>/raw/<table>/ingest_date=YYYY-MM-DD/_MANIFEST.json    (written last: complete)
    <out>/truth.json

Each partition is written the way the clean job expects a complete one (glue/manifest.py):
the old manifest goes first, each file is written under a temporary name and renamed, and
the manifest (file names, sizes, row counts) is renamed into place last. One call generates
at most ``MAX_DAYS`` days (``MYSTORE_LOCAL_MAX_SAMPLE_DAYS`` or ``--max-days`` raise it), and
dates stay within 1900-01-01..2999-12-30 (2999-12-31 is the warehouse's open-ended date).

What the rows are (the day's customers, addresses and sales and their flaws) is decided in
feed.py; this module writes them, keeps the truth model beside them and is the CLI, so the
rules of the feed and the rules of the truth are never in the same place (the truth must
not be derived from the code it checks).

Run ``python -m local.sample_data --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from glue.contract import CLEAN_TABLES, STORE_CUSTOMER, STORE_CUSTOMER_ADDRESS, STORE_SALE
from local.sample_data.feed import (
    FeedGenerator,
    GenerateConfig,
    Row,
    format_timestamp,
    parse_timestamp,
)
from local.sample_data.partitions import (
    MAX_DAYS,
    MAX_DAYS_ENV,
    PART_FILE,
    check_range,
    max_days,
    write_partition,
)

RAW_DIR = "raw"
TRUTH_FILE = "truth.json"


class _Truth:
    """A plain-Python model of the clean tables: event-time upsert by key, per night."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[tuple[str, ...], tuple[datetime, datetime, Row]]] = {
            name: {} for name in CLEAN_TABLES
        }

    def apply(self, table: str, rows: list[Row], bad: int) -> dict[str, int]:
        contract = CLEAN_TABLES[table]
        batch: dict[tuple[str, ...], tuple[datetime, datetime, Row]] = {}
        for row in rows:
            key = tuple(str(row[k]) for k in contract.key)
            ordering = parse_timestamp(row[contract.ordering])
            processing = parse_timestamp(row["processing_datetime"])
            current = batch.get(key)
            if current is None or (ordering, processing) >= (current[0], current[1]):
                batch[key] = (ordering, processing, row)
        stored = self.tables[table]
        stale = 0
        for key, (ordering, processing, row) in batch.items():
            current = stored.get(key)
            if current is None or ordering >= current[0]:
                stored[key] = (ordering, processing, row)
            else:
                stale += 1
        return {
            "raw_rows": len(rows) + bad,
            "quarantined": bad,
            "duplicates_dropped": len(rows) - len(batch),
            "rows_written": len(batch),
            "stale_ignored": stale,
            "clean_rows": len(stored),
        }


def _ordered(table: str, row: Row) -> Row:
    return {c.name: row.get(c.name) for c in CLEAN_TABLES[table].raw_columns}


def _address_attributes(stored: tuple[datetime, datetime, Row] | None) -> list[str | None]:
    if stored is None:
        return []
    row = stored[2]
    return [row.get(c.name) for c in STORE_CUSTOMER_ADDRESS.raw_columns[2:-1]]


def raw_partition(raw_path: Path | str, table: str, ingest_date: date | str) -> Path:
    """The folder of one table's rows for one ingest date under a raw zone root.

    ``raw_path`` is what the clean job gets as ``--raw_path`` (``<out>/raw`` here).
    """
    return Path(raw_path) / table / f"ingest_date={ingest_date}"


def generate(config: GenerateConfig, out: Path, *, day_limit: int | None = None) -> dict[str, Any]:
    """Write the raw zone and the truth file under ``out``; return the truth.

    Raises SampleRangeError, before writing anything, for more than ``day_limit`` days
    (default: ``max_days()``) or dates outside the supported range.
    """
    check_range(config.start_date, config.days, max_days() if day_limit is None else day_limit)
    gen = FeedGenerator(config)
    truth_model = _Truth()
    days: list[dict[str, Any]] = []
    address_versions: dict[str, list[str]] = {}
    for index in range(config.days):
        today = config.start_date + timedelta(days=index)
        per_table = gen.day(index)
        tables: dict[str, Any] = {}
        for table in (STORE_CUSTOMER_ADDRESS.name, STORE_CUSTOMER.name, STORE_SALE.name):
            good, bad = gen.imperfect(table, per_table[table])
            tables[table] = truth_model.apply(table, good, len(bad))
            lines = [_ordered(table, r) for r in good + bad]
            gen.rng.shuffle(lines)
            write_partition(raw_partition(out / RAW_DIR, table, today), table, today, lines)
        addresses = truth_model.tables[STORE_CUSTOMER_ADDRESS.name]
        for (customer_id,), (_, _, row) in truth_model.tables[STORE_CUSTOMER.name].items():
            # The warehouse versions a customer (SCD2) when its address changes: another
            # address, or the same address with corrected attributes.
            address = addresses.get((str(row["address_id"]),))
            version = json.dumps([row["address_id"], _address_attributes(address)])
            seen = address_versions.setdefault(customer_id, [])
            if not seen or seen[-1] != version:
                seen.append(version)
        days.append({"date": today.isoformat(), "tables": tables})
    final = truth_model.tables[STORE_CUSTOMER.name]
    truth: dict[str, Any] = {
        "config": asdict(config) | {"start_date": config.start_date.isoformat()},
        "layout": f"{RAW_DIR}/<table>/ingest_date=YYYY-MM-DD/{PART_FILE}",
        "days": days,
        "distinct_customers": len(final),
        "address_versions_total": sum(len(v) for v in address_versions.values()),
        "customers_with_moves": sum(1 for v in address_versions.values() if len(v) > 1),
        # Only movers are listed; every other customer has exactly one address version.
        "address_versions": {k: len(v) for k, v in sorted(address_versions.items()) if len(v) > 1},
        "final_customer_address": {k[0]: v[2]["address_id"] for k, v in sorted(final.items())},
        "final_customer_datetime": {k[0]: format_timestamp(v[0]) for k, v in sorted(final.items())},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / TRUTH_FILE).write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n")
    return truth


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local.sample_data",
        description="Write deterministic MyStore raw data (JSON lines, all values strings) "
        "for N days, with the imperfections of a real feed, and a truth file of expected counts.",
    )
    d = GenerateConfig()
    options: list[tuple[str, Callable[[str], Any], Any, str]] = [
        ("--days", int, d.days, "days to generate"),
        ("--customers", int, d.customers, "customers in the day-1 full load"),
        ("--sales-per-day", int, d.sales_per_day, "sale rows a day, before dupes and bad rows"),
        ("--seed", int, d.seed, "random seed; same seed, same bytes"),
        ("--start-date", date.fromisoformat, d.start_date, "ingest date of day 1, YYYY-MM-DD"),
        ("--out", Path, Path(".local/sample"), "output folder for raw/ and truth.json"),
        ("--bad-share", float, d.bad_share, "share of rows a day that cannot be cleaned"),
        ("--duplicate-share", float, d.duplicate_share, "share of rows repeated in a batch"),
        ("--late-share", float, d.late_share, "share of late sales and re-sent stale rows"),
        (
            "--max-days",
            int,
            None,
            f"most days to write in one go (default ${MAX_DAYS_ENV} or {MAX_DAYS})",
        ),
    ]
    for flag, type_, default, help_text in options:
        parser.add_argument(
            flag, type=type_, default=default, help=f"{help_text} (default %(default)s)"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        options = {k: v for k, v in vars(args).items() if k not in ("out", "max_days")}
        config = GenerateConfig(**options)
        truth = generate(config, args.out, day_limit=args.max_days)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    last = truth["days"][-1]
    print(
        f"wrote {config.days} day(s) of raw data to {args.out / RAW_DIR} "
        f"({truth['days'][0]['date']}..{last['date']}); truth in {args.out / TRUTH_FILE}"
    )
    for table, counts in last["tables"].items():
        print(f"  {table}: {counts['clean_rows']} clean rows after the last day")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
