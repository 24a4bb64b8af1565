"""Job-run records: their API shape, paging, error lines from logs, and where they persist.

Runs live in memory for the endpoint's life and, when a warehouse DSN is given, in the
``local_glue.job_runs`` table as well, so a later endpoint (or a developer with psql) can
still answer "what happened to run jr_...". A run that was active when its endpoint went
away cannot be finished by anyone, so loading marks it ERROR with a message saying so.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import re
import signal
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from local.glue_jobs.exceptions import invalid_input
from local.processes import process_alive

log = logging.getLogger(__name__)

ACTIVE_STATES = frozenset({"STARTING", "RUNNING", "STOPPING", "WAITING"})
TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED"})
DEFAULT_PAGE_SIZE = 100
MAX_ERROR_MESSAGE = 2048


@dataclass
class RunRecord:
    """One job run. ``to_api`` gives Glue's ``JobRun`` shape; the log file is
    ``<LogGroupName>/<Id>.log``, mirroring Glue's log group + stream-per-run."""

    id: str
    job_name: str
    arguments: dict[str, str]
    state: str
    started_on: float
    last_modified_on: float
    timeout_minutes: int
    worker_type: str
    number_of_workers: int
    log_group: str
    attempt: int = 0
    previous_run_id: str | None = None
    completed_on: float | None = None
    error_message: str | None = None
    execution_class: str = "STANDARD"
    # The child process (not part of the API): lets a later endpoint stop an orphaned child.
    child_pid: int | None = None
    child_started: float | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def to_api(self) -> dict[str, Any]:
        end = self.completed_on if self.completed_on is not None else self.last_modified_on
        run: dict[str, Any] = {
            "Id": self.id,
            "Attempt": self.attempt,
            "JobName": self.job_name,
            "JobMode": "SCRIPT",
            "StartedOn": self.started_on,
            "LastModifiedOn": self.last_modified_on,
            "JobRunState": self.state,
            "Arguments": dict(self.arguments),
            "ExecutionTime": max(0, round(end - self.started_on)),
            "Timeout": self.timeout_minutes,
            "WorkerType": self.worker_type,
            "NumberOfWorkers": self.number_of_workers,
            "LogGroupName": self.log_group,
            "GlueVersion": "5.0",
            "ExecutionClass": self.execution_class,
            "PredecessorRuns": [],
        }
        if self.previous_run_id:
            run["PreviousRunId"] = self.previous_run_id
        if self.completed_on is not None:
            run["CompletedOn"] = self.completed_on
        if self.error_message:
            run["ErrorMessage"] = self.error_message
        return run


def newest_first(runs: Iterable[RunRecord]) -> list[RunRecord]:
    """Glue lists a job's runs newest first; the id breaks ties so paging is stable."""
    return sorted(runs, key=lambda r: (r.started_on, r.id), reverse=True)


def _encode_token(run: RunRecord) -> str:
    return base64.urlsafe_b64encode(json.dumps([run.started_on, run.id]).encode()).decode()


def _decode_token(token: str) -> tuple[float, str]:
    try:
        started, run_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return float(started), str(run_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise invalid_input(f"NextToken {token!r} is not a token from GetJobRuns") from exc


def page_of_runs(
    runs: Sequence[RunRecord], next_token: str | None, max_results: int | None
) -> tuple[list[RunRecord], str | None]:
    """One GetJobRuns page of ``runs`` (already newest first) after a keyset cursor, so a run
    started between two page calls neither repeats nor hides an older run."""
    size = max_results or DEFAULT_PAGE_SIZE
    start = 0
    if next_token is not None:
        cursor = _decode_token(next_token)
        start = next((i for i, r in enumerate(runs) if (r.started_on, r.id) < cursor), len(runs))
    page = list(runs[start : start + size])
    more = start + size < len(runs)
    return page, (_encode_token(page[-1]) if more and page else None)


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*")
_ERROR_WORD = re.compile(r"\b(ERROR|FATAL|Error|Exception)\b")


def last_error_line(log_text: str, limit: int = MAX_ERROR_MESSAGE) -> str | None:
    """The line a person would quote from a failed run's log.

    A Python traceback ends with ``SomeError: message``, which is the best summary; failing
    that, the last line that says ERROR/FATAL (Spark's log4j lines); failing that, the last
    non-empty line. Long lines are cut, as Glue cuts ErrorMessage.
    """
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    for pattern in (_EXCEPTION_LINE, _ERROR_WORD):
        for line in reversed(lines):
            if pattern.search(line):
                return line[:limit]
    return lines[-1][:limit] if lines else None


def stop_orphan(run: RunRecord) -> None:
    """Kill the process group of a run whose endpoint died, if that very process still lives
    (same pid *and* start time, so a recycled pid is never hit)."""
    if run.child_pid is None or run.child_started is None:
        return
    if not process_alive(run.child_pid, run.child_started):
        return
    log.warning("Stopping orphaned child %s of Glue run %s", run.child_pid, run.id)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(run.child_pid, signal.SIGKILL)


def read_log_tail(path: str, max_bytes: int = 64 * 1024) -> str:
    """The end of a log file (where the error is), or empty text if it is missing."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


class RunStore:
    """Runs in memory, written through to PostgreSQL when a DSN is given.

    Writes are whole-record upserts (the record is small), so no partial run ever lands.
    A failed write is logged and the run carries on: losing history must not fail a job.
    """

    def __init__(self, pg_dsn: str | None = None) -> None:
        self._dsn = pg_dsn
        self._lock = threading.Lock()
        self._runs: dict[str, RunRecord] = {}
        if pg_dsn is not None:
            self._create_table()
            for run in self._load():
                self._runs[run.id] = run

    def _create_table(self) -> None:
        assert self._dsn is not None
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA IF NOT EXISTS local_glue")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS local_glue.job_runs ("
                " id text PRIMARY KEY, job_name text NOT NULL, state text NOT NULL,"
                " started_on double precision NOT NULL, record jsonb NOT NULL)"
            )

    def _load(self) -> list[RunRecord]:
        assert self._dsn is not None
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            rows = conn.execute("SELECT record FROM local_glue.job_runs").fetchall()
        runs = [RunRecord(**row[0]) for row in rows]
        for run in runs:
            if run.active:
                stop_orphan(run)
                was = run.state.lower()
                run.state = "ERROR"
                run.error_message = (
                    f"The local Glue endpoint stopped while this run was {was}; "
                    "its outcome is unknown."
                )
                run.completed_on = run.last_modified_on
                self._write(run)
        return runs

    def _write(self, run: RunRecord) -> None:
        if self._dsn is None:
            return
        try:
            with psycopg.connect(self._dsn, autocommit=True) as conn:
                conn.execute(
                    "INSERT INTO local_glue.job_runs (id, job_name, state, started_on, record)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET"
                    " state = EXCLUDED.state, record = EXCLUDED.record",
                    (run.id, run.job_name, run.state, run.started_on, json.dumps(asdict(run))),
                )
        except psycopg.Error:
            log.exception("Could not persist Glue run %s (state %s)", run.id, run.state)

    def save(self, run: RunRecord) -> None:
        with self._lock:
            self._runs[run.id] = run
        self._write(run)

    def get(self, run_id: str) -> RunRecord | None:
        with self._lock:
            return self._runs.get(run_id)

    def for_job(self, job_name: str) -> list[RunRecord]:
        with self._lock:
            return newest_first(r for r in self._runs.values() if r.job_name == job_name)
