"""Runs statements asynchronously, each on its own PostgreSQL connection in a worker thread.

A new connection per statement matches the Data API (no session state leaks between
statements) and makes RedshiftPid the real backend pid, so CancelStatement is a plain
``pg_cancel_backend``. Status changes are written to the store first and then announced on
``changed`` so long-polling requests in this process wake at once.

Faults are recorded, never waited out: a statement whose backend dies (terminated, killed,
or lost in a server crash) ends FAILED with the reason; writes to the store are retried
while PostgreSQL restarts (crash recovery refuses connections for a moment), and a worker
that could not record its outcome is noticed by ``is_running`` and reaped by the backend.
Results are fetched page by page within the Data API's limits (results.py).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import psycopg
from psycopg import ClientCursor
from psycopg import sql as pgsql
from psycopg.pq import TransactionStatus

from local.redshift_data.encoding import column_metadata, use_text_loaders
from local.redshift_data.results import (
    DEFAULT_PAGE_ROWS,
    PagedResult,
    ResultLimits,
    ResultTooLarge,
    is_query,
)
from local.redshift_data.schema import transient_connect_error
from local.redshift_data.store import StatementStore
from local.warehouse.redshift_compat import gate_enabled, local_statements

log = logging.getLogger(__name__)

CANCELLED_MESSAGE = "Query was cancelled by CancelStatement."
STOPPED_MESSAGE = "Aborted: the local Data API endpoint stopped while the statement was running."
__all__ = ["DEFAULT_PAGE_ROWS", "Executor", "Job", "is_running"]
# Seconds the executor keeps retrying a store write while PostgreSQL is unavailable (a
# restart after a backend crash takes about a second), and opening a statement's connection.
STORE_RETRY_SECONDS = 120.0
CONNECT_RETRY_SECONDS = 30.0
_T = TypeVar("_T")

# Statements whose worker thread is alive, across every executor in this process.
_RUNNING: set[str] = set()
_RUNNING_LOCK = threading.Lock()
_CURSOR_NAMES = itertools.count(1)


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


class _Cancelled(Exception):
    pass


@dataclass
class _Outcome:
    status: str
    error: str | None = None
    has_result_set: bool = False
    result_rows: int = -1
    columns: list[dict[str, Any]] | None = None
    page_count: int = 0
    result_size: int = -1


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
        self._running_slots = threading.BoundedSemaphore(max_running)
        self.dsn_for = dsn_for
        self.result_limits = ResultLimits(page_rows=page_rows)
        self.store_retry_seconds = STORE_RETRY_SECONDS
        self.connect_retry_seconds = CONNECT_RETRY_SECONDS
        self.changed = threading.Condition()
        self._versions: dict[str, int] = {}
        self.stage_delays: dict[str, float] = {}
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._backends: dict[str, int] = {}
        self.redshift_gate = gate_enabled(os.environ)  # MYSTORE_LOCAL_REDSHIFT_GATE

    @property
    def page_rows(self) -> int:
        return self.result_limits.page_rows

    def submit(self, job: Job) -> None:
        thread = threading.Thread(
            target=self._run, args=(job,), name=f"statement-{job.statement_id}", daemon=True
        )
        with self._lock:
            self._threads.add(thread)
        with _RUNNING_LOCK:
            _RUNNING.add(job.statement_id)
        thread.start()

    def _durably(self, what: str, statement_id: str, call: Callable[[], _T]) -> _T:
        """Run a store call, retrying while PostgreSQL is unreachable (e.g. restarting after
        a crash), so a statement's outcome is recorded rather than lost; the outage itself
        is recorded as an incident once the store answers again."""
        deadline = time.monotonic() + self.store_retry_seconds
        failed_at: float | None = None
        delay = 0.1
        while True:
            try:
                result = call()
            except psycopg.OperationalError as exc:
                if failed_at is None:
                    failed_at = time.monotonic()
                    log.warning(
                        "statement %s: the store is unavailable while trying to %s (%s); retrying",
                        statement_id,
                        what,
                        _pg_message(exc),
                    )
                if time.monotonic() >= deadline or self._stopping.is_set():
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
                continue
            if failed_at is not None:
                outage = time.monotonic() - failed_at
                with suppress(psycopg.Error):
                    self.store.record_incident(
                        "store_unavailable",
                        f"PostgreSQL refused the endpoint's bookkeeping for {outage:.1f} s "
                        f"(server restart or crash recovery) while trying to {what}.",
                        statement_id,
                    )
            return result

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

    def _set(self, statement_id: str, **values: Any) -> None:
        self._durably("update", statement_id, lambda: self.store.update(statement_id, **values))
        self.notify(statement_id)

    def _finish(self, statement_id: str, status: str, **values: Any) -> None:
        self._durably(
            f"record {status}",
            statement_id,
            lambda: self.store.finish(statement_id, status, **values),
        )

    def _run(self, job: Job) -> None:
        try:
            with self._running_slots:
                self._run_job(job)
        except Exception as exc:  # a worker must always leave a final status behind
            log.exception("statement %s crashed the worker", job.statement_id)
            try:
                self._finish(job.statement_id, "FAILED", error=f"Local endpoint error: {exc}")
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
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _cancel_requested(self, statement_id: str) -> bool:
        row = self._durably("read", statement_id, lambda: self.store.get(statement_id))
        return bool(row and row["cancel_requested"])

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
        return CANCELLED_MESSAGE if self._cancel_requested(statement_id) else None

    def _run_job(self, job: Job) -> None:
        self._hold("SUBMITTED")
        if reason := self._abort_reason(job.statement_id):
            self._abort_all(job, reason)
            return
        self._set(job.statement_id, status="PICKED")
        self._hold("PICKED")
        try:
            conn = self._connect(job)
        except psycopg.Error as exc:
            self._finish_failed(job, _pg_message(exc))
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
                    self._finish_failed(job, _pg_message(exc))
                    return
            pid = conn.info.backend_pid
            with self._lock:
                self._backends[job.statement_id] = pid
            try:
                self._durably(
                    "record STARTED",
                    job.statement_id,
                    lambda: self.store.mark_started(job.statement_id, pid),
                )
                self.notify(job.statement_id)
                if reason := self._abort_reason(job.statement_id):
                    self._abort_all(job, reason)
                    return
                self._hold("STARTED")
                if reason := self._abort_reason(job.statement_id):  # cancelled while held
                    self._abort_all(job, reason)
                    return
                if job.is_batch:
                    self._run_batch(conn, job)
                else:
                    outcome = self._execute(conn, job.statement_id, job.sqls[0], job.values)
                    self._store_outcome(job.statement_id, outcome)
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
        done: list[_Outcome] = []
        failed: _Outcome | None = None
        pid = conn.info.backend_pid
        for sub_id, sql in zip(subs, job.sqls, strict=True):
            self._durably("record STARTED", sub_id, partial(self.store.mark_started, sub_id, pid))
            self.notify(sub_id)
            outcome = self._execute(conn, sub_id, sql, job.values, in_transaction)
            if outcome.status != "FINISHED":
                failed = outcome
                break
            done.append(outcome)
            self._store_outcome(sub_id, outcome)
        if in_transaction:
            with suppress(psycopg.Error):  # a broken connection has rolled back already
                conn.execute("rollback" if failed else "commit")
        if failed is None:
            total_rows = sum(max(outcome.result_rows, 0) for outcome in done)
            self._store_outcome(
                job.statement_id, _Outcome(status="FINISHED", result_rows=total_rows)
            )
            return
        self._store_outcome(subs[len(done)], failed)
        for sub_id in subs[len(done) + 1 :]:
            self._finish(
                sub_id,
                "ABORTED",
                error="Not run: an earlier statement in the batch did not finish.",
            )
        self._store_outcome(job.statement_id, _Outcome(status=failed.status, error=failed.error))

    def _execute(
        self,
        conn: psycopg.Connection[Any],
        statement_id: str,
        sql: str,
        values: Mapping[str, str] | None,
        in_transaction: bool = False,
    ) -> _Outcome:
        try:  # the Redshift compatibility gate and dialect translation (local/warehouse/redshift_compat.py)
            first, *more = local_statements(
                sql,
                gate=self.redshift_gate,
                in_transaction_block=in_transaction,
                body_of=lambda name: _procedure_body(conn, name),
            )
        except ValueError as exc:
            return _Outcome(status="FAILED", error=f"ERROR: {exc}")
        pid = conn.info.backend_pid
        try:
            if not more and is_query(first):
                streamed = self._stream_query(conn, statement_id, first, values)
                if streamed is not None:
                    return streamed
            return self._execute_plainly(conn, statement_id, first, values, more)
        except ResultTooLarge as exc:
            return _Outcome(status="FAILED", error=str(exc))
        except psycopg.errors.QueryCanceled as exc:
            reason = self._abort_reason(statement_id.split(":")[0])
            if reason:
                return _Outcome(status="ABORTED", error=reason)
            return _Outcome(status="FAILED", error=_pg_message(exc))
        except psycopg.Error as exc:
            if conn.closed or conn.broken:
                return self._backend_lost(statement_id, pid, exc)
            return _Outcome(status="FAILED", error=_pg_message(exc))

    def _backend_lost(self, statement_id: str, pid: int, exc: psycopg.Error) -> _Outcome:
        """The statement's PostgreSQL backend ended under it (terminated, killed, crashed)."""
        reason = self._abort_reason(statement_id.split(":")[0])
        if reason:
            return _Outcome(status="ABORTED", error=reason)
        cause = _pg_message(exc) or "the connection was lost"
        message = (
            f"ERROR: the PostgreSQL backend (pid {pid}) running this statement ended before "
            f"it finished ({cause}); its work was not committed."
        )
        log.warning("statement %s: %s", statement_id, message)
        with suppress(psycopg.Error):
            self._durably(
                "record the lost backend",
                statement_id,
                lambda: self.store.record_incident("backend_lost", message, statement_id),
            )
        return _Outcome(status="FAILED", error=message)

    def _result(
        self,
        conn: psycopg.Connection[Any],
        statement_id: str,
        description: Sequence[psycopg.Column],
        fetch: Callable[[int], Sequence[Sequence[Any]]],
    ) -> _Outcome:
        """Fetch a result set page by page into the store, within the Data API's limits."""
        limits = self.result_limits

        def write(page_no: int, records: str) -> None:
            self._durably(
                "store a result page",
                statement_id,
                lambda: self.store.add_result_page(statement_id, page_no, records),
            )

        paged = PagedResult(limits, write)
        while rows := fetch(limits.page_rows):
            paged.add(rows)
        paged.close()
        type_names = {
            column.type_code: _type_name(conn, column.type_code) for column in description
        }
        return _Outcome(
            status="FINISHED",
            has_result_set=True,
            result_rows=paged.rows,
            columns=column_metadata(description, type_names),
            page_count=paged.pages,
            result_size=paged.size,
        )

    def _stream_query(
        self,
        conn: psycopg.Connection[Any],
        statement_id: str,
        sql: str,
        values: Mapping[str, str] | None,
    ) -> _Outcome | None:
        """Run a query through a server-side cursor, so rows arrive one page at a time.

        None when PostgreSQL will not DECLARE it (several statements, a data-modifying
        WITH, SELECT INTO, ...): nothing ran, and the caller runs it plainly. Inside a batch
        transaction the attempt is fenced by a savepoint.
        """
        text = ClientCursor(conn).mogrify(sql, values) if values is not None else sql
        own_transaction = conn.info.transaction_status == TransactionStatus.IDLE
        conn.execute("begin" if own_transaction else "savepoint local_data_api_result")
        cursor = conn.cursor(name=f"local_data_api_result_{next(_CURSOR_NAMES)}")
        try:
            cursor.execute(text)
        except (psycopg.errors.QueryCanceled, psycopg.OperationalError):
            raise
        except psycopg.Error:
            conn.execute(
                "rollback" if own_transaction else "rollback to savepoint local_data_api_result"
            )
            return None
        description = cursor.description
        assert description is not None  # a declared cursor always describes its rows
        try:
            outcome = self._result(conn, statement_id, description, cursor.fetchmany)
        except ResultTooLarge:  # nothing of it is kept: undo what the query did
            conn.execute(
                "rollback" if own_transaction else "rollback to savepoint local_data_api_result"
            )
            raise
        cursor.close()
        conn.execute("commit" if own_transaction else "release savepoint local_data_api_result")
        return outcome

    def _execute_plainly(
        self,
        conn: psycopg.Connection[Any],
        statement_id: str,
        sql: str,
        values: Mapping[str, str] | None,
        extra: Sequence[str] = (),
    ) -> _Outcome:
        """Any statement (or several); a result set of the last one is paged from libpq.
        ``extra`` are statements the dialect adapter adds after it (e.g. the index it makes
        for a SORTKEY); they return no rows."""
        with ClientCursor(conn) as cursor:
            if values is None:
                cursor.execute(sql)
            else:
                cursor.execute(sql, values)
            for statement in extra:
                cursor.execute(statement)
            description = cursor.description
            while cursor.nextset():
                if cursor.description is not None:
                    description = cursor.description
            if description is None:
                return _Outcome(status="FINISHED", result_rows=max(cursor.rowcount, -1))
            return self._result(conn, statement_id, description, cursor.fetchmany)

    def _store_outcome(self, statement_id: str, outcome: _Outcome) -> None:
        self._finish(
            statement_id,
            outcome.status,
            error=outcome.error,
            has_result_set=outcome.has_result_set,
            result_rows=outcome.result_rows,
            column_metadata=outcome.columns,
            page_count=outcome.page_count,
            result_size=outcome.result_size,
        )
        self.notify(statement_id)

    def _finish_failed(self, job: Job, message: str) -> None:
        for index in range(1, len(job.sqls) + 1 if job.is_batch else 1):
            self._finish(f"{job.statement_id}:{index}", "FAILED", error=message)
        self._finish(job.statement_id, "FAILED", error=message)
        self.notify(job.statement_id)

    def _abort_all(self, job: Job, reason: str) -> None:
        for index in range(1, len(job.sqls) + 1 if job.is_batch else 1):
            self._finish(f"{job.statement_id}:{index}", "ABORTED", error=reason)
        self._finish(job.statement_id, "ABORTED", error=reason)
        self.notify(job.statement_id)


_TYPE_NAME_CACHE: dict[int, str] = {}


def _procedure_body(conn: psycopg.Connection[Any], name: str) -> str | None:
    row = conn.execute(_PROCEDURE_BODY, {"name": name}).fetchone()
    return str(row[0]) if row else None


def _type_name(conn: psycopg.Connection[Any], oid: int) -> str:
    if oid in _TYPE_NAME_CACHE:
        return _TYPE_NAME_CACHE[oid]
    info = conn.adapters.types.get(oid)
    if info is not None:
        name = info.name
    else:
        row = conn.execute("select typname from pg_type where oid = %s", [oid]).fetchone()
        name = row[0] if row else str(oid)
    _TYPE_NAME_CACHE[oid] = name
    return name


def _pg_message(exc: psycopg.Error) -> str:
    """PostgreSQL's own error text (``ERROR: ...`` as Redshift prints it), no client noise."""
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    if primary:
        return f"ERROR: {primary}"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
