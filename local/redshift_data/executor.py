"""Runs statements asynchronously, each on its own PostgreSQL connection in a worker thread.

A new connection per statement matches the Data API (no session state leaks between
statements) and makes RedshiftPid the real backend pid, so CancelStatement is a plain
``pg_cancel_backend``. Status changes are written to the store first and then announced on
``changed`` so long-polling requests in this process wake at once.

Faults are recorded, never waited out: a statement whose backend dies (terminated, killed,
or lost in a server crash) ends FAILED with the reason; writes to the store are retried
while PostgreSQL restarts (crash recovery refuses connections for a moment), and a worker
that could not record its outcome is noticed by ``is_running`` and reaped by the backend.
This module decides when a statement runs and what happens to it; how its SQL runs on its
connection and its rows are paged into the store (within the Data API's limits, results.py)
lives in result_fetch.py, and the retried store writes that record its status in
durable_status.py.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import Any

import psycopg
from psycopg import sql as pgsql

from local.redshift_data.durable_status import DurableStatusWriter
from local.redshift_data.encoding import use_text_loaders
from local.redshift_data.requests import TERMINAL_STATUSES
from local.redshift_data.result_fetch import Outcome, execute_plainly, pg_message, stream_query
from local.redshift_data.results import DEFAULT_PAGE_ROWS, ResultLimits, ResultTooLarge, is_query
from local.redshift_data.schema import WarehouseDownError
from local.redshift_data.store import StatementStore
from local.warehouse.postgres import ServerLog, transient_connect_error
from local.warehouse.redshift_compat import gate_enabled, local_statements

log = logging.getLogger(__name__)

CANCELLED_MESSAGE = "Query was cancelled by CancelStatement."
STOPPED_MESSAGE = "Aborted: the local Data API endpoint stopped while the statement was running."
__all__ = ["DEFAULT_PAGE_ROWS", "Executor", "Job", "is_running"]
# Seconds the executor keeps retrying to open a statement's connection while PostgreSQL is
# (re)starting; store writes are retried by durable_status.py (STORE_RETRY_SECONDS).
CONNECT_RETRY_SECONDS = 30.0

# Statements whose worker thread is alive, across every executor in this process.
_RUNNING: set[str] = set()
_RUNNING_LOCK = threading.Lock()


def is_running(statement_id: str) -> bool:
    """Whether a worker of this process is still running the (top-level) statement."""
    with _RUNNING_LOCK:
        return statement_id.split(":")[0] in _RUNNING


# Statements holding a PostgreSQL connection at once; the rest wait in SUBMITTED, the way
# Redshift queues work beyond its concurrency. Keeps well under max_connections (100).
DEFAULT_MAX_RUNNING = 48
# DbUser values that run as the local superuser: Redshift's default admin user. Any other
# DbUser runs as that PostgreSQL role (SET SESSION AUTHORIZATION), so grants are enforced.
ADMIN_DB_USERS = frozenset({"awsuser"})
_PROCEDURE_BODY = (
    "select p.prosrc from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace"
    " where p.prokind = 'p' and (n.nspname || '.' || p.proname = %(name)s"
    " or (p.proname = %(name)s and n.nspname = any(current_schemas(false))))"
)


@dataclass
class Job:
    """One submitted statement (or batch) as the worker runs it."""

    statement_id: str
    database: str
    sqls: Sequence[str]
    values: Mapping[str, str] | None
    is_batch: bool
    execution_mode: str
    db_user: str | None = None
    with_event: bool = False


class Executor:
    """Starts one daemon thread per job; ``stage_delays`` holds statuses open for tests."""

    def __init__(
        self,
        store: StatementStore,
        dsn_for: Callable[[str], str],
        *,
        page_rows: int = DEFAULT_PAGE_ROWS,
        max_running: int = DEFAULT_MAX_RUNNING,
    ) -> None:
        self.store = store
        self._stopping = threading.Event()
        self._status = DurableStatusWriter(store, self.notify, self._stopping)
        self._running_slots = threading.BoundedSemaphore(max_running)
        self.dsn_for = dsn_for
        self.result_limits = ResultLimits(page_rows=page_rows)
        self.connect_retry_seconds = CONNECT_RETRY_SECONDS
        self.changed = threading.Condition()
        self._versions: dict[str, int] = {}
        self.stage_delays: dict[str, float] = {}
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._backends: dict[str, int] = {}
        self.redshift_gate = gate_enabled(os.environ)  # MYSTORE_LOCAL_REDSHIFT_GATE
        # Called with (statement id, final status) when a job submitted WithEvent ended;
        # must return at once (events.py hands the work to its own threads).
        self.on_event: Callable[[str, str], None] | None = None
        # The warehouse's server log: a lost backend's FATAL message is read from it when
        # libpq reports only "server closed the connection unexpectedly".
        self.server_log: ServerLog | None = None

    @property
    def page_rows(self) -> int:
        return self.result_limits.page_rows

    @property
    def store_retry_seconds(self) -> float:
        """Seconds a store write is retried while PostgreSQL is unavailable."""
        return self._status.retry_seconds

    @store_retry_seconds.setter
    def store_retry_seconds(self, seconds: float) -> None:
        self._status.retry_seconds = seconds

    def submit(self, job: Job) -> None:
        """Start a worker for ``job``, unless one of this process already runs it."""
        thread = threading.Thread(
            target=self._run, args=(job,), name=f"statement-{job.statement_id}", daemon=True
        )
        with _RUNNING_LOCK:
            if job.statement_id in _RUNNING:
                return
            _RUNNING.add(job.statement_id)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def notify(self, statement_id: str) -> None:
        """Announce a change of ``statement_id`` (or one of its sub-statements)."""
        top_id = statement_id.split(":")[0]
        with self.changed:
            self._versions[top_id] = self._versions.get(top_id, 0) + 1
            self.changed.notify_all()

    def version(self, statement_id: str) -> int:
        """A counter that moves whenever the statement changes in this process.

        Waiters compare versions rather than waking on any change, so fifty long-polls do
        not each re-read the store whenever any one statement moves.
        """
        with self.changed:
            return self._versions.get(statement_id.split(":")[0], 0)

    def wait_for_change(self, statement_id: str, version: int, timeout: float) -> None:
        """Block until the statement changed after ``version`` was read, or ``timeout``."""
        top_id = statement_id.split(":")[0]
        with self.changed:
            self.changed.wait_for(lambda: self._versions.get(top_id, 0) != version, timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel what is running (ABORTED, saying the endpoint stopped) and wait for workers.

        A statement still running when ``timeout`` runs out stays STARTED in the store; the
        next endpoint to start marks it ABORTED once this process is gone.
        """
        self._stopping.set()
        with self._lock:
            threads = list(self._threads)
            running = dict(self._backends)
        for statement_id, pid in running.items():
            try:
                self.store.cancel_backend(pid, statement_id)
            except psycopg.Error:
                log.warning("could not cancel statement %s while stopping", statement_id)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _hold(self, status: str) -> None:
        delay = self.stage_delays.get(status, 0.0)
        if delay:
            self._stopping.wait(delay)

    def _run(self, job: Job) -> None:
        try:
            with self._running_slots:
                self._run_job(job)
        except WarehouseDownError as exc:
            # Nothing can be recorded; the statement ended with the server (its transaction
            # rolled back), and requests about it say why (DatabaseConnectionException).
            log.error("statement %s ended with the warehouse: %s", job.statement_id, exc)
        except Exception as exc:  # a worker must always leave a final status behind
            log.exception("statement %s crashed the worker", job.statement_id)
            try:
                self._status.finish(
                    job.statement_id, "FAILED", error=f"Local endpoint error: {exc}"
                )
            except Exception:
                log.exception("could not record the failure of %s", job.statement_id)
        finally:
            with _RUNNING_LOCK:
                _RUNNING.discard(job.statement_id)
            self.notify(job.statement_id)
            with self.changed:
                # A waiter that reads the version after this sees 0, differs, re-reads
                # the store and finds the statement ended.
                self._versions.pop(job.statement_id, None)
            if job.with_event:
                self._announce_end(job.statement_id)
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _announce_end(self, statement_id: str) -> None:
        """``WithEvent``: pass the statement's final status to ``on_event``."""
        if self.on_event is None:
            return
        try:
            row = self.store.get(statement_id)
            if row is not None and row["status"] in TERMINAL_STATUSES:
                self.on_event(statement_id, str(row["status"]))
        except Exception:  # an event is best effort; the worker must still end cleanly
            log.warning("could not announce the end of %s", statement_id, exc_info=True)

    def _connect(self, job: Job) -> psycopg.Connection[Any]:
        """The statement's own connection; retried while the server is (re)starting."""
        deadline = time.monotonic() + self.connect_retry_seconds
        while True:
            try:
                return psycopg.connect(
                    self.dsn_for(job.database),
                    autocommit=True,
                    application_name=f"local-data-api {job.statement_id}",
                    options="-c client_connection_check_interval=1000",
                )
            except psycopg.OperationalError as exc:
                # Starting up, in recovery or not listening yet: wait for it. Anything else (a
                # database that does not exist, ...) fails the statement at once.
                if not transient_connect_error(exc) or time.monotonic() >= deadline:
                    raise
                if self._stopping.is_set():
                    raise
                time.sleep(0.2)

    def _abort_reason(self, statement_id: str) -> str | None:
        if self._stopping.is_set():
            return STOPPED_MESSAGE
        return CANCELLED_MESSAGE if self._status.cancel_requested(statement_id) else None

    def _run_job(self, job: Job) -> None:
        self._hold("SUBMITTED")
        if not self._status.claim(job.statement_id):
            # Cancelled while SUBMITTED, or picked before: a statement runs at most once.
            log.warning("statement %s: no longer SUBMITTED; not running it", job.statement_id)
            return
        if reason := self._abort_reason(job.statement_id):
            self._status.end_all(job.statement_id, _sub_ids(job), "ABORTED", reason)
            return
        self._hold("PICKED")
        try:
            conn = self._connect(job)
        except psycopg.Error as exc:
            self._status.end_all(job.statement_id, _sub_ids(job), "FAILED", pg_message(exc))
            return
        # Not ``with conn``: its commit on exit would raise on a connection that broke, and
        # replace the statement's recorded reason with that error.
        try:
            use_text_loaders(conn.adapters)
            if job.db_user and job.db_user not in ADMIN_DB_USERS | {conn.info.user}:
                try:
                    authorize = pgsql.SQL("set session authorization {}")
                    conn.execute(authorize.format(pgsql.Identifier(job.db_user)))
                except psycopg.Error as exc:
                    self._status.end_all(job.statement_id, _sub_ids(job), "FAILED", pg_message(exc))
                    return
            pid = conn.info.backend_pid
            with self._lock:
                self._backends[job.statement_id] = pid
            try:
                self._status.mark_started(job.statement_id, pid)
                if reason := self._abort_reason(job.statement_id):
                    self._status.end_all(job.statement_id, _sub_ids(job), "ABORTED", reason)
                    return
                self._hold("STARTED")
                if reason := self._abort_reason(job.statement_id):  # cancelled while held
                    self._status.end_all(job.statement_id, _sub_ids(job), "ABORTED", reason)
                    return
                if job.is_batch:
                    self._run_batch(conn, job)
                else:
                    outcome = self._execute(conn, job.statement_id, job.sqls[0], job.values)
                    self._status.record_outcome(job.statement_id, outcome)
            finally:
                with self._lock:
                    self._backends.pop(job.statement_id, None)
        finally:
            conn.close()

    def _run_batch(self, conn: psycopg.Connection[Any], job: Job) -> None:
        """Run the batch's statements in order; TRANSACTION mode commits all or nothing."""
        subs = [f"{job.statement_id}:{i}" for i in range(1, len(job.sqls) + 1)]
        in_transaction = job.execution_mode == "TRANSACTION"
        if in_transaction:
            conn.execute("begin")
        done: list[Outcome] = []
        failed: Outcome | None = None
        pid = conn.info.backend_pid
        for sub_id, sql in zip(subs, job.sqls, strict=True):
            self._status.mark_started(sub_id, pid)
            outcome = self._execute(conn, sub_id, sql, job.values, in_transaction)
            if outcome.status != "FINISHED":
                failed = outcome
                break
            done.append(outcome)
            self._status.record_outcome(sub_id, outcome)
        if in_transaction:
            with suppress(psycopg.Error):  # a broken connection has rolled back already
                conn.execute("rollback" if failed else "commit")
        if failed is None:
            total_rows = sum(max(outcome.result_rows, 0) for outcome in done)
            self._status.record_outcome(
                job.statement_id, Outcome(status="FINISHED", result_rows=total_rows)
            )
            return
        self._status.record_outcome(subs[len(done)], failed)
        for sub_id in subs[len(done) + 1 :]:
            self._status.finish(
                sub_id,
                "ABORTED",
                error="Not run: an earlier statement in the batch did not finish.",
            )
        self._status.record_outcome(
            job.statement_id, Outcome(status=failed.status, error=failed.error)
        )

    def _execute(
        self,
        conn: psycopg.Connection[Any],
        statement_id: str,
        sql: str,
        values: Mapping[str, str] | None,
        in_transaction: bool = False,
    ) -> Outcome:
        try:  # the Redshift compatibility gate and dialect translation (local/warehouse/redshift_compat.py)
            first, *more = local_statements(
                sql,
                gate=self.redshift_gate,
                in_transaction_block=in_transaction,
                body_of=lambda name: _procedure_body(conn, name),
            )
        except ValueError as exc:
            return Outcome(status="FAILED", error=f"ERROR: {exc}")
        pid = conn.info.backend_pid
        log_from = self.server_log.mark() if self.server_log is not None else 0
        write_page = partial(self._status.write_result_page, statement_id)
        try:
            if not more and is_query(first):
                streamed = stream_query(conn, first, values, self.result_limits, write_page)
                if streamed is not None:
                    return streamed
            return execute_plainly(conn, first, values, more, self.result_limits, write_page)
        except ResultTooLarge as exc:
            return Outcome(status="FAILED", error=str(exc))
        except psycopg.errors.QueryCanceled as exc:
            reason = self._abort_reason(statement_id.split(":")[0])
            if reason:
                return Outcome(status="ABORTED", error=reason)
            return Outcome(status="FAILED", error=pg_message(exc))
        except psycopg.Error as exc:
            if conn.closed or conn.broken:
                return self._backend_lost(statement_id, pid, exc, log_from)
            return Outcome(status="FAILED", error=pg_message(exc))

    def _backend_lost(
        self, statement_id: str, pid: int, exc: psycopg.Error, log_from: int
    ) -> Outcome:
        """The statement's PostgreSQL backend ended under it (terminated, killed, crashed);
        ``log_from``: where the server log ended when the statement began."""
        reason = self._abort_reason(statement_id.split(":")[0])
        if reason:
            return Outcome(status="ABORTED", error=reason)
        cause = pg_message(exc) or "the connection was lost"
        logged = self.server_log.last_fatal(log_from, pid) if self.server_log else None
        if logged and logged.split(":", 1)[-1].strip() not in cause:
            cause = f"{logged.replace('  ', ' ')}; the client saw: {cause}"
        message = (
            f"ERROR: the PostgreSQL backend (pid {pid}) running this statement ended before "
            f"it finished ({cause}); its work was not committed."
        )
        log.warning("statement %s: %s", statement_id, message)
        with suppress(psycopg.Error):
            self._status.durably(
                "record the lost backend",
                statement_id,
                lambda: self.store.record_incident("backend_lost", message, statement_id),
            )
        return Outcome(status="FAILED", error=message)


def _procedure_body(conn: psycopg.Connection[Any], name: str) -> str | None:
    row = conn.execute(_PROCEDURE_BODY, {"name": name}).fetchone()
    return str(row[0]) if row else None


def _sub_ids(job: Job) -> list[str]:
    """The ids of a batch's statements (``<id>:1`` ...); none for a single statement."""
    return [f"{job.statement_id}:{i}" for i in range(1, len(job.sqls) + 1)] if job.is_batch else []
