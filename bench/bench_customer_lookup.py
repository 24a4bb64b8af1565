"""Cost of "latest version of 1,000 customers" after 1, 10 and 30 nights of updates.

Why: the clean table is upserted by key, so a lookup reads one row per customer however
many nights have passed; the append-only history table it replaces grows every night, and
the lookup must scan it and pick the newest version per customer. Both tables are built
here from the same generated nights: each night's raw customers go through the clean job's
transforms once, then are upserted into the clean table (the job's Delta sink) and
appended to the history table.

Run: uv run --locked python bench/bench_customer_lookup.py [--customers 100000] [--nights 30]
"""

from __future__ import annotations

import argparse
import random
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
from glue.sinks import DeltaSink, to_arrow
from glue.transforms import SESSION_CONF, clean_batch, raw_schema
from local.generate import GenerateConfig, generate, raw_partition

LOOKUPS = 1000
REPEATS = 15
CHECKPOINTS = (1, 10, 30)


def lookup_clean(path: str, ids: pa.Array) -> pa.Table:
    snapshot = DeltaTable(path).to_pyarrow_table()
    return snapshot.filter(pc.is_in(snapshot.column("customer_id"), value_set=ids))


def lookup_history(path: str, ids: pa.Array) -> pa.Table:
    """Every version of the customers, then the newest per customer (what SCD readers do)."""
    snapshot = DeltaTable(path).to_pyarrow_table()
    versions = snapshot.filter(pc.is_in(snapshot.column("customer_id"), value_set=ids))
    ordered = versions.sort_by([("customer_id", "ascending"), ("customer_datetime", "descending")])
    keys = ordered.column("customer_id").to_pylist()
    first = [i for i, key in enumerate(keys) if i == 0 or keys[i - 1] != key]
    return ordered.take(pa.array(first))


def timed(fn: object, *args: object) -> tuple[float, int, int]:
    """Median milliseconds over REPEATS, rows returned, and files in the snapshot."""
    samples = []
    rows = 0
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = fn(*args)  # type: ignore[operator]
        samples.append((time.perf_counter() - start) * 1000)
        rows = result.num_rows
    return statistics.median(samples), rows, len(DeltaTable(str(args[0])).file_uris())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--nights", type=int, default=30)
    args = parser.parse_args()

    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
    builder = builder.config("spark.sql.shuffle.partitions", "2").config(
        "spark.driver.memory", "2g"
    )
    for key, value in SESSION_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")

    work = Path(tempfile.mkdtemp(prefix="bench-lookup-"))
    started = time.perf_counter()
    config = GenerateConfig(days=args.nights, customers=args.customers, sales_per_day=0, seed=5)
    truth = generate(config, work / "sample")
    print(
        f"generated {args.nights} nights for {args.customers} customers in {time.perf_counter() - started:.1f} s"
    )

    clean_path, history_path = str(work / "clean"), str(work / "history")
    sink = DeltaSink(clean_path, STORE_CUSTOMER)
    # Customers of the day-1 load, so every lookup finds its 1,000 rows from night 1 on.
    day_one = range(1, args.customers + 1)
    ids = pa.array(sorted(f"CCCC{n:08d}" for n in random.Random(1).sample(day_one, LOOKUPS)))
    results: list[tuple[int, str, float, int, int, int]] = []
    build_started = time.perf_counter()
    for night, day in enumerate(truth["days"], start=1):
        raw_dir = str(raw_partition(work / "sample", "store_customer", day["date"]))
        raw = spark.read.schema(raw_schema(STORE_CUSTOMER)).json(raw_dir)
        rows = to_arrow(
            clean_batch(raw, STORE_CUSTOMER, datetime(2026, 12, 1)).clean, STORE_CUSTOMER
        )
        sink.write_arrow(rows, "incremental")
        write_deltalake(history_path, rows, partition_by=["customer_date"], mode="append")
        if night in CHECKPOINTS:
            for name, fn, path in (
                ("clean (upsert)", lookup_clean, clean_path),
                ("history (append-only)", lookup_history, history_path),
            ):
                ms, found, files = timed(fn, path, ids)
                total = DeltaTable(path).to_pyarrow_table(columns=["customer_id"]).num_rows
                results.append((night, name, ms, found, total, files))
    build = time.perf_counter() - build_started
    spark.stop()

    print(
        f"built both tables over {args.nights} nights in {build:.1f} s; lookups of {LOOKUPS} customers, median of {REPEATS}"
    )
    print()
    print(
        f"{'nights':>6}  {'table':<22} {'lookup ms':>10} {'found':>6} {'table rows':>11} {'files':>6}"
    )
    for night, name, ms, found, total, files in results:
        print(f"{night:>6}  {name:<22} {ms:>10.1f} {found:>6} {total:>11} {files:>6}")
    print()
    for name in ("clean (upsert)", "history (append-only)"):
        series = {n: ms for n, t, ms, *_ in results if t == name}
        first, last = series[min(series)], series[max(series)]
        print(f"{name}: night {max(series)} / night {min(series)} = {last / first:.2f}x")
    clean_ratio = [ms for n, t, ms, *_ in results if t == "clean (upsert)"]
    verdict = "within" if clean_ratio[-1] <= 1.2 * clean_ratio[0] else "NOT within"
    print(f"clean lookup after {max(CHECKPOINTS)} nights is {verdict} 1.2x of night 1")
    print(f"(work dir: {work})")


if __name__ == "__main__":
    main()
