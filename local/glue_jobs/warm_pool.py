"""The endpoint's side of the warm Spark drivers: start, reuse, replace (see warm_driver.py).

A driver is keyed by everything that fixes its JVM and its Python code: the session
factory and its arguments (for the clean job: table format, Hudi version, bundle jar), the
interpreter, Java, the environment Spark and the job read (``MYSTORE_*``, ``SPARK_*``,
``PYSPARK_*``, ``AWS_*``, ``HADOOP_*``, ``JAVA_HOME``; not ``PYSPARK_SET_ENV``), and the
job script's folder (a changed ``glue/*.py`` must not run in a driver that imported the old
one). A run whose key matches a live driver runs there; any other key gets a driver of its
own.

A driver that dies (killed, out of memory) fails every run it held with a message saying
so, and is dropped; the next run starts a new one. A driver that holds a run which would
not stop is retired: it takes no new runs and is ended once its other runs are done.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ENV_PREFIXES = ("MYSTORE_", "SPARK_", "PYSPARK_", "AWS_", "HADOOP_")
# Not in the key: what a SparkContext writes into its own process's environment from its
# Spark conf (pyspark/context.py). A process that ever started Spark in-process carries
# them, one that did not does not, and a driver's own SparkContext sets them again from its
# own conf, so they never change what a driver runs. Keyed, they made the test session
# start a second JVM for the same configuration once its in-process Spark session was up.
PYSPARK_SET_ENV = frozenset({"SPARK_AUTH_SOCKET_TIMEOUT", "SPARK_BUFFER_SIZE"})
MAX_DRIVERS = 2  # idle drivers beyond this are ended, oldest first (each holds a JVM)


def script_fingerprint(script: Path) -> str:
    """Names, sizes and mtimes of the ``*.py`` next to the script (``glue/`` for the clean
    job): cheap, and changes whenever a developer edits the job or its transforms."""
    parts = []
    for path in sorted(script.parent.glob("*.py")):
        with contextlib.suppress(OSError):
            stat = path.stat()
            parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def driver_key(
    factory: str, session: Mapping[str, Any], environ: Mapping[str, str], script: Path
) -> str:
    relevant = {
        k: v
        for k, v in environ.items()
        if (k.startswith(ENV_PREFIXES) or k == "JAVA_HOME") and k not in PYSPARK_SET_ENV
    }
    return json.dumps(
        [factory, dict(session), sorted(relevant.items()), script_fingerprint(script)],
        sort_keys=True,
        default=str,
    )


@dataclass
class RunTicket:
    """One run handed to a driver; ``done`` is set when it ended or its driver died."""

    run_id: str
    done: threading.Event = field(default_factory=threading.Event)
    exit_code: int | None = None
    driver_error: str | None = None


class DriverProcess:
    """One warm driver process and the socket to it; a reader thread collects its events."""

    def __init__(
        self,
        key: str,
        argv: list[str],
        env: Mapping[str, str],
        cwd: Path,
        log_path: Path,
    ) -> None:
        self.key = key
        self.log_path = log_path
        self.retired = False
        self.started = time.monotonic()
        self.last_used = self.started
        self.ready = threading.Event()
        self.startup_error: str | None = None
        self.death: str | None = None
        self.startup_seconds: float | None = None
        self._tickets: dict[str, RunTicket] = {}
        self._lock = threading.Lock()
        ours, theirs = socket.socketpair()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [*argv, "--fd", str(theirs.fileno()), "--log", str(log_path)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                env=dict(env),
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # its own process group: the JVM goes with it
            )
        theirs.close()
        self.conn = Connection(ours.detach())
        self._send_lock = threading.Lock()
        self._reader = threading.Thread(
            target=self._read, name=f"warm-driver-{self.process.pid}", daemon=True
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.death is None and self.startup_error is None

    @property
    def busy(self) -> int:
        with self._lock:
            return len(self._tickets)

    def submit(self, run_id: str, message: dict[str, Any]) -> RunTicket:
        ticket = RunTicket(run_id)
        with self._lock:
            if not self.alive:
                ticket.driver_error = self.death or self.startup_error
                ticket.done.set()
                return ticket
            self._tickets[run_id] = ticket
        self.last_used = time.monotonic()
        self._send({"op": "run", "run_id": run_id, **message})
        return ticket

    def cancel(self, run_id: str) -> None:
        self._send({"op": "cancel", "run_id": run_id})

    def abandon(self, run_id: str) -> None:
        """Give up on a run that would not stop: retire the driver, which is ended as soon
        as none of its other runs is left (ending it is what finally stops this one)."""
        with self._lock:
            self._tickets.pop(run_id, None)
        self.retired = True

    def _send(self, message: dict[str, Any]) -> None:
        try:
            with self._send_lock:
                self.conn.send(message)
        except OSError:
            pass  # the reader sees the death and fails the runs

    def _read(self) -> None:
        while True:
            try:
                event = self.conn.recv()
            except (EOFError, OSError):
                break
            kind = event.get("event")
            if kind == "ready":
                self.startup_seconds = event.get("seconds")
                self.ready.set()
            elif kind == "failed":
                self.startup_error = str(event.get("error"))
                self.ready.set()
            elif kind == "ended":
                with self._lock:
                    ticket = self._tickets.pop(event["run_id"], None)
                if ticket is not None:
                    ticket.exit_code = int(event["exit_code"])
                    ticket.done.set()
            elif kind == "poisoned":
                log.warning("Warm Spark driver %s retired: %s", self.pid, event.get("error"))
                self.retired = True
        self._died()

    def _died(self) -> None:
        try:
            code = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None and code < 0:
            how = f"was killed by signal {signal.Signals(-code).name}"
        else:
            how = f"exited with code {code}"
        with self._lock:
            if self.startup_error is None:
                self.death = (
                    f"the warm Spark driver (pid {self.pid}) {how} while this run was in it; "
                    f"a new driver takes the next run (driver log: {self.log_path})"
                )
            tickets, self._tickets = list(self._tickets.values()), {}
        for ticket in tickets:
            ticket.driver_error = self.death or self.startup_error
            ticket.done.set()
        self.ready.set()
        if tickets:
            log.warning("Warm Spark driver %s %s; %d run(s) failed", self.pid, how, len(tickets))

    def stop(self, grace_seconds: float = 5.0) -> None:
        """Ask the driver to exit, then end its process group."""
        self._send({"op": "exit"})
        try:
            self.process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        with contextlib.suppress(OSError):
            self.conn.close()


class DriverPool:
    """Warm drivers by key, created on demand; ``close`` ends them all."""

    def __init__(self, python: str, log_dir: Path, cwd: Path) -> None:
        self.python = python
        self.log_dir = log_dir
        self.cwd = cwd
        self._drivers: list[DriverProcess] = []
        self._lock = threading.Lock()
        self._closed = False
        self._count = 0

    def drivers(self) -> list[DriverProcess]:
        with self._lock:
            return list(self._drivers)

    def acquire(
        self, key: str, factory: str, session: Mapping[str, Any], env: Mapping[str, str]
    ) -> DriverProcess:
        """The live driver for ``key``, else a new one (the caller waits for ``ready``)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the local Glue endpoint is shutting down")
            self._drivers = [d for d in self._drivers if d.alive or d.busy]
            for driver in self._drivers:
                if driver.key == key and driver.alive and not driver.retired:
                    driver.last_used = time.monotonic()
                    return driver
            self._count += 1
            argv = [
                self.python,
                "-m",
                "local.glue_jobs.warm_driver",
                "--factory",
                factory,
                "--session",
                json.dumps(dict(session)),
            ]
            log_path = self.log_dir / f"warm-driver-{os.getpid()}-{self._count}.log"
            driver = DriverProcess(key, argv, env, self.cwd, log_path)
            self._drivers.append(driver)
            extra = self._evictable()
        for old in extra:
            old.stop()
        log.info("Started warm Spark driver %s (log %s)", driver.pid, log_path)
        return driver

    def _evictable(self) -> list[DriverProcess]:
        """Idle drivers over MAX_DRIVERS, oldest use first; callers hold the lock."""
        idle = sorted(
            (d for d in self._drivers if not d.busy and d.ready.is_set()),
            key=lambda d: d.last_used,
        )
        extra = idle[: max(0, len(self._drivers) - MAX_DRIVERS)]
        self._drivers = [d for d in self._drivers if d not in extra]
        return extra

    def release(self, driver: DriverProcess) -> None:
        """After a run: end a retired driver once it holds no run."""
        if driver.retired and not driver.busy:
            with self._lock:
                if driver in self._drivers:
                    self._drivers.remove(driver)
            driver.stop()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            drivers, self._drivers = self._drivers, []
        for driver in drivers:
            driver.stop()
