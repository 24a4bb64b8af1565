"""Where the test suite waits: each test's wall time against the machine's busy CPU time,
with the tests run one at a time.

``bench/bench_suite_cpu.py`` says where the suite's CPU goes; this says where it does not.
On 2 cores the README's command ran two xdist workers, and whenever both waited at once
(a sleep, a poll interval, a retry's backoff, a child process starting) a core idled: a
quarter of the two cores in the thirteenth round (docs/performance.md), which is why it
runs three now. Run serially, a test's wall seconds minus the machine's busy CPU-seconds
while it ran is the time it left a core idle ("waited"); a test that keeps more than one
core busy (a Spark JVM, a child process beside the worker) shows less than it waited, never
more, so the list is a lower bound on each test's waits.

The bench is its own pytest plugin: it runs ``uv run --locked pytest -p bench_suite_waits``
with this directory on PYTHONPATH, and each test's numbers go to a JSON-lines file (one
object per test: ``id``, ``wall``, ``busy``), printed as totals, then the tests and the
modules that waited most.

Usage: uv run --locked python bench/bench_suite_waits.py [--top 25] [--keep FILE]
       [-- pytest arguments (default: -m "not spark", the tests outside the Spark group)]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

# bench/ is on the path both ways this file runs: as a script (its own directory) and as
# pytest's plugin (PYTHONPATH, set below).
from bench_suite_cpu import busy_seconds

REPO = Path(__file__).resolve().parent.parent
OUT_ENV = "BENCH_SUITE_WAITS_OUT"
# The Spark group's tests keep a JVM's threads busy beside the worker: their busy time can
# exceed their wall time and hide their waits, so by default the bench leaves them out.
DEFAULT_PYTEST_ARGS = ["-m", "not spark"]


# ------------------------------------------------------------------ the pytest plugin side


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    """Times one test (setup, call, teardown) when the bench asked for it."""
    out = os.environ.get(OUT_ENV)
    busy, started = busy_seconds(), time.monotonic()
    result = yield
    if out:
        row = {
            "id": item.nodeid,
            "wall": time.monotonic() - started,
            "busy": busy_seconds() - busy,
        }
        with open(out, "a") as file:
            file.write(json.dumps(row) + "\n")
    return result


# ------------------------------------------------------------------------- the bench side


def waited(row: dict[str, Any]) -> float:
    return max(0.0, float(row["wall"]) - float(row["busy"]))


def report(rows: list[dict[str, Any]], top: int) -> None:
    wall = sum(float(r["wall"]) for r in rows)
    busy = sum(float(r["busy"]) for r in rows)
    waits = sum(waited(r) for r in rows)
    print(
        f"\n{len(rows)} tests: {wall:.1f} s of tests, {busy:.1f} busy CPU-s,"
        f" {waits:.1f} s waited ({waits / max(wall, 1e-9):.0%} of their time)"
    )
    print(f"\n{'waited':>7} {'wall':>7} {'busy':>7}  test (top {top})")
    for row in sorted(rows, key=waited, reverse=True)[:top]:
        print(f"{waited(row):7.1f} {row['wall']:7.1f} {row['busy']:7.1f}  {row['id']}")
    modules: dict[str, list[float]] = {}
    for row in rows:
        totals = modules.setdefault(row["id"].split("::")[0], [0.0, 0.0, 0.0])
        totals[0] += waited(row)
        totals[1] += float(row["wall"])
        totals[2] += float(row["busy"])
    print(f"\n{'waited':>7} {'wall':>7} {'busy':>7}  module (top {top})")
    for module, (w, t, b) in sorted(modules.items(), key=lambda item: -item[1][0])[:top]:
        print(f"{w:7.1f} {t:7.1f} {b:7.1f}  {module}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=25, help="tests and modules to list")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="FILE",
        help="write the per-test JSON lines to FILE (replaced if it exists)",
    )
    parser.add_argument("pytest_args", nargs="*", help='after --; default -m "not spark"')
    args = parser.parse_args()
    if args.top < 1:
        parser.error(f"--top {args.top} must be at least 1")
    if any(a.startswith(("-n", "--numprocesses")) for a in args.pytest_args):
        parser.error("the tests must run one at a time (no -n): waits are read machine-wide")
    with tempfile.TemporaryDirectory(prefix="bench-suite-waits-") as temp:
        out = args.keep or Path(temp) / "waits.jsonl"
        out.unlink(missing_ok=True)
        env = os.environ | {
            OUT_ENV: str(out),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")])
            ),
        }
        command = [
            *("uv", "run", "--locked", "pytest", "-p", "bench_suite_waits", "-q"),
            *(args.pytest_args or DEFAULT_PYTEST_ARGS),
        ]
        print(f"running: {shlex.join(command)}", flush=True)
        done = subprocess.run(command, cwd=REPO, env=env, check=False)
        rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    if not rows:
        print(f"no test was timed (pytest exited {done.returncode})", file=sys.stderr)
        return done.returncode or 1
    report(rows, args.top)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
