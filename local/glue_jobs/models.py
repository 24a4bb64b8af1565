"""Glue job runs' backend: each run a real child process, supervised to its end.

``start`` returns at once with a run in STARTING; a supervisor thread per run starts
``python glue/<script>.py --key value ...`` with its output going to the run's log file,
and moves the run through RUNNING to a terminal state: SUCCEEDED (exit 0, and the job's
after-success step, e.g. the catalog sync, succeeded), FAILED (non-zero exit, with the
log's last error line as ErrorMessage), TIMEOUT (the Timeout in minutes passed) or STOPPED
(``request_stop``: STOPPING, SIGTERM to the child's process group, SIGKILL after a grace).

Jobs with ``warm_spark`` (the clean job) run instead in a warm Spark driver shared by runs
with the same session (``warm_pool``): same states, same log file, same ErrorMessage rule;
a stop cancels the run's Spark job group, and a driver that dies fails its runs.

Every end (SUCCEEDED, FAILED, STOPPED, TIMEOUT, ERROR) is announced to ``events`` when the
stack sets it (``local/work_events.py``: the stand-in for Glue's "Job State Change" events
to EventBridge, which resume a suspended flow run waiting on the run).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from local.glue_jobs.exceptions import concurrent_runs_exceeded, run_not_found, shutting_down
from local.glue_jobs.jobs import (
    MISSING_JAVA_MESSAGE,
    REPO_ROOT,
    JobDefinition,
    build_argv,
    child_environment,
    find_java_home,
    merge_arguments,
)
from local.glue_jobs.requests import StartRequest
from local.glue_jobs.runs import (
    MAX_ERROR_MESSAGE,
    RunRecord,
    RunStore,
    last_error_line,
    read_log_tail,
)
from local.glue_jobs.warm_pool import DriverPool, DriverProcess, RunTicket, driver_key
from local.processes import start_time

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1


class RunEndListener(Protocol):
    """Where a run's end is announced (``local.work_events.WorkEndEvents``)."""

    def expect(self) -> None: ...

    def glue_run_ended(self, job_name: str, run_id: str, state: str) -> None: ...


class GlueJobsBackend:
    """The job registry and the runs of its jobs.

    ``seconds_per_minute`` scales the Timeout unit so tests can see a TIMEOUT in a second;
    it is 60 everywhere else.
    """

    def __init__(
        self,
        jobs: Mapping[str, JobDefinition],
        *,
        log_dir: Path,
        store: RunStore | None = None,
        python: str = sys.executable,
        repo_root: Path = REPO_ROOT,
        seconds_per_minute: float = 60.0,
        stop_grace_seconds: float = 10.0,
        environ: Mapping[str, str] | None = None,
        warm_spark: bool = True,
        warm_drivers: DriverPool | None = None,
    ) -> None:
        self.jobs = dict(jobs)
        self.log_dir = Path(log_dir)
        self.store = store or RunStore()
        self.python = python
        self.repo_root = repo_root
        self.seconds_per_minute = seconds_per_minute
        self.stop_grace_seconds = stop_grace_seconds
        self._environ = environ
        self.created_on = time.time()
        self._lock = threading.Lock()
        self._stop_requested: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._closed = False
        # Warm Spark drivers (``warm_spark=False``: every run in a child process of its own).
        # A pool handed in (tests share one per session) is the caller's to close.
        self._owns_drivers = warm_drivers is None
        self.warm_drivers = (
            (warm_drivers or DriverPool(python, self.log_dir, repo_root)) if warm_spark else None
        )
        # Told when a run ends (the stack sets it; None: nobody listens).
        self.events: RunEndListener | None = None

    def start(self, request: StartRequest) -> RunRecord:
        """Record a run in STARTING and hand it to its supervisor thread."""
        job = self.jobs[request.job_name]
        now = time.time()
        run_id = "jr_" + secrets.token_hex(32)
        with self._lock:
            if self._closed:
                raise shutting_down()
            attempt, previous = 0, None
            if request.previous_run_id is not None:
                prior = self.run(job.name, request.previous_run_id)
                attempt, previous = prior.attempt + 1, prior.id
            active = [r for r in self.store.for_job(job.name) if r.active]
            if len(active) >= job.max_concurrent_runs:
                raise concurrent_runs_exceeded(job.name, len(active), job.max_concurrent_runs)
            run = RunRecord(
                id=run_id,
                job_name=job.name,
                arguments=merge_arguments(job, request.arguments),
                state="STARTING",
                started_on=now,
                last_modified_on=now,
                timeout_minutes=request.timeout_minutes or job.timeout_minutes,
                worker_type=request.worker_type or job.worker_type,
                number_of_workers=request.number_of_workers or job.number_of_workers,
                log_group=str((self.log_dir / job.name).resolve()),
                attempt=attempt,
                previous_run_id=previous,
                execution_class=request.execution_class or "STANDARD",
            )
            self.store.save(run)
            stop = threading.Event()
            self._stop_requested[run_id] = stop
            thread = threading.Thread(
                target=self._supervise,
                args=(run, job, stop),
                name=f"glue-{run_id[:11]}",
                daemon=True,
            )
            self._threads[run_id] = thread
            thread.start()  # under the lock, so close() never meets a thread not yet started
        if self.events is not None:
            self.events.expect()
        log.info(
            "Glue run %s of %s started; log %s/%s.log", run_id, job.name, run.log_group, run_id
        )
        return run

    def prewarm(self, job_name: str, arguments: Mapping[str, str]) -> bool:
        """Start the warm driver a run of ``job_name`` with ``arguments`` would use, without
        waiting for it (a stack that stays up calls this so the first night finds Spark
        ready). False when the job runs in child processes."""
        job = self.jobs[job_name]
        warm = job.warm_spark
        if warm is None or self.warm_drivers is None:
            return False
        environ = dict(os.environ if self._environ is None else self._environ)
        java_home = find_java_home(environ)
        if java_home is None:
            return False
        env = child_environment(environ, self.repo_root, self.python, java_home)
        session = warm.session_arguments(merge_arguments(job, arguments), env)
        if session is None:
            return False
        key = driver_key(warm.factory, session, env, job.script)
        self.warm_drivers.acquire(key, warm.factory, session, env)
        return True

    def run(self, job_name: str, run_id: str) -> RunRecord:
        run = self.store.get(run_id)
        if run is None or run.job_name != job_name:
            raise run_not_found(job_name, run_id)
        return run

    def api_view(self, runs: list[RunRecord]) -> list[dict[str, object]]:
        """Runs in Glue's JobRun shape, read under the lock a supervisor changes them under."""
        with self._lock:
            return [run.to_api() for run in runs]

    def close(self, timeout: float = 30.0) -> None:
        """Stop every active run and wait for the children to go (endpoint shutdown)."""
        with self._lock:
            self._closed = True
            active = [(rid, ev) for rid, ev in self._stop_requested.items()]
            threads = list(self._threads.values())
        for run_id, event in active:
            run = self.store.get(run_id)
            if run is not None and run.active:
                self.request_stop(run.job_name, run_id)
            event.set()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.warm_drivers is not None and self._owns_drivers:
            self.warm_drivers.close()

    # -- internals -----------------------------------------------------------------------

    def request_stop(self, job_name: str, run_id: str) -> tuple[str, str] | None:
        """Ask a run to stop; returns (ErrorCode, ErrorMessage) when it cannot be."""
        with self._lock:
            run = self.store.get(run_id)
            if run is None or run.job_name != job_name:
                return "EntityNotFoundException", f"Job run {run_id} not found for job {job_name}"
            if not run.active:
                return "InvalidInputException", f"Job run {run_id} is already {run.state}"
            if run.state != "STOPPING":
                self._transition(run, "STOPPING")
            event = self._stop_requested.get(run_id)
        if event is not None:
            event.set()
        return None

    def _transition(self, run: RunRecord, state: str, error: str | None = None) -> None:
        """Change state and persist; callers hold ``self._lock``."""
        now = time.time()
        run.state = state
        run.last_modified_on = now
        if error is not None:
            run.error_message = error[:MAX_ERROR_MESSAGE]
        if not run.active:
            run.completed_on = now
        self.store.save(run)

    def _finish(self, run: RunRecord, state: str, error: str | None = None) -> None:
        with self._lock:
            self._transition(run, state, error)
            self._stop_requested.pop(run.id, None)
            self._threads.pop(run.id, None)
        if self.events is not None:
            try:
                self.events.glue_run_ended(run.job_name, run.id, state)
            except Exception:  # best effort: the run's end stands; the poller resumes
                log.warning("could not announce the end of Glue run %s", run.id, exc_info=True)
        level = logging.INFO if state == "SUCCEEDED" else logging.WARNING
        log.log(
            level,
            "Glue run %s of %s ended %s%s",
            run.id,
            run.job_name,
            state,
            f": {error}" if error else "",
        )

    def _supervise(self, run: RunRecord, job: JobDefinition, stop: threading.Event) -> None:
        try:
            self._run_child(run, job, stop)
        except Exception as exc:  # a bug here must end the run, not leave it RUNNING forever
            log.exception("Supervisor of Glue run %s failed", run.id)
            self._finish(run, "ERROR", f"Local Glue endpoint error: {type(exc).__name__}: {exc}")

    def _run_child(self, run: RunRecord, job: JobDefinition, stop: threading.Event) -> None:
        environ = dict(os.environ if self._environ is None else self._environ)
        java_home = find_java_home(environ) if job.needs_java else None
        if job.needs_java and java_home is None:
            self._finish(run, "FAILED", MISSING_JAVA_MESSAGE)
            return
        log_path = Path(run.log_group) / f"{run.id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = build_argv(self.python, job, run.id, run.arguments)
        env = child_environment(environ, self.repo_root, self.python, java_home)
        warm = job.warm_spark
        session = warm.session_arguments(run.arguments, env) if warm is not None else None
        if warm is not None and session is not None and self.warm_drivers is not None:
            log_path.touch()  # the run's log exists from RUNNING on, as a child's does
            key = driver_key(warm.factory, session, env, job.script)
            driver = self.warm_drivers.acquire(key, warm.factory, session, env)
            request = {
                "script": str(job.script),
                "entry_point": warm.entry_point,
                "argv": argv[2:],
                "log_path": str(log_path),
            }
            self._run_warm(run, driver, driver.submit(run.id, request), stop, log_path)
            return
        deadline = time.monotonic() + run.timeout_minutes * self.seconds_per_minute
        with open(log_path, "ab") as log_file:
            if stop.is_set():
                self._finish(run, "STOPPED")
                return
            process = subprocess.Popen(
                argv,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.repo_root,
                env=env,
                start_new_session=True,  # its own process group: Spark's JVM stops with it
            )
            with self._lock:
                run.child_pid, run.child_started = process.pid, start_time(process.pid)
                if run.state == "STARTING":
                    self._transition(run, "RUNNING")
                else:
                    self.store.save(run)
            outcome = self._wait(process, stop, deadline)
        if outcome == "stopped":
            self._finish(run, "STOPPED")
        elif outcome == "timeout":
            self._finish(
                run,
                "TIMEOUT",
                f"Job run timed out after {run.timeout_minutes} minutes (Timeout) and was stopped",
            )
        elif process.returncode != 0:
            detail = last_error_line(read_log_tail(str(log_path)))
            message = (
                f"{detail} (exit code {process.returncode})"
                if detail
                else f"exit code {process.returncode}"
            )
            self._finish(run, "FAILED", message)
        else:
            self._after_success(run, job)

    def _run_warm(
        self,
        run: RunRecord,
        driver: DriverProcess,
        ticket: RunTicket,
        stop: threading.Event,
        log_path: Path,
    ) -> None:
        """Watch a run in a warm driver: RUNNING once handed over; a stop or the timeout
        cancels its job group, and a run that will not end in the grace period is given up
        (its driver retired, ended once its other runs are done)."""
        with self._lock:
            run.child_pid, run.child_started = driver.pid, start_time(driver.pid)
            if run.state == "STARTING":
                self._transition(run, "RUNNING")
            else:
                self.store.save(run)
        deadline = time.monotonic() + run.timeout_minutes * self.seconds_per_minute
        outcome = "exited"
        while not ticket.done.wait(POLL_SECONDS):
            if stop.is_set() or time.monotonic() >= deadline:
                outcome = "stopped" if stop.is_set() else "timeout"
                driver.cancel(run.id)
                if not ticket.done.wait(self.stop_grace_seconds):
                    log.warning("Glue run %s did not stop; retiring its warm driver", run.id)
                    driver.abandon(run.id)
                break
        if self.warm_drivers is not None:
            self.warm_drivers.release(driver)
        if outcome == "stopped":
            self._finish(run, "STOPPED")
        elif outcome == "timeout":
            self._finish(
                run,
                "TIMEOUT",
                f"Job run timed out after {run.timeout_minutes} minutes (Timeout) and was stopped",
            )
        elif ticket.driver_error is not None:
            with contextlib.suppress(OSError), open(log_path, "a", encoding="utf-8") as handle:
                handle.write(f"[local glue] {ticket.driver_error}\n")
            self._finish(run, "FAILED", ticket.driver_error)
        elif ticket.exit_code != 0:
            detail = last_error_line(read_log_tail(str(log_path)))
            code = f"exit code {ticket.exit_code}"
            self._finish(run, "FAILED", f"{detail} ({code})" if detail else code)
        else:
            self._after_success(run, self.jobs[run.job_name])

    def _after_success(self, run: RunRecord, job: JobDefinition) -> None:
        if job.after_success is None:
            self._finish(run, "SUCCEEDED")
            return
        try:
            note = job.after_success(run.arguments)
        except Exception as exc:
            log.exception("After-success step of Glue run %s failed", run.id)
            self._finish(run, "FAILED", f"The job succeeded but its catalog sync failed: {exc}")
            return
        if note:
            log.info("Glue run %s: %s", run.id, note)
        self._finish(run, "SUCCEEDED")

    def _wait(
        self, process: subprocess.Popen[bytes], stop: threading.Event, deadline: float
    ) -> str:
        """Wait for exit, a stop request or the timeout; returns exited/stopped/timeout."""
        while True:
            try:
                process.wait(timeout=POLL_SECONDS)
                return "stopped" if stop.is_set() else "exited"
            except subprocess.TimeoutExpired:
                pass
            if stop.is_set():
                self._terminate(process)
                return "stopped"
            if time.monotonic() >= deadline:
                self._terminate(process)
                return "timeout"

    def _terminate(self, process: subprocess.Popen[bytes]) -> None:
        """SIGTERM the child's process group, SIGKILL it after the grace period."""
        for sig, wait in ((signal.SIGTERM, self.stop_grace_seconds), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue
