"""The clean layer of a local night: warm Spark driver vs a child process per run, Hudi vs Delta.

A night's clean layer is the three clean runs (store_customer, store_customer_address,
store_sale) started together through the local Glue service, as the nightly flow starts
them. For each table format and each way of running (``warm``: the runs share a warm
Spark driver, kept between nights; ``cold``: each run a child process with its own JVM, as
before the warm driver), nights 1 and 2 run on a fresh copy of the same generated sample
(default sample size: 1,000 customers, 2,000 sales a night).

Per run: ``wall`` is StartJobRun to the terminal state as the flow sees it, ``work`` is the
job's own time (read to commit, from its RAW2CLEAN_REPORT), ``start-up`` the rest (Python
and JVM start, Ivy, session, script import). The night's wall time is the layer's: start
of the first run to the end of the last.

Run: uv run --locked python bench/bench_local_glue.py [--formats hudi,delta] [--modes warm,cold]
     [--customers 1000 --sales-per-day 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from local.glue_jobs import GlueService, default_jobs
from local.glue_jobs.requests import StartRequest
from local.glue_jobs.runs import RunRecord
from local.sample_data import GenerateConfig, generate

TABLES = ("store_customer", "store_customer_address", "store_sale")
REPORT_PREFIX = "RAW2CLEAN_REPORT "


def report_of(run: RunRecord) -> dict[str, Any]:
    log = (Path(run.log_group) / f"{run.id}.log").read_text()
    lines = [line for line in log.splitlines() if line.startswith(REPORT_PREFIX)]
    return dict(json.loads(lines[-1].removeprefix(REPORT_PREFIX))) if lines else {}


def night(service: GlueService, date: str) -> tuple[float, list[tuple[str, float, float]]]:
    """(layer wall seconds, [(table, wall, work)]) for one night's three runs."""
    started = time.monotonic()
    runs = {
        table: service.backend.start(
            StartRequest(
                "raw2clean",
                {"--table": table, "--logical_date": date},
                None,
                None,
                None,
                None,
                None,
            )
        )
        for table in TABLES
    }
    ended: dict[str, float] = {}
    while len(ended) < len(runs):
        for table, run in runs.items():
            if table not in ended and not run.active:
                ended[table] = time.monotonic()
        time.sleep(0.05)
    steps = []
    for table, run in runs.items():
        if run.state != "SUCCEEDED":
            raise SystemExit(f"{table} {run.state}: {run.error_message}")
        work = float(report_of(run).get("elapsed_seconds", 0.0))
        steps.append((table, ended[table] - started, work))
    return max(ended.values()) - started, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--formats", default="hudi,delta")
    parser.add_argument("--modes", default="warm,cold")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--sales-per-day", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-local-glue-"))
    truth = generate(
        GenerateConfig(days=2, customers=args.customers, sales_per_day=args.sales_per_day),
        work / "sample",
    )
    dates = [d["date"] for d in truth["days"]]
    print(
        f"{os.cpu_count()} cpu(s), load average {os.getloadavg()[0]:.1f} at start; "
        f"{args.customers:,} customers, {args.sales_per_day:,} sales a night"
    )
    print(
        f"{'format':<6} {'mode':<5} {'night':>5} {'layer s':>8}   per run: wall / work / start-up s"
    )
    for table_format in args.formats.split(","):
        for mode in args.modes.split(","):
            data_dir = work / f"{table_format}-{mode}"
            shutil.copytree(work / "sample" / "raw", data_dir / "raw")
            env = {**os.environ, "MYSTORE_LOCAL_TABLE_FORMAT": table_format}
            service = GlueService(
                default_jobs(data_dir, None),
                log_dir=data_dir / "logs",
                environ=env,
                warm_spark=mode == "warm",
            )
            try:
                for number, date in enumerate(dates, start=1):
                    wall, steps = night(service, date)
                    detail = "  ".join(
                        f"{t.removeprefix('store_')} {w:.1f}/{k:.1f}/{w - k:.1f}"
                        for t, w, k in steps
                    )
                    print(
                        f"{table_format:<6} {mode:<5} {number:>5} {wall:>8.1f}   {detail}",
                        flush=True,
                    )
            finally:
                service.close()
    print(f"load average {os.getloadavg()[0]:.1f} at the end; work dir {work}")


if __name__ == "__main__":
    main()
