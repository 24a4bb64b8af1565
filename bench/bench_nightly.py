"""Wall time of local nights at the default sample size: work versus orchestration overhead.

Runs ``python -m flows.nightly`` (the README's first command) in fresh processes on a new
data dir, for ``--nights`` nights, and splits each night:

- work: per layer of the pipeline, the longest step's own duration (Glue run time, the
  statement's Duration in the database), summed over layers;
- flow overhead: the pipeline's wall time minus that work (Prefect task runs, polling,
  API round trips, the summary's own queries);
- process overhead: the process's wall time minus the pipeline's (Python start-up, the
  temporary Prefect server, starting the local stack, sample data, migrations).

Usage: uv run python bench/bench_nightly.py [--nights 2] [--customers N --sales-per-day N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from flows.pipeline import nightly_pipeline  # noqa: E402


def split(summary: dict[str, Any]) -> tuple[float, float, int]:
    """(work seconds, flow overhead seconds, steps) from one night's summary."""
    durations = {s["name"]: float(s["duration_seconds"]) for s in summary["steps"]}
    work = sum(
        max(durations.get(step.name, 0.0) for step in layer)
        for layer in nightly_pipeline().layers()
    )
    return work, float(summary["wall_seconds"]) - work, len(durations)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nights", type=int, default=2)
    parser.add_argument("--customers", type=int, help="sample size (default: the generator's)")
    parser.add_argument("--sales-per-day", type=int)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-nightly-"))
    env = dict(os.environ, PREFECT_SERVER_ANALYTICS_ENABLED="false")
    if args.customers:
        env["MYSTORE_LOCAL_CUSTOMERS"] = str(args.customers)
    if args.sales_per_day:
        env["MYSTORE_LOCAL_SALES_PER_DAY"] = str(args.sales_per_day)
    print(
        f"{'night':<12}{'process':>9}{'pipeline':>10}{'work':>8}{'flow ovh':>10}{'per step':>10}{'share':>8}"
    )
    try:
        for _ in range(args.nights):
            summary_path = data_dir / "summary.json"
            started = time.monotonic()
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "flows.nightly",
                    "--data-dir",
                    str(data_dir),
                    "--summary-json",
                    str(summary_path),
                ],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            process_wall = time.monotonic() - started
            if proc.returncode != 0:
                print(proc.stdout[-3000:], proc.stderr[-3000:])
                return 1
            summary = json.loads(summary_path.read_text())
            work, overhead, steps = split(summary)
            pipeline_wall = float(summary["wall_seconds"])
            print(
                f"{summary['logical_date']:<12}{process_wall:>8.1f}s{pipeline_wall:>9.1f}s"
                f"{work:>7.1f}s{overhead:>9.1f}s{overhead / steps:>9.2f}s"
                f"{overhead / pipeline_wall:>7.1%}"
            )
    finally:
        subprocess.run(
            [sys.executable, "-m", "local", "stop", "--data-dir", str(data_dir)],
            cwd=REPO,
            capture_output=True,
            check=False,
        )
        shutil.rmtree(data_dir, ignore_errors=True)
    print(
        "process = whole command; pipeline = the flow's steps; work = longest step per layer;"
        " flow ovh = pipeline - work; share = flow ovh / pipeline"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
