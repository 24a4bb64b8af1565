"""Clean-job throughput on local Spark for 1M sales rows: rows/s and wall time.

Runs ``glue/raw2clean.py`` the way the local Glue service does (a child process with Glue
style arguments) on generated raw sales: night 1 is the initial load into an empty table,
night 2 an incremental upsert of another night into the loaded table. ``job s`` is the
job's own time (read to commit, from its report); ``wall s`` adds Python and JVM start-up.

Run: uv run --locked python bench/bench_clean_job.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from local.sample_data import GenerateConfig, generate

REPO = Path(__file__).resolve().parent.parent
START = date(2026, 11, 1)


def run_job(work: Path, day: date) -> tuple[dict[str, Any], float]:
    report_path = work / "reports" / f"store_sale-{day}.json"
    argv = [
        sys.executable, str(REPO / "glue" / "raw2clean.py"),
        "--JOB_NAME", "raw2clean",
        "--table", "store_sale",
        "--raw_path", str(work / "sample" / "raw"),
        "--clean_path", str(work / "clean"),
        "--quarantine_path", str(work / "quarantine"),
        "--logical_date", day.isoformat(),
        "--report_path", str(report_path),
    ]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=os.environ.copy(), check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"clean job failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(report_path.read_text()), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="sale rows per night")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-clean-"))
    started = time.perf_counter()
    config = GenerateConfig(
        days=2, customers=10_000, sales_per_day=args.rows, seed=3, start_date=START
    )
    generate(config, work / "sample")
    print(f"generated 2 nights of {args.rows:,} sale rows in {time.perf_counter() - started:.1f} s")
    print(
        f"spark master {os.environ.get('MYSTORE_SPARK_MASTER', 'local[2]')}, {os.cpu_count()} cpu(s)"
    )
    print()
    header = f"{'night':<16} {'rows read':>10} {'quarant.':>9} {'dupes':>7} {'written':>10} {'job s':>7} {'wall s':>7} {'rows/s (job)':>13} {'rows/s (wall)':>14}"
    print(header)
    for night in range(2):
        report, wall = run_job(work, START + timedelta(days=night))
        rows, job = int(report["rows_read"]), float(report["elapsed_seconds"])
        label = f"{night + 1} ({report['load_type']})"
        print(
            f"{label:<16} {rows:>10,} {report['rows_quarantined']:>9,} {report['duplicates_dropped']:>7,} "
            f"{report['rows_written']:>10,} {job:>7.1f} {wall:>7.1f} {rows / job:>13,.0f} {rows / wall:>14,.0f}"
        )
        phases = ", ".join(f"{k} {v:.1f}" for k, v in report["phase_seconds"].items())
        print(f"{'':<16} phases (s): {phases}")
    print(f"(work dir: {work})")


if __name__ == "__main__":
    main()
