"""Cost of "latest version of 1,000 customers" after 1, 10 and 30 nights of updates.

Why: the clean table is upserted by key, so a lookup reads one row per customer however
many nights have passed; the append-only history table it replaces grows every night, and
the lookup must scan it and pick the newest version per customer. Both tables are built
here from the same generated nights: each night's raw customers go through the clean job's
transforms once, then are upserted into the clean table (the job's Delta sink) and
appended to the history table.

Each night's update history is what the generator produces (3% type-1 changes, 1% moves,
late and stale re-sends, duplicates); new customers are off by default so the key count
stays fixed and only the history differs between the nights measured.

With ``--format hudi`` the clean table is the one the Glue job writes: Apache Hudi 0.15
(the job's HudiSink and options: record key, event-time ordering, key-only index, cleaner
keeping 10 commits, unpartitioned) from Maven Central, read back with hudi-rs as the Spectrum stand-in
reads it; the append-only history stays the contrast. Bytes on disk of each table are
printed at every checkpoint (10 vs 30 nights shows the cleaner bounding the Hudi table).

Run: uv run --locked python bench/bench_customer_lookup.py [--customers 100000] [--nights 30]
     [--new-customer-share 0.005] [--format delta|hudi]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from glue.contract import STORE_CUSTOMER
from glue.sinks import DeltaSink, HudiSink, to_arrow
from glue.transforms import SESSION_CONF, clean_batch, raw_schema
from local.sample_data import GenerateConfig, generate, raw_partition

LOOKUPS = 1000
REPEATS = 25
CHECKPOINTS = (1, 10, 30)
CLEAN = "clean (upsert)"
CLEAN_BY_DATE = "clean, files by date"
HISTORY = "history (append-only)"
CLEAN_HUDI = "clean (Hudi upsert)"


def hudi_snapshot(path: str, columns: list[str] | None = None) -> pa.Table:
    from hudi import HudiTableBuilder

    batches = HudiTableBuilder.from_base_uri(path).build().read()
    table = pa.Table.from_batches(batches) if batches else pa.table({})
    return table.select(columns) if columns else table


def snapshot_of(path: str, columns: list[str] | None = None) -> pa.Table:
    if (Path(path) / ".hoodie").is_dir():
        return hudi_snapshot(path, columns)
    return DeltaTable(path).to_pyarrow_table(columns=columns)


def bytes_on_disk(path: str) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def data_files(path: str) -> int:
    return sum(1 for p in Path(path).rglob("*.parquet") if ".hoodie" not in p.parts)


def lookup_clean(path: str, ids: pa.Array) -> pa.Table:
    snapshot = snapshot_of(path)
    return snapshot.filter(pc.is_in(snapshot.column("customer_id"), value_set=ids))


def lookup_history(path: str, ids: pa.Array) -> pa.Table:
    """Every version of the customers, then the newest per customer (what SCD readers do)."""
    snapshot = DeltaTable(path).to_pyarrow_table()
    versions = snapshot.filter(pc.is_in(snapshot.column("customer_id"), value_set=ids))
    ordered = versions.sort_by([("customer_id", "ascending"), ("customer_datetime", "descending")])
    keys = ordered.column("customer_id").to_pylist()
    first = [i for i, key in enumerate(keys) if i == 0 or keys[i - 1] != key]
    return ordered.take(pa.array(first))


def measure(
    snapshots: list[tuple[int, str, str]], ids: pa.Array
) -> list[tuple[int, str, float, float, int, int, int, int]]:
    """Round-robin over all snapshots, so load from other processes hits each one alike.

    Returns (night, table, median ms, min ms, rows found, table rows, files, bytes) per
    snapshot.
    """
    samples: dict[tuple[int, str], list[float]] = {(n, t): [] for n, t, _ in snapshots}
    found: dict[tuple[int, str], int] = {}
    for _ in range(REPEATS):
        for night, name, path in snapshots:
            fn = lookup_history if name == HISTORY else lookup_clean
            start = time.perf_counter()
            result = fn(path, ids)
            samples[night, name].append((time.perf_counter() - start) * 1000)
            found[night, name] = result.num_rows
    rows = []
    for night, name, path in snapshots:
        total = snapshot_of(path, ["customer_id"]).num_rows
        times = samples[night, name]
        rows.append(
            (
                night,
                name,
                statistics.median(times),
                min(times),
                found[night, name],
                total,
                data_files(path),
                bytes_on_disk(path),
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--nights", type=int, default=30)
    parser.add_argument("--new-customer-share", type=float, default=0.0)
    parser.add_argument("--format", choices=("delta", "hudi"), default="delta")
    args = parser.parse_args()

    from pyspark.sql import SparkSession

    if args.format == "hudi":
        from glue.local_spark import local_spark

        spark = local_spark("bench", "lookup", "hudi", "0.15", None)
        for key, value in SESSION_CONF.items():
            spark.conf.set(key, value)
    else:
        builder = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
        builder = builder.config("spark.ui.showConsoleProgress", "false")
        builder = builder.config("spark.sql.shuffle.partitions", "2").config(
            "spark.driver.memory", "2g"
        )
        for key, value in SESSION_CONF.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")

    work = Path(tempfile.mkdtemp(prefix="bench-lookup-"))
    started = time.perf_counter()
    # No new customers: the number of keys stays fixed, so the only thing that grows is the
    # update history (type-1 changes, moves, late and stale re-sends). --new-customer-share
    # puts customer-base growth back in, which makes both tables larger.
    config = GenerateConfig(
        days=args.nights,
        customers=args.customers,
        sales_per_day=0,
        seed=5,
        new_customer_share=args.new_customer_share,
    )
    truth = generate(config, work / "sample")
    print(
        f"generated {args.nights} nights for {args.customers} customers in {time.perf_counter() - started:.1f} s"
    )

    clean_path, history_path = str(work / "clean"), str(work / "history")
    dated_path = str(work / "clean_by_date")
    sink = DeltaSink(clean_path, STORE_CUSTOMER)
    dated_sink = DeltaSink(dated_path, STORE_CUSTOMER, partitioned=True)
    hudi_sink = HudiSink(spark, clean_path, STORE_CUSTOMER, version="0.15")
    tables = (
        ((CLEAN_HUDI, clean_path), (HISTORY, history_path))
        if args.format == "hudi"
        else ((CLEAN, clean_path), (CLEAN_BY_DATE, dated_path), (HISTORY, history_path))
    )
    # Customers of the day-1 load, so every lookup finds its 1,000 rows from night 1 on.
    day_one = range(1, args.customers + 1)
    ids = pa.array(sorted(f"CCCC{n:08d}" for n in random.Random(1).sample(day_one, LOOKUPS)))
    snapshots: list[tuple[int, str, str]] = []
    build_started = time.perf_counter()
    for night, day in enumerate(truth["days"], start=1):
        raw_dir = str(raw_partition(work / "sample" / "raw", "store_customer", day["date"]))
        raw = spark.read.schema(raw_schema(STORE_CUSTOMER)).json(raw_dir)
        clean = clean_batch(raw, STORE_CUSTOMER, datetime(2026, 12, 1)).clean.cache()
        rows = to_arrow(clean, STORE_CUSTOMER)
        if args.format == "hudi":
            hudi_sink.write(clean, "initial" if night == 1 else "incremental")
        else:
            sink.write_arrow(rows, "incremental")
            dated_sink.write_arrow(rows, "incremental")
        clean.unpersist()
        # One append per night, as a history table partitioned by load date would get.
        write_deltalake(history_path, rows, mode="append")
        if night in CHECKPOINTS:
            for name, path in tables:
                copy = work / "snapshots" / f"night{night}" / Path(path).name
                shutil.copytree(path, copy)
                snapshots.append((night, name, str(copy)))
    build = time.perf_counter() - build_started
    results = measure(snapshots, ids)
    # Stop Spark only after the last deltalake call: the other order aborts the
    # interpreter at exit ("terminate called without an active exception").
    spark.stop()

    print(
        f"built both tables over {args.nights} nights in {build:.1f} s; lookups of {LOOKUPS} customers, {REPEATS} rounds over all snapshots"
    )
    print()
    print(
        f"{'nights':>6}  {'table':<22} {'median ms':>10} {'min ms':>8} {'found':>6} {'table rows':>11} {'files':>6} {'MB on disk':>11}"
    )
    for night, name, median, fastest, found, total, files, size in results:
        print(
            f"{night:>6}  {name:<22} {median:>10.1f} {fastest:>8.1f} {found:>6} {total:>11} {files:>6} {size / 1e6:>11.2f}"
        )
    print()
    for name, _ in tables:
        series = {n: (median, fastest) for n, t, median, fastest, *_ in results if t == name}
        first, last = series[min(series)], series[max(series)]
        print(
            f"{name:<22} night {max(series)} / night {min(series)}: "
            f"median {last[0] / first[0]:.2f}x, min {last[1] / first[1]:.2f}x"
        )
    clean_name = tables[0][0]
    clean = [median for _, t, median, *_ in results if t == clean_name]
    verdict = "within" if clean[-1] <= 1.2 * clean[0] else "NOT within"
    print(
        f"{clean_name} median lookup after {max(CHECKPOINTS)} nights is {verdict} 1.2x of night 1"
    )
    sizes = {n: size for n, t, *_, size in results if t == clean_name}
    if 10 in sizes and max(sizes) > 10:
        print(
            f"{clean_name} bytes on disk: night {max(sizes)} {sizes[max(sizes)]:,} vs night 10 "
            f"{sizes[10]:,} ({sizes[max(sizes)] / sizes[10]:.2f}x)"
        )
    print(f"(work dir: {work})")


if __name__ == "__main__":
    main()
