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

With ``resume=True`` (the embedded default's nights) the generator's state after the last
day is kept beside the truth file (``generator_state.pickle``), and a later call for more
days goes on from it: each night writes its own day only, instead of replaying and
rewriting every earlier one (which grew by about 0.3 s a night at the default size). The
state is used only when it was made by this code from the same configuration and every
earlier partition is still there; otherwise everything is generated again, with the same
bytes as before.

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
import functools
import hashlib
import json
import pickle
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
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
    partition_is_complete,
    replaced_when_written,
    write_partition,
)

RAW_DIR = "raw"
TRUTH_FILE = "truth.json"
STATE_FILE = "generator_state.pickle"
# The truth reads back the stored rows of these tables only (each customer's final address);
# for sales it keeps event times, so the saved state does not grow by every sale's row.
_ROWS_KEPT = frozenset({STORE_CUSTOMER.name, STORE_CUSTOMER_ADDRESS.name})


class _Truth:
    """A plain-Python model of the clean tables: event-time upsert by key, per night.

    Customers and addresses keep their rows (the truth file reads each customer's final
    address); sales keep only each key's event time, under the key's parts joined, which is
    all that deciding a re-sent sale stale takes. Every sale ever generated stays in this
    model and in the state saved between nights, so what it keeps per sale sets how both
    grow night by night.
    """

    def __init__(self) -> None:
        self.tables: dict[str, dict[tuple[str, ...], tuple[datetime, datetime, Row]]] = {
            name: {} for name in _ROWS_KEPT
        }
        self.event_times: dict[str, dict[str, datetime]] = {
            name: {} for name in CLEAN_TABLES if name not in _ROWS_KEPT
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
        stale = 0
        if table in _ROWS_KEPT:
            stored = self.tables[table]
            for key, (ordering, processing, row) in batch.items():
                kept = stored.get(key)
                if kept is None or ordering >= kept[0]:
                    stored[key] = (ordering, processing, row)
                else:
                    stale += 1
            clean_rows = len(stored)
        else:
            times = self.event_times[table]
            for key, (ordering, _, _) in batch.items():
                flat = "\x1f".join(key)
                seen = times.get(flat)
                if seen is None or ordering >= seen:
                    times[flat] = ordering
                else:
                    stale += 1
            clean_rows = len(times)
        return {
            "raw_rows": len(rows) + bad,
            "quarantined": bad,
            "duplicates_dropped": len(rows) - len(batch),
            "rows_written": len(batch),
            "stale_ignored": stale,
            "clean_rows": clean_rows,
        }


def _ordered(table: str, row: Row) -> Row:
    return {c.name: row.get(c.name) for c in CLEAN_TABLES[table].raw_columns}


def _address_attributes(stored: tuple[datetime, datetime, Row] | None) -> list[str | None]:
    if stored is None:
        return []
    row = stored[2]
    return [row.get(c.name) for c in STORE_CUSTOMER_ADDRESS.raw_columns[2:-1]]


@dataclass
class _Progress:
    """The generator and the truth after the last day written: what a later call goes on from."""

    tag: str
    gen: FeedGenerator
    truth: _Truth = field(default_factory=_Truth)
    address_versions: dict[str, list[str]] = field(default_factory=dict)
    days: list[dict[str, Any]] = field(default_factory=list)


def _state_tag(config: GenerateConfig) -> str:
    """Configuration (but the day count) and this package's code: another tag, start over."""
    digest = hashlib.sha256(json.dumps(asdict(config) | {"days": None}, default=str).encode())
    digest.update(_code_digest())
    return digest.hexdigest()


@functools.cache
def _code_digest() -> bytes:
    """This package's sources, read once per process (a night asks up to three times)."""
    digest = hashlib.sha256()
    for module in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(module.read_bytes())
    return digest.digest()


def saved_days(out: Path, config: GenerateConfig) -> int:
    """Days from ``config.start_date`` that a saved state under ``out`` covers and can go on
    from (0 when there is none, it is another configuration's or code's, or one of those
    days' partitions is gone or incomplete). Reads only the state file's small header."""
    try:
        with (out / STATE_FILE).open("rb") as fh:
            header = pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError):
        return 0
    return _usable_days(header, out, config)


def _usable_days(header: Any, out: Path, config: GenerateConfig) -> int:
    try:
        tag, days = header["tag"], int(header["days"])
    except (KeyError, TypeError, ValueError):
        return 0
    if tag != _state_tag(config) or days < 1:
        return 0
    for index in range(days):
        if not day_is_complete(out, config.start_date + timedelta(days=index)):
            return 0
    return days


def day_is_complete(out: Path, day: date) -> bool:
    """Every table's raw partition of ``day`` under ``out`` is complete (has its manifest):
    a generator stopped midway (Ctrl-C, a full disk) leaves a day that is not, and that day
    is written again rather than kept."""
    return all(
        partition_is_complete(raw_partition(out / RAW_DIR, table, day)) for table in CLEAN_TABLES
    )


def _load_progress(out: Path, config: GenerateConfig) -> _Progress | None:
    """The saved state, if ``saved_days`` accepts it for fewer days than ``config``'s."""
    try:
        with (out / STATE_FILE).open("rb") as fh:
            days = _usable_days(pickle.load(fh), out, config)
            if not 0 < days < config.days:
                return None
            progress = pickle.load(fh)
    except Exception:  # a state that does not load (any reason) is generated again
        return None
    if not isinstance(progress, _Progress) or len(progress.days) != days:
        return None
    return progress


def _save_progress(out: Path, progress: _Progress) -> None:
    """Header then state, renamed into place: a stopped writer leaves the previous state
    and no half-written copy. Not fsynced: a state lost to a power cut is generated again."""
    with replaced_when_written(out / STATE_FILE, fsync=False) as fh:
        pickle.dump({"tag": progress.tag, "days": len(progress.days)}, fh, protocol=5)
        pickle.dump(progress, fh, protocol=5)


def raw_partition(raw_path: Path | str, table: str, ingest_date: date | str) -> Path:
    """The folder of one table's rows for one ingest date under a raw zone root.

    ``raw_path`` is what the clean job gets as ``--raw_path`` (``<out>/raw`` here).
    """
    return Path(raw_path) / table / f"ingest_date={ingest_date}"


def generate(
    config: GenerateConfig,
    out: Path,
    *,
    day_limit: int | None = None,
    resume: bool = False,
    before_writing: Callable[[int], None] | None = None,
    on_day: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write the raw zone and the truth file under ``out``; return the truth.

    With ``resume``, go on from the state an earlier call saved (see ``saved_days``) and
    write only the days after it, then save the state again. Raises SampleRangeError, before
    writing anything, for more than ``day_limit`` new days (default: ``max_days()``) or
    dates outside the supported range. ``before_writing`` is told how many earlier days are
    kept (0: every day is generated) once that is known, before anything is written;
    ``on_day`` is told each day's index before it is generated (progress).
    """
    limit = max_days() if day_limit is None else day_limit
    progress = _load_progress(out, config) if resume else None
    if progress is None:
        progress = _Progress(tag=_state_tag(config), gen=FeedGenerator(config))
    first_new = config.start_date + timedelta(days=len(progress.days))
    check_range(first_new, config.days - len(progress.days), limit)
    if before_writing is not None:
        before_writing(len(progress.days))
    for index in range(len(progress.days), config.days):
        if on_day is not None:
            on_day(index)
        progress.days.append(_write_day(progress, index, out))
    truth = _truth_document(config, progress)
    out.mkdir(parents=True, exist_ok=True)
    (out / TRUTH_FILE).write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n")
    if resume:
        _save_progress(out, progress)
    return truth


def _write_day(progress: _Progress, index: int, out: Path) -> dict[str, Any]:
    """Generate and write one day's partitions; return the truth's entry for that day."""
    gen, truth_model = progress.gen, progress.truth
    today = gen.config.start_date + timedelta(days=index)
    per_table = gen.day(index)
    tables: dict[str, Any] = {}
    for table in (STORE_CUSTOMER_ADDRESS.name, STORE_CUSTOMER.name, STORE_SALE.name):
        good, bad = gen.imperfect(table, per_table[table])
        tables[table] = truth_model.apply(table, good, len(bad))
        lines = good + bad
        gen.rng.shuffle(lines)  # the same order as shuffling their ordered copies
        ordered = (_ordered(table, r) for r in lines)  # one at a time, as written
        write_partition(raw_partition(out / RAW_DIR, table, today), table, today, ordered)
    addresses = truth_model.tables[STORE_CUSTOMER_ADDRESS.name]
    for (customer_id,), stored in truth_model.tables[STORE_CUSTOMER.name].items():
        # The warehouse versions a customer (SCD2) when its address changes: another
        # address, or the same address with corrected attributes.
        row = stored[2]
        address = addresses.get((str(row["address_id"]),))
        version = json.dumps([row["address_id"], _address_attributes(address)])
        seen = progress.address_versions.setdefault(customer_id, [])
        if not seen or seen[-1] != version:
            seen.append(version)
    return {"date": today.isoformat(), "tables": tables}


def _truth_document(config: GenerateConfig, progress: _Progress) -> dict[str, Any]:
    final = progress.truth.tables[STORE_CUSTOMER.name]
    address_versions = progress.address_versions
    return {
        "config": asdict(config) | {"start_date": config.start_date.isoformat()},
        "layout": f"{RAW_DIR}/<table>/ingest_date=YYYY-MM-DD/{PART_FILE}",
        "days": progress.days,
        "distinct_customers": len(final),
        "address_versions_total": sum(len(v) for v in address_versions.values()),
        "customers_with_moves": sum(1 for v in address_versions.values() if len(v) > 1),
        # Only movers are listed; every other customer has exactly one address version.
        "address_versions": {k: len(v) for k, v in sorted(address_versions.items()) if len(v) > 1},
        "final_customer_address": {k[0]: v[2]["address_id"] for k, v in sorted(final.items())},
        "final_customer_datetime": {k[0]: format_timestamp(v[0]) for k, v in sorted(final.items())},
    }


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
        shown = "" if default is None else " (default %(default)s)"  # None: its text says
        parser.add_argument(flag, type=type_, default=default, help=f"{help_text}{shown}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        options = {k: v for k, v in vars(args).items() if k not in ("out", "max_days")}
        config = GenerateConfig(**options)

        def on_day(index: int) -> None:  # progress on stderr: a big day takes a minute
            day = config.start_date + timedelta(days=index)
            print(
                f"generating {day.isoformat()} (day {index + 1} of {config.days})",
                file=sys.stderr,
                flush=True,
            )

        truth = generate(config, args.out, day_limit=args.max_days, on_day=on_day)
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
