"""The warm Spark driver: one long-lived Python process holding one SparkSession, running
Glue job runs in threads (``python -m local.glue_jobs.warm_driver``; started by
``local.glue_jobs.warm_pool``, never by hand).

Why a process of its own: a Spark JVM costs seconds to start (more on a loaded 2-core
laptop, and three of them in parallel for one night), while a clean run of a night's data
takes about a second of work. The session is created once, by the job's own session
factory (``glue.local_spark.local_spark`` for the clean job), so its conf and packages are
exactly what a cold run would get; every run then calls the script's ``main`` with the
argv Glue would pass.

Each run gets, in its own thread:

* its Spark job group (``setJobGroup(run_id, ..., interruptOnCancel=True)``), so a cancel
  request cancels that run's Spark jobs and nobody else's;
* its log: ``print`` and tracebacks of that thread go to the run's log file (the JVM's own
  log4j output goes to the driver's log, named at the top of every run log);
* the session as its thread's active session, so the script borrows it and never stops it.

Protocol (pickled dicts on the socket handed over as ``--fd``): the parent sends
``{"op": "run", ...}``, ``{"op": "cancel", "run_id"}``, ``{"op": "exit"}``; the driver
answers ``{"event": "ready"}`` or ``{"event": "failed", "error"}`` once, then one
``{"event": "ended", "run_id", "exit_code"}`` per run. EOF on the socket (the endpoint went
away) ends the driver.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TextIO

CANCEL_REPEAT_SECONDS = 0.2


class ThreadRoutedStream(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` of the driver: a run thread's writes go to its run log,
    everything else to the driver's own stream."""

    def __init__(self, fallback: TextIO) -> None:
        self._fallback = fallback
        self._routes: dict[int, TextIO] = {}
        self._lock = threading.Lock()

    def route(self, thread_id: int, target: TextIO | None) -> None:
        with self._lock:
            if target is None:
                self._routes.pop(thread_id, None)
            else:
                self._routes[thread_id] = target

    def _target(self) -> TextIO:
        with self._lock:
            return self._routes.get(threading.get_ident(), self._fallback)

    def write(self, text: str) -> int:
        target = self._target()
        target.write(text)
        return len(text)

    def flush(self) -> None:
        self._target().flush()

    def writable(self) -> bool:
        return True


def load_factory(spec: str) -> Callable[..., Any]:
    """``module:function`` -> the function (the job's session factory)."""
    module_name, _, name = spec.partition(":")
    factory: Callable[..., Any] = getattr(importlib.import_module(module_name), name)
    return factory


class WarmDriver:
    """The session, the job scripts loaded once each, and the runs in flight."""

    def __init__(self, conn: Connection, spark: Any, log_path: str) -> None:
        self.conn = conn
        self.spark = spark
        self.log_path = log_path
        self.stdout = ThreadRoutedStream(sys.__stdout__ or sys.stdout)
        self.stderr = ThreadRoutedStream(sys.__stderr__ or sys.stderr)
        self._send_lock = threading.Lock()
        self._scripts: dict[str, Any] = {}
        self._scripts_lock = threading.Lock()
        self._runs: dict[str, threading.Thread] = {}
        self._runs_lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        with self._send_lock, contextlib.suppress(OSError):
            self.conn.send(message)

    def script(self, path: str) -> Any:
        """The job script as a module, executed once per driver (the driver is replaced when
        the script's folder changes, see warm_pool.script_fingerprint)."""
        with self._scripts_lock:
            module = self._scripts.get(path)
            if module is None:
                name = "mystore_glue_job_" + Path(path).stem
                spec = importlib.util.spec_from_file_location(name, path)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load Glue job script {path}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module  # dataclasses look their module up there
                spec.loader.exec_module(module)
                self._scripts[path] = module
            return module

    def start_run(self, message: dict[str, Any]) -> None:
        thread = threading.Thread(
            target=self._run, args=(message,), name=f"run-{message['run_id'][:11]}", daemon=True
        )
        with self._runs_lock:
            self._runs[message["run_id"]] = thread
        thread.start()

    def _run(self, message: dict[str, Any]) -> None:
        run_id: str = message["run_id"]
        exit_code = 1
        started = time.monotonic()
        with open(message["log_path"], "a", buffering=1, encoding="utf-8") as log:
            ident = threading.get_ident()
            self.stdout.route(ident, log)
            self.stderr.route(ident, log)
            try:
                print(
                    f"[local glue] run {run_id} in warm Spark driver pid {os.getpid()} "
                    f"(JVM log: {self.log_path})",
                    flush=True,
                )
                exit_code = self._call_main(message)
            finally:
                print(
                    f"[local glue] run ended with exit code {exit_code} after "
                    f"{time.monotonic() - started:.2f} s",
                    flush=True,
                )
                self.stdout.route(ident, None)
                self.stderr.route(ident, None)
        with self._runs_lock:
            self._runs.pop(run_id, None)
        self.send({"event": "ended", "run_id": run_id, "exit_code": exit_code})
        if self.spark.sparkContext._jsc is None:  # a run stopped the shared context
            self.send({"event": "poisoned", "error": "a job run stopped the SparkContext"})

    def _call_main(self, message: dict[str, Any]) -> int:
        """Call the script's entry point the way Glue runs a script: argv-style arguments."""
        sc = self.spark.sparkContext
        jvm = sc._jvm
        jvm.org.apache.spark.sql.SparkSession.setActiveSession(self.spark._jsparkSession)
        sc.setJobGroup(message["run_id"], f"Glue run {message['run_id']}", True)
        try:
            entry = getattr(self.script(message["script"]), message["entry_point"])
            result = entry(list(message["argv"]))
        except SystemExit as exc:
            code = exc.code
            return code if isinstance(code, int) else (0 if code is None else 1)
        except BaseException:
            traceback.print_exc()
            return 1
        finally:
            with contextlib.suppress(Exception):
                sc.setLocalProperty("spark.jobGroup.id", None)
        return result if isinstance(result, int) else 0

    def cancel(self, run_id: str) -> None:
        """Cancel the run's Spark jobs, again and again until its thread ends: the script
        may start another action after the first one failed."""

        def repeat() -> None:
            while True:
                with self._runs_lock:
                    thread = self._runs.get(run_id)
                if thread is None or not thread.is_alive():
                    return
                with contextlib.suppress(Exception):
                    self.spark.sparkContext.cancelJobGroup(run_id)
                thread.join(CANCEL_REPEAT_SECONDS)

        threading.Thread(target=repeat, name=f"cancel-{run_id[:11]}", daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                return  # the endpoint is gone: nobody can watch our runs any more
            op = message.get("op")
            if op == "run":
                self.start_run(message)
            elif op == "cancel":
                self.cancel(message["run_id"])
            elif op == "exit":
                return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="local.glue_jobs.warm_driver")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--factory", required=True, help="module:function making the session")
    parser.add_argument("--session", required=True, help="the factory's keyword args, JSON")
    parser.add_argument("--log", required=True, help="this driver's own log (JVM output)")
    options = parser.parse_args(argv)
    conn = Connection(options.fd)
    started = time.monotonic()
    try:
        spark = load_factory(options.factory)(**json.loads(options.session))
        spark.sparkContext.setLogLevel("WARN")
    except BaseException as exc:
        traceback.print_exc()
        conn.send({"event": "failed", "error": f"{type(exc).__name__}: {exc}"})
        return 1
    driver = WarmDriver(conn, spark, options.log)
    sys.stdout, sys.stderr = driver.stdout, driver.stderr
    driver.send(
        {"event": "ready", "pid": os.getpid(), "seconds": round(time.monotonic() - started, 3)}
    )
    try:
        driver.serve()
    finally:
        os._exit(0)  # run threads may be stuck in the JVM; the JVM follows us out
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
