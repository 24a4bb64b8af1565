"""Keep a stack's servers running: start one again, in place, if it dies while the stack runs.

A night talks to the stack's Prefect server and to its warehouse all night, and a ``local
up`` stack serves nights for days. Either server can die under it (killed, out of memory):

* **The Prefect server.** The night carried on without it for minutes: every API call
  retried a refused connection for about a minute (Prefect's client backs off 2, 4, ... 32
  s), the load still ran, and the night ended after 8 minutes in a traceback with no
  summary. Prefect's client retries a refused connection once it has connected before, so
  a server back on the same port (same SQLite database under the data dir) within that
  minute lets the night finish as if nothing happened; a restart takes 10-30 s on 2 cores.
* **The warehouse's PostgreSQL.** Every later statement, and every later night attached to
  an up stack, failed naming the dead server until the user took the stack down and up
  again. Started again on the same data dir and socket, PostgreSQL replays its WAL
  (committed work survives; the dead server's open transactions roll back, and their
  statements are FAILED saying so), and the endpoint's connections reconnect to it.

A server is started again a few times at most within a while (``RESTARTS_AT_MOST`` in
``RESTART_WINDOW_SECONDS``): one that keeps dying (a full disk) is left dead, and its log
says why, while an ``up`` stack that runs for days still gets back an occasional loss. A
stack closes its keepers before it stops its servers on purpose, so ``local down`` never
races one.
"""

from __future__ import annotations

import abc
import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

from local.prefect_server import (
    START_TIMEOUT_SECONDS,
    PrefectServer,
    PrefectStartError,
    start_prefect_server,
)
from local.processes import this_process
from local.warehouse.postgres import Warehouse, start_warehouse

log = logging.getLogger(__name__)

WATCH_INTERVAL_SECONDS = 1.0
RESTARTS_AT_MOST = 3
RESTART_WINDOW_SECONDS = 600.0

Server = TypeVar("Server")


class Keeper(abc.ABC, Generic[Server]):
    """A thread that watches ``server`` and starts it again when it dies; ``close`` stops
    watching (call it before stopping the server on purpose). ``on_restart`` is told of
    each new server (the stack swaps it in and publishes it for ``local status``)."""

    what: ClassVar[str]  # how messages name the server: "The local Prefect server"
    restart_note: ClassVar[str]  # what a restart means for the work going on
    start_errors: ClassVar[tuple[type[Exception], ...]] = (OSError,)

    def __init__(
        self,
        data_dir: Path,
        server: Server,
        on_restart: Callable[[Server], None],
        *,
        interval: float = WATCH_INTERVAL_SECONDS,
        on_said: Callable[[str], None] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.server: Server = server
        self.restarts: list[float] = []  # when each restart began (monotonic)
        self._on_restart: Callable[[Server], None] = on_restart
        self._on_said = on_said  # told each line said on stderr (``local status`` shows them)
        self._interval = interval
        self._closed = threading.Event()
        self._began_watching()
        self._thread = threading.Thread(target=self._watch, name=type(self).__name__, daemon=True)
        self._thread.start()

    def _began_watching(self) -> None:
        """Called once, before the first check (and not again on a restart)."""

    @abc.abstractmethod
    def why_stopped(self, server: Server) -> str | None:
        """Why ``server`` is not running ("exit code -9"), or None while it runs."""

    @abc.abstractmethod
    def describe(self, server: Server) -> str:
        """Which server this is, for messages: "pid 12, http://127.0.0.1:4200"."""

    @abc.abstractmethod
    def log_file(self, server: Server) -> Path: ...

    @abc.abstractmethod
    def start_again(self, server: Server) -> Server:
        """A running server in place of the dead ``server``; raises one of ``start_errors``."""

    @abc.abstractmethod
    def discard(self, server: Server) -> None:
        """Stop a server started again after ``close``, as the stack would have."""

    def watching(self) -> bool:
        """Whether a dead server will be started again: not once closed or given up."""
        return self._thread.is_alive() and not self._closed.is_set()

    def close(self, timeout: float = 5.0) -> None:
        """Stop watching. A restart under way finishes in its thread, and a server it
        started that should stop with this process is stopped there."""
        self._closed.set()
        self._thread.join(timeout)

    def _watch(self) -> None:
        while not self._closed.wait(self._interval):
            try:
                why = self.why_stopped(self.server)
            except Exception as exc:  # a keeper never dies in a traceback on a thread
                self._tell(
                    f"{self.what} is no longer watched: checking it failed "
                    f"({type(exc).__name__}: {exc}); if it stops it stays stopped."
                )
                return
            if why is None:
                continue
            where = f"{self.describe(self.server)}; its log: {self.log_file(self.server)}"
            now = time.monotonic()
            recent = [t for t in self.restarts if now - t < RESTART_WINDOW_SECONDS]
            if len(recent) >= RESTARTS_AT_MOST:
                self._tell(
                    f"{self.what} ({where}) stopped again: {why}. After {len(recent)} restart"
                    f"{'s' if len(recent) != 1 else ''} "
                    f"in {RESTART_WINDOW_SECONDS / 60:g} minutes it is left stopped."
                )
                return
            self.restarts.append(now)
            self._tell(
                f"{self.what} ({where}) stopped: {why}. Starting it again in place: "
                f"{self.restart_note}"
            )
            if not self._restart():
                return

    def _tell(self, message: str) -> None:
        _say(message)
        if self._on_said is not None:
            try:
                self._on_said(message)
            except Exception:  # only a record of what was said: never the keeper's end
                log.warning("could not record the keeper's message", exc_info=True)

    def _restart(self) -> bool:
        try:
            server = self.start_again(self.server)
        except Exception as exc:  # anything: the thread must say so, not die in a traceback
            cause = (
                str(exc) if isinstance(exc, self.start_errors) else f"{type(exc).__name__}: {exc}"
            )
            self._tell(f"{self.what} could not be started again: {cause}")
            return False
        if self._closed.is_set():  # the stack stopped meanwhile: as it would have
            self.discard(server)
            return False
        self.server = server
        self._on_restart(server)
        self._tell(f"{self.what} is back ({self.describe(server)}).")
        return True


class PrefectKeeper(Keeper[PrefectServer]):
    """The stack's Prefect server, started again on the same port and database."""

    what = "The local Prefect server"
    restart_note = "the runs going on carry on once it answers."
    start_errors = (PrefectStartError, OSError)

    def why_stopped(self, server: PrefectServer) -> str | None:
        code = server.exit_code()
        return None if code is None else f"exit code {code}"

    def describe(self, server: PrefectServer) -> str:
        return f"pid {server.pid}, {server.ui_url}"

    def log_file(self, server: PrefectServer) -> Path:
        return server.log_file

    def start_again(self, server: PrefectServer) -> PrefectServer:
        owner = None if server.keep_running else this_process()
        restarted = start_prefect_server(self.data_dir, owner, port=server.port)
        restarted.wait_healthy(START_TIMEOUT_SECONDS)
        return restarted

    def discard(self, server: PrefectServer) -> None:
        server.stop()


class WarehouseKeeper(Keeper[Warehouse]):
    """The stack's PostgreSQL server, started again on the same data dir: a new handle on
    it (``start_warehouse``), the dead server's handle dropped."""

    what = "The local warehouse's PostgreSQL server"
    restart_note = (
        "statements it was running have failed (their work rolled back; a night that ran one "
        "fails, and running it again finishes it); new ones wait for it."
    )

    def _began_watching(self) -> None:
        # Where the log stood when this server was first watched: a FATAL line before it
        # (a session terminated hours ago) is not why the server stopped.
        self._log = self.server.log
        self._log_from = self._log.mark()

    def why_stopped(self, server: Warehouse) -> str | None:
        if server.running():
            return None
        fatal = self._log.last_fatal(since=self._log_from)
        return "its postmaster is gone" + (
            f" (the log's last FATAL line: {fatal})" if fatal else ""
        )

    def describe(self, server: Warehouse) -> str:
        return f"pid {server.pid}, {server.pgdata}"

    def log_file(self, server: Warehouse) -> Path:
        return server.log.path

    def start_again(self, server: Warehouse) -> Warehouse:
        log_from = self._log.mark()
        restarted = start_warehouse(self.data_dir)
        self._log_from = log_from
        return restarted

    def discard(self, server: Warehouse) -> None:
        server.stop()


def _say(message: str) -> None:
    print(f"local: {message}", file=sys.stderr, flush=True)
