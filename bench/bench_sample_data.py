"""Sample data generation: seconds and peak memory per size, one child process per size.

The nights generate their raw data with ``local.sample_data`` (one day a night, the
generator's state saved between them), so its time and memory bound what
``MYSTORE_LOCAL_SALES_PER_DAY`` / ``MYSTORE_LOCAL_CUSTOMERS`` can be on a laptop. Each size
runs in a fresh ``python -m local.sample_data`` and reports the child's wall seconds and
peak resident memory (``ru_maxrss``); ``per 1k`` is peak memory per thousand rows a day of
the size's varied table.

Run: uv run --locked python bench/bench_sample_data.py [--sales 100000,1000000]
     [--customers 100000] [--days 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _run(out: Path, customers: int, sales: int, days: int) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB and bytes written of one generator run."""
    argv = [sys.executable, "-m", "local.sample_data", "--out", str(out), "--days", str(days)]
    argv += ["--customers", str(customers), "--sales-per-day", str(sales)]
    started = time.perf_counter()
    child = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)  # the child's own peak, not this process's
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"generator failed for {customers} customers, {sales} sales/day")
    written = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return seconds, usage.ru_maxrss / 1024, written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sales", default="100000,1000000", help="sales/day sizes, comma-separated"
    )
    parser.add_argument("--customers", default="100000", help="customer sizes, comma-separated")
    parser.add_argument("--days", type=int, default=1)
    args = parser.parse_args()
    sizes = [(1000, int(s), "sales") for s in args.sales.split(",") if s]
    sizes += [(int(c), 10, "customers") for c in args.customers.split(",") if c]
    print(
        f"{'customers':>10} {'sales/day':>10} {'days':>4} {'wall s':>7} {'peak MB':>8} "
        f"{'per 1k MB':>9} {'written MB':>10}"
    )
    for customers, sales, varied in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-sample-") as tmp:
            seconds, peak, written = _run(Path(tmp) / "sample", customers, sales, args.days)
        rows = sales if varied == "sales" else customers
        print(
            f"{customers:>10,} {sales:>10,} {args.days:>4} {seconds:>7.1f} {peak:>8.0f} "
            f"{peak / rows * 1000:>9.2f} {written / 2**20:>10.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
