"""Keep a stack's Prefect server running: start it again, on the same port, if it dies.

A night's flow and task runs talk to the server all night. When it died mid-night (killed,
out of memory) the night carried on without it for minutes: every API call retried a
refused connection for about a minute (Prefect's client backs off 2, 4, ... 32 s), the
load still ran, and the night ended after 8 minutes in a traceback with no summary.
Prefect's client retries a refused connection once it has connected before, so a server
back on the same port (same SQLite database under the data dir) within that minute lets
the night finish as if nothing happened; a restart takes 10-30 s on 2 cores.

A server is started again a few times at most (``RESTARTS_AT_MOST``): one that keeps dying
(a full disk) is left dead, and its log says why. ``local down`` never races the keeper: it
stops an ``up`` stack's owner first (which stops its keeper), and refuses to stop a
standalone night's server while the night runs.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path

from local.lease import this_process
from local.prefect_server import (
    START_TIMEOUT_SECONDS,
    PrefectServer,
    PrefectStartError,
    start_prefect_server,
)

WATCH_INTERVAL_SECONDS = 1.0
RESTARTS_AT_MOST = 3


class PrefectKeeper:
    """A thread that watches ``server`` and starts it again when it dies; ``close`` stops
    watching (call it before stopping the server on purpose). ``on_restart`` is told of
    each new server (the stack publishes its pid for ``local down`` and ``status``)."""

    def __init__(
        self,
        data_dir: Path,
        server: PrefectServer,
        on_restart: Callable[[PrefectServer], None],
        *,
        interval: float = WATCH_INTERVAL_SECONDS,
    ) -> None:
        self.data_dir = data_dir
        self.server = server
        self.restarts = 0
        self._on_restart = on_restart
        self._interval = interval
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="prefect-keeper", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop watching. A restart under way finishes in its thread, and a server it
        started that should stop with this process is stopped there."""
        self._closed.set()
        self._thread.join(timeout)

    def _watch(self) -> None:
        while not self._closed.wait(self._interval):
            code = self.server.exit_code()
            if code is None:
                continue
            if self.restarts >= RESTARTS_AT_MOST:
                _say(
                    f"The local Prefect server on port {self.server.port} stopped again (exit "
                    f"code {code}); after {self.restarts} restarts it is left stopped. Its log: "
                    f"{self.server.log_file}"
                )
                return
            self.restarts += 1
            _say(
                f"The local Prefect server (pid {self.server.pid}, port {self.server.port}) "
                f"stopped (exit code {code}); starting it again on the same port, so that the "
                f"runs going on carry on. Its log: {self.server.log_file}"
            )
            if not self._restart():
                return

    def _restart(self) -> bool:
        keep = self.server.keep_running
        try:
            server = start_prefect_server(
                self.data_dir, None if keep else this_process(), port=self.server.port
            )
            server.wait_healthy(START_TIMEOUT_SECONDS)
        except (PrefectStartError, OSError) as exc:
            _say(f"The local Prefect server could not be started again: {exc}")
            return False
        if self._closed.is_set():  # the stack stopped meanwhile: as it would have
            server.stop()
            return False
        self.server = server
        self._on_restart(server)
        _say(f"The local Prefect server is back on {server.ui_url} (pid {server.pid}).")
        return True


def _say(message: str) -> None:
    print(f"local: {message}", file=sys.stderr, flush=True)
