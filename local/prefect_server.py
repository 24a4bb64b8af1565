"""A Prefect server (API and UI) under the data dir, stopped with the stack that owns it.

Local runs talk to this server instead of Prefect's temporary one, so every local run,
standalone or attached to ``python -m local up``, lands in one SQLite database
(``<data dir>/prefect/prefect.db``) that a user can browse in the UI.

The server is ``python -m local.prefect_server``: Prefect's own ``prefect server start`` on
127.0.0.1, plus a watchdog thread that follows the owning process (pid *and* start time,
so a reused pid is not mistaken for it). When the owner dies, even by kill -9, the server
stops itself within about a second: nothing is orphaned for long, on Linux or macOS, and
no parent thread's lifetime matters (unlike ``PR_SET_PDEATHSIG``, which fires when the
thread that forked exits).

A standalone night starts the server *without* an owner and leaves it running, so the next
night (standalone or ``local up``) reuses it instead of waiting 10-30 s for a new one:
``<data dir>/prefect/server.json`` (pid, start time, port) says which process it is, and
``python -m local down`` stops it. Such a server stops itself when its data dir is deleted
(a throwaway data dir of a test or a bench leaves nothing behind).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.lease import wait_gone
from local.prefect_database import (
    DATABASE_FILE,
    prepare_database,
    skip_block_registration_when_done,
    template_path,
)
from local.processes import process_alive, start_time

PREFECT_DIRNAME = "prefect"
LOG_FILE = "server.log"
PORT_FILE = "port"
SERVER_FILE = "server.json"
# Measured on 2 idle cores: 33 s to a healthy first start (new database and migrations),
# 17 s on a restart (shared/research/prefect-suspend.md, section 1). A loaded laptop or CI
# runner is several times slower, hence the margin.
START_TIMEOUT_SECONDS = 240.0
STOP_GRACE_SECONDS = 20.0
WATCH_INTERVAL_SECONDS = 1.0
SLOT_RETRY_SECONDS = "0.5"
# Prefect's SQLite transactions read before they write, so a write that meets another
# writer's commit fails at once (SQLITE_BUSY_SNAPSHOT) instead of waiting; the server
# answers 503 and Prefect's client retries after 2 s unless told otherwise. The conflict is
# over in milliseconds: a night's first Glue start lease met one in most nights and waited
# 2.0-2.2 s for it. The local server tells its clients to retry after this instead.
LOCK_CONFLICT_RETRY_AFTER = "0.2"
REPO_ROOT = Path(__file__).resolve().parents[1]


class PrefectStartError(OSError):
    """The local Prefect server did not come up; the message says where its log is."""


def configured_api_url() -> str | None:
    """The Prefect API the user configured (environment or active profile), if any."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def flow_run_url(ui_url: str, flow_run_id: object) -> str:
    return f"{ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}"


def _port_free(port: int) -> bool:
    """Whether the server could listen on ``port``: probed with SO_REUSEADDR, as uvicorn
    binds, so connections of the last server still in TIME_WAIT do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def choose_port(home: Path, requested: int | None = None) -> int:
    """``requested``, else the port this data dir's server used last (so a flow-run URL
    printed by an earlier night keeps working), else a free one."""
    if requested:
        return requested
    with contextlib.suppress(OSError, ValueError):
        remembered = int((home / PORT_FILE).read_text())
        if _port_free(remembered):
            return remembered
    return _free_port()


def server_environment(home: Path, port: int) -> dict[str, str]:
    """The server's own settings: its home and database under the data dir, loopback, UI on,
    no analytics; none of the user's PREFECT_* settings (those point at *their* server)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    api_url = f"http://127.0.0.1:{port}/api"
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_SERVER_UI_ENABLED="true",
        PREFECT_UI_API_URL=api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # A caller refused a concurrency slot is told to retry after about the slot's mean
        # hold time, 2 s until measured (capped by this): the Glue start lease is held a few
        # hundred ms, so a night's third clean step waited 2-4 s for it. Retry sooner.
        PREFECT_SERVER_CONCURRENCY_MAXIMUM_CONCURRENCY_SLOT_WAIT_SECONDS=SLOT_RETRY_SECONDS,
        DO_NOT_TRACK="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
    )
    return env


@dataclass
class PrefectServer:
    """A server process; ``wait_healthy`` before use, ``stop`` when done.

    ``process`` is None for a server this process did not start (one a standalone night
    left running, reused); ``keep_running`` servers are left running by ``stop``.
    """

    port: int
    home: Path
    pid: int
    started: float | None = None
    process: subprocess.Popen[bytes] | None = None
    keep_running: bool = False

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.home / LOG_FILE

    @property
    def reused(self) -> bool:
        return self.process is None

    def exit_code(self) -> int | None:
        """The process's exit code once it ended (-1 for one not ours that is gone)."""
        if self.process is not None:
            return self.process.poll()
        return None if process_alive(self.pid, self.started) else -1

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=5) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_healthy(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Poll ``/api/health`` (the start banner comes before the API answers)."""
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if (code := self.exit_code()) is not None:
                raise PrefectStartError(self._failure(f"exited with code {code}"))
            if time.monotonic() >= deadline:
                self.stop(force=True)  # one that never answers is of no use to anyone
                raise PrefectStartError(self._failure(f"did not answer within {timeout:.0f} s"))
            time.sleep(0.5)

    def _failure(self, what: str) -> str:
        tail = ""
        with contextlib.suppress(OSError):
            lines = self.log_file.read_text(errors="replace").strip().splitlines()[-5:]
            tail = " Last lines: " + " | ".join(line.strip() for line in lines)
        return (
            f"The local Prefect server on 127.0.0.1:{self.port} {what}. Its log is "
            f"{self.log_file}.{tail} Fix what the log says, or point PREFECT_API_URL at a "
            "Prefect server of your own (then none is started); on a slow machine, "
            "`python -m local up` starts it once and later runs reuse it."
        )

    def stop(self, grace_seconds: float = STOP_GRACE_SECONDS, *, force: bool = False) -> None:
        """SIGTERM the server's process group, SIGKILL it after the grace period; a
        ``keep_running`` server is left running unless ``force``."""
        if self.keep_running and not force:
            return
        if self.process is None:
            stop_server_process(self.pid, self.started, grace_seconds)
            return
        if self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


def start_prefect_server(
    data_dir: Path, owner: tuple[int, float] | None, *, port: int | None = None
) -> PrefectServer:
    """Start the server in the background (call ``wait_healthy`` on the result); it stops
    itself when the ``owner`` process (pid, start time) is gone. With ``owner=None`` it
    runs until stopped (``local down``) or its data dir is deleted, and ``stop`` leaves it
    running (``keep_running``)."""
    home = data_dir / PREFECT_DIRNAME
    home.mkdir(parents=True, exist_ok=True)
    chosen = choose_port(home, port)
    (home / PORT_FILE).write_text(f"{chosen}\n")
    command = [sys.executable, "-m", "local.prefect_server", "--port", str(chosen)]
    if owner is not None:
        command += ["--owner-pid", str(owner[0]), "--owner-started", repr(owner[1])]
    with open(home / LOG_FILE, "ab") as log:
        log.write(
            f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting on port {chosen}\n".encode()
        )
        log.flush()
        process = subprocess.Popen(
            command,
            cwd=home,
            env=server_environment(home, chosen),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = PrefectServer(
        port=chosen,
        home=home,
        pid=process.pid,
        started=start_time(process.pid),
        process=process,
        keep_running=owner is None,
    )
    _write_server_file(server, owner)
    return server


def _write_server_file(server: PrefectServer, owner: tuple[int, float] | None) -> None:
    record = {
        "pid": server.pid,
        "started": server.started,
        "port": server.port,
        "owner_pid": owner[0] if owner else None,
    }
    path = server.home / SERVER_FILE
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(record) + "\n")
    temporary.replace(path)


def running_server(data_dir: Path) -> PrefectServer | None:
    """The data dir's Prefect server that runs without an owner (one a standalone night
    left running), if its process is alive; the caller waits for it to answer. A server
    that follows an owner is left to that owner (``local up`` / ``serve``)."""
    home = data_dir / PREFECT_DIRNAME
    try:
        record = json.loads((home / SERVER_FILE).read_text())
        pid, port = int(record["pid"]), int(record["port"])
        started = None if record.get("started") is None else float(record["started"])
        owned = record.get("owner_pid") is not None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if owned or not process_alive(pid, started):
        return None
    return PrefectServer(port=port, home=home, pid=pid, started=started, keep_running=True)


def stop_running_server(data_dir: Path) -> int | None:
    """Stop the data dir's owner-less Prefect server (``local down``); its pid, or None
    when none was running."""
    server = running_server(data_dir)
    if server is None:
        return None
    server.stop(force=True)
    with contextlib.suppress(OSError):
        (server.home / SERVER_FILE).unlink()
    return server.pid


def stop_server_process(
    pid: int, started: float | None, grace_seconds: float = STOP_GRACE_SECONDS
) -> bool:
    """Stop a server this process did not start (``local down``), if it is that very process.
    Returns True when it had to be stopped."""
    if not process_alive(pid, started):
        return False
    for sig, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        if wait_gone(pid, started, wait):
            break
    return True


def _watch_owner(owner: tuple[int, float] | None, home: Path) -> None:
    """Stop this server once its owner (if it has one) or its data dir is gone: SIGTERM to
    self (uvicorn shuts down gracefully), then a hard exit if that did not end the process."""
    while home.is_dir() and (owner is None or process_alive(*owner)):
        time.sleep(WATCH_INTERVAL_SECONDS)
    why = f"owner pid {owner[0]} is gone" if owner and home.is_dir() else f"{home} was deleted"
    print(f"local.prefect_server: {why}; stopping", flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(STOP_GRACE_SECONDS)
    os._exit(1)


def retry_soon_after_lock_conflicts() -> None:
    """Add ``Retry-After`` to the 503 Prefect's server sends for a retryable database error.

    Patched into Prefect's exception handler before ``prefect server start`` builds its app
    (this process only: the handler is looked up when the app is made). A Prefect without
    that handler keeps its 2 s retries; the server still starts, and its log says so."""
    from prefect.server.api import server

    handler = getattr(server, "custom_internal_exception_handler", None)
    if handler is None:
        print(
            "local.prefect_server: no Prefect exception handler to patch; 503s retry in 2 s",
            flush=True,
        )
        return
    if getattr(handler, "retry_after", None) == LOCK_CONFLICT_RETRY_AFTER:
        return

    async def handle(request: Any, exc: Exception) -> Any:
        response = await handler(request, exc)
        if response.status_code == 503:
            response.headers["Retry-After"] = LOCK_CONFLICT_RETRY_AFTER
        return response

    handle.retry_after = LOCK_CONFLICT_RETRY_AFTER  # type: ignore[attr-defined]
    server.custom_internal_exception_handler = handle


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.prefect_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--owner-pid", type=int, help="stop when this process is gone")
    parser.add_argument("--owner-started", type=float, default=0.0)
    args = parser.parse_args(argv)
    owner = None if args.owner_pid is None else (args.owner_pid, args.owner_started)
    home = Path(os.environ.get("PREFECT_HOME") or os.getcwd())
    threading.Thread(
        target=_watch_owner,
        args=(owner, home),
        name="owner-watchdog",
        daemon=True,
    ).start()
    database = home / DATABASE_FILE
    # A note of earlier releases (the template a database was made from), read no more.
    database.with_name(f"{DATABASE_FILE}.blocks").unlink(missing_ok=True)
    template = template_path()
    skipped = skip_block_registration_when_done(database, os.environ, template)  # before Prefect
    prepared = prepare_database(database, template)
    registration = "registered already" if skipped else "registered on start"
    print(f"local.prefect_server: database {prepared}; blocks {registration}", flush=True)
    retry_soon_after_lock_conflicts()
    from prefect.cli import app

    sys.argv = ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(args.port)]
    app()


if __name__ == "__main__":
    main()
