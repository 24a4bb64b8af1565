"""Wall time of local nights at the default sample size: work versus orchestration overhead.

Runs ``python -m flows.nightly`` (the README's first command) in fresh processes on a new
data dir, for ``--nights`` nights, and splits each night:

- work: per layer of the pipeline, the longest step's own duration (Glue run time, the
  statement's Duration in the database), summed over layers;
- flow overhead: the pipeline's wall time minus that work (Prefect task runs, polling,
  API round trips, the summary's own queries);
- process overhead: the process's wall time minus the pipeline's (Python start-up, the
  local Prefect server, starting the local stack, sample data, migrations).

Each clean step is split too: its Glue ExecutionTime (whole seconds) against the job's own
time from its report (``elapsed_seconds``, and the commit phase inside it); the rest is
start-up (waiting for the warm driver, script set-up, the endpoint's catalog refresh).
The 1-minute load average before each night is printed with it: the machine is shared.

The first ``--nights`` nights are standalone (each starts and stops its own stack; the
first starts the data dir's Prefect server and leaves it running, later ones reuse it);
then ``python -m local up`` starts the stack once (its time is printed) and ``--attached``
more nights attach to it; ``python -m local down`` ends it and the Prefect server.
Prefect settings of the caller are dropped, so the local Prefect server is what is measured.

``--cpu-burners N`` keeps N busy-looping processes running throughout (issue 12: the
README's first command must pass on a loaded machine; a night that fails prints its output
and the bench exits 1).

Usage: uv run python bench/bench_nightly.py [--nights 2] [--attached 1]
       [--customers N --sales-per-day N] [--cpu-burners N]
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


def clean_split(data_dir: Path, summary: dict[str, Any]) -> str:
    """``step total = job (commit) + start-up`` per clean step, from the summary and the
    job's reports (``<data dir>/reports/<date>/<step>.json``)."""
    parts = []
    for step in summary["steps"]:
        report_file = data_dir / "reports" / summary["logical_date"] / f"{step['name']}.json"
        if step["kind"] != "glue" or not report_file.exists():
            continue
        report = json.loads(report_file.read_text())
        total, job = float(step["duration_seconds"]), float(report["elapsed_seconds"])
        commit = float(report.get("phase_seconds", {}).get("commit", 0.0))
        name = step["name"].removeprefix("clean_store_")
        # ExecutionTime is whole seconds, so a quick start-up can come out below zero
        startup = f"{total - job:.1f}" if total >= job else "<1"
        parts.append(f"{name} {total:.0f}s = job {job:.1f} (commit {commit:.1f}) + {startup}")
    return "  clean: " + "; ".join(parts) if parts else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nights", type=int, default=2, help="standalone nights first")
    parser.add_argument("--attached", type=int, default=1, help="then nights with the stack up")
    parser.add_argument("--customers", type=int, help="sample size (default: the generator's)")
    parser.add_argument("--sales-per-day", type=int)
    parser.add_argument(
        "--cpu-burners", type=int, default=0, help="busy-looping processes to load the machine"
    )
    args = parser.parse_args()
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(args.cpu_burners)
    ]
    data_dir = Path(tempfile.mkdtemp(prefix="bench-nightly-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MYSTORE_"))}
    env.pop("AWS_ENDPOINT_URL_REDSHIFT_DATA", None)
    if args.customers:
        env["MYSTORE_LOCAL_CUSTOMERS"] = str(args.customers)
    if args.sales_per_day:
        env["MYSTORE_LOCAL_SALES_PER_DAY"] = str(args.sales_per_day)
    print(
        f"{'night':<12}{'mode':<11}{'process':>9}{'pipeline':>10}{'work':>8}{'flow ovh':>10}"
        f"{'per step':>10}{'share':>8}{'load':>7}"
    )
    try:
        modes = ["standalone"] * args.nights + ["attached"] * args.attached
        for index, mode in enumerate(modes):
            if mode == "attached" and index == args.nights:
                up_started = time.monotonic()
                up = subprocess.run(
                    [sys.executable, "-m", "local", "up", "--data-dir", str(data_dir)],
                    cwd=REPO,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if up.returncode != 0:
                    print(up.stdout[-3000:], up.stderr[-3000:])
                    return 1
                print(f"{'local up':<12}{'':<11}{time.monotonic() - up_started:>8.1f}s")
            summary_path = data_dir / "summary.json"
            load = os.getloadavg()[0]
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
                f"{summary['logical_date']:<12}{mode:<11}{process_wall:>8.1f}s{pipeline_wall:>9.1f}s"
                f"{work:>7.1f}s{overhead:>9.1f}s{overhead / steps:>9.2f}s"
                f"{overhead / pipeline_wall:>7.1%}{load:>7.2f}"
            )
            print(clean_split(data_dir, summary))
    finally:
        for burner in burners:
            burner.kill()
        subprocess.run(
            [sys.executable, "-m", "local", "down", "--data-dir", str(data_dir)],
            cwd=REPO,
            capture_output=True,
            check=False,
        )
        shutil.rmtree(data_dir, ignore_errors=True)
    print(
        "process = whole command; pipeline = the flow's steps; work = longest step per layer;"
        " flow ovh = pipeline - work; share = flow ovh / pipeline; load = 1-min load average"
        " before the night; clean: Glue ExecutionTime = the job's own time (its commit)"
        " + start-up"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
