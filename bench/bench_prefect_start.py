"""How long a data dir's Prefect server takes to answer, and the CPU it spends getting there.

Starts ``python -m local.prefect_server`` (the server a night or ``local up`` starts) on a
throwaway home, waits for ``/api/health``, and reads the CPU time of its process tree at
that moment; then stops it. Modes, alternated run by run so that the hour affects each alike:

- ``new``: a new data dir (its database a copy of the template, blocks registered in it,
  so the server skips Prefect's block registration);
- ``register``: the same, with ``PREFECT_API_BLOCKS_REGISTER_ON_START=true`` (the user's
  setting wins): Prefect imports every collection and registers their blocks, as every
  new data dir's server did before the template held them;
- ``existing``: the ``new`` server's data dir started again (its database holds all of
  the template's blocks, so the server skips the registration again).

    uv run --locked python bench/bench_prefect_start.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
MODES = ("new", "register", "existing")
START_TIMEOUT_SECONDS = 180


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tree_cpu(process: psutil.Process, seen: dict[int, float]) -> float:
    """CPU seconds of ``process`` and its children, remembering those that ended."""
    for member in [process, *process.children(recursive=True)]:
        try:
            times = member.cpu_times()
        except psutil.Error:
            continue
        seen[member.pid] = times.user + times.system
    return sum(seen.values())


def start_once(home: Path, extra: dict[str, str]) -> tuple[float, float]:
    """Wall seconds until the server answers, and its CPU seconds by then."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MYSTORE_"))}
    env.update(
        PREFECT_HOME=str(home),
        PYTHONPATH=str(REPO),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        **extra,
    )
    if cache := os.environ.get("MYSTORE_CACHE_DIR"):
        env["MYSTORE_CACHE_DIR"] = cache
    started = time.monotonic()
    with (home / "server.log").open("ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "local.prefect_server", "--port", str(port)],
            cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    seen: dict[int, float] = {}
    try:
        tree = psutil.Process(server.pid)
        while True:
            cpu = _tree_cpu(tree, seen)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1):
                    return time.monotonic() - started, _tree_cpu(tree, seen)
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() - started > START_TIMEOUT_SECONDS:
                raise SystemExit(f"the server did not answer ({cpu:.1f} CPU-s); see {log.name}")
            time.sleep(0.05)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="starts per mode (default 5)")
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES)
    )
    args = parser.parse_args()
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    if unknown := sorted(set(modes) - set(MODES)):
        parser.error(f"unknown modes {unknown}; allowed: {', '.join(MODES)}")
    results: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
    for run in range(1, args.runs + 1):
        root = Path(tempfile.mkdtemp(prefix="bench-prefect-start-"))
        try:
            for mode in modes:
                home = root / ("new" if mode == "existing" else mode)
                home.mkdir(exist_ok=True)
                if mode == "existing" and not (home / "prefect.db").exists():
                    start_once(home, {})  # the data dir that is started again
                extra = (
                    {"PREFECT_API_BLOCKS_REGISTER_ON_START": "true"} if mode == "register" else {}
                )
                wall, cpu = start_once(home, extra)
                results[mode].append((wall, cpu))
                print(
                    f"run {run} {mode:<9} answered after {wall:5.2f} s, {cpu:5.2f} CPU-s",
                    flush=True,
                )
        finally:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\nmedians of {args.runs} ({os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} now):")
    for mode, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(f"  {mode:<9} {wall:5.2f} s to answer, {cpu:5.2f} CPU-s")


if __name__ == "__main__":
    main()
