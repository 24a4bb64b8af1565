"""The Data API's backend: statements submitted, scoped, waited on, cancelled and listed.

State lives in the warehouse (store.py) and statements run in executor.py; this module is
the service's logic between them, with no JSON in sight (responses.py shapes the answers).
Statements are scoped to the caller identity: another identity's statement is "not found",
as with the real API's session scoping.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

import psycopg
from psycopg.rows import DictRow

from local.core import ServiceError
from local.processes import process_alive, this_process
from local.redshift_data.exceptions import (
    invalid,
    no_result,
    not_found,
    submit_failed,
)
from local.redshift_data.executor import DEFAULT_PAGE_ROWS, Executor, Job, is_running
from local.redshift_data.params import bind_parameters
from local.redshift_data.requests import TERMINAL_STATUSES, ListRequest, SubmitRequest
from local.redshift_data.store import StatementStore
from local.work_events import WorkEndEvents

log = logging.getLogger(__name__)

DEFAULT_MAX_ACTIVE_STATEMENTS = 200
_REMOTE_POLL_SECONDS = 0.2
# How long CancelStatement waits for the statement to stop before saying it could not.
CANCEL_WAIT_SECONDS = 5.0
LOST_WORKER_MESSAGE = (
    "ERROR: the local Data API endpoint's worker for this statement ended without "
    "recording an outcome (see the endpoint's log and local_data_api.incidents)."
)


def orphan_reason(owner_pid: int) -> str:
    return (
        f"Aborted: the local Data API endpoint process (pid {owner_pid}) that ran "
        "this statement stopped before the statement finished."
    )


class RedshiftDataBackend:
    """Statements over the local warehouse; ``stage_delays`` holds statuses open for tests."""

    def __init__(
        self,
        dsn_for: Callable[[str], str],
        *,
        database_dsn: str,
        max_active_statements: int = DEFAULT_MAX_ACTIVE_STATEMENTS,
        page_rows: int = DEFAULT_PAGE_ROWS,
        warehouse_down_reason: Callable[[], str | None] | None = None,
    ) -> None:
        self.max_active_statements = max_active_statements
        self.owner = this_process()
        self.store = StatementStore(database_dsn, down_reason=warehouse_down_reason)
        self.executor = Executor(self.store, dsn_for, page_rows=page_rows)
        # WithEvent: statement ends to Prefect (local/work_events.py); the stack hands the
        # same object to its Glue job runs.
        self.events = WorkEndEvents()
        self.executor.on_event = self.events.statement_ended
        self.recover()

    @property
    def stage_delays(self) -> dict[str, float]:
        """Seconds to hold each new statement in SUBMITTED / PICKED / STARTED (for tests)."""
        return self.executor.stage_delays

    def close(self) -> None:
        self.executor.stop()
        self.events.close()
        self.store.close()

    def recover(self) -> list[str]:
        """ABORT statements left unfinished by endpoint processes that are gone; purge old ones."""
        aborted = []
        for row in self.store.active_owned_elsewhere(self.owner):
            if process_alive(row["owner_pid"], row["owner_started"]):
                continue
            self.store.abort_orphan(row["id"], orphan_reason(row["owner_pid"]))
            aborted.append(row["id"])
        if aborted:
            log.warning("Marked %d statement(s) of dead endpoint processes ABORTED", len(aborted))
        self.store.purge_expired()
        return aborted

    def submit(self, operation: str, request: SubmitRequest, identity: str) -> DictRow:
        """Record and start a statement, or find the one its ClientToken names; with
        WaitTimeSeconds, return it once it ended or the wait ran out."""
        sqls, values = bind_parameters(list(request.sqls), list(request.parameters or []) or None)
        statement_id = str(uuid.uuid4())
        try:
            row, is_new = self.store.submit(
                request, statement_id, identity, self.owner, self.max_active_statements
            )
        except psycopg.Error as exc:
            raise submit_failed(operation, statement_id, exc) from exc
        if is_new or self._never_started(row):
            if not is_new:
                # The first attempt recorded it but answered an error (the store's commit
                # reply was lost, e.g. in a server restart) and so started no worker; this
                # retry of the same ClientToken starts it, or it would never run.
                log.warning("statement %s: recorded by a failed submit; starting it now", row["id"])
            if request.with_event:
                self.events.expect()
            self.executor.submit(
                Job(
                    statement_id=row["id"],
                    database=request.database,
                    sqls=sqls,
                    values=values,
                    is_batch=request.is_batch,
                    execution_mode=request.execution_mode,
                    db_user=request.db_user,
                    with_event=request.with_event,
                )
            )
        return self.wait(row["id"], request.wait_time_seconds) if request.wait_time_seconds else row

    def _never_started(self, row: DictRow) -> bool:
        """A statement of this process still SUBMITTED with no worker: none was ever started
        (a worker's first step moves it on, and the worker that wins the move runs it)."""
        return (
            row["status"] == "SUBMITTED"
            and (row["owner_pid"], row["owner_started"]) == self.owner
            and not is_running(row["id"])
        )

    def owned(self, statement_id: str, identity: str, wait: int | None = None) -> DictRow:
        """The caller's statement (after waiting up to ``wait`` seconds for it to end)."""
        row = self.store.get(statement_id, identity)
        if row is None:
            raise not_found(statement_id)
        row = self._reap_if_orphaned(row)
        return self.wait(statement_id, wait) if wait else row

    def sub_statements(self, row: DictRow) -> list[DictRow]:
        return self.store.sub_statements(row["id"]) if row["is_batch"] else []

    def _reap_if_orphaned(self, row: DictRow) -> DictRow:
        """An unfinished statement nobody runs any more ends on sight, with the reason.

        Its endpoint process died: ABORTED (endpoints sharing the server would otherwise
        show it running until one restarts). It is this process's, but no worker runs it
        (the worker could not record its outcome): FAILED, rather than STARTED forever.
        """
        if row["status"] in TERMINAL_STATUSES:
            return row
        top_id = row["parent_id"] or row["id"]
        if (row["owner_pid"], row["owner_started"]) == self.owner:
            if is_running(top_id):
                return row
            current = self.store.get(row["id"])  # the worker records before it leaves
            if current is None or current["status"] in TERMINAL_STATUSES:
                return current or row
            log.error("statement %s: no worker runs it any more; marking it FAILED", top_id)
            self.store.record_incident("worker_lost", LOST_WORKER_MESSAGE, top_id)
            for sub in self.store.sub_statements(top_id):
                if sub["status"] not in TERMINAL_STATUSES:
                    self.store.finish(sub["id"], "FAILED", error=LOST_WORKER_MESSAGE)
            self.store.finish(top_id, "FAILED", error=LOST_WORKER_MESSAGE)
            return self.store.get(row["id"]) or row
        if process_alive(row["owner_pid"], row["owner_started"]):
            return row
        self.store.abort_orphan(top_id, orphan_reason(row["owner_pid"]))
        return self.store.get(row["id"]) or row

    def result_page(self, row: DictRow, page_no: int) -> str:
        """Page ``page_no`` of a FINISHED statement's records (JSON text)."""
        statement_id = row["id"]
        if row["is_batch"]:
            raise invalid(
                f"Statement {statement_id} is a batch; fetch the result of a sub-statement "
                f"by its Id ({statement_id}:1 to {statement_id}:{len(row['query_strings'] or [])})."
            )
        if row["status"] != "FINISHED":
            if row["status"] in TERMINAL_STATUSES:
                raise no_result(statement_id, f"is {row['status']}")
            raise invalid(
                f"Statement {statement_id} is {row['status']}; its result is available once it "
                "is FINISHED (pass WaitTimeSeconds to wait for it)."
            )
        if not row["has_result_set"]:
            raise no_result(statement_id, "returned no result set")
        if page_no >= max(row["page_count"], 1):
            raise invalid(f"NextToken does not match a page of statement {statement_id}.")
        return self.store.result_page(statement_id, page_no) or "[]"

    def cancel(self, statement_id: str, identity: str) -> None:
        """Cancel a running statement and return once it has ended (ABORTED).

        Never a silent no-op: when the statement is still running after
        ``CANCEL_WAIT_SECONDS`` the call fails (QueryTimeoutException) naming its status and
        backend; the cancel request stays recorded, so the statement ends ABORTED if the
        worker sees it later. A store it cannot reach is a DatabaseConnectionException.
        """
        try:
            self._cancel(statement_id, identity)
        except psycopg.OperationalError as exc:
            raise ServiceError(
                "DatabaseConnectionException",
                f"Could not cancel statement {statement_id}: the warehouse is unreachable "
                f"({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}).",
                500,
            ) from exc

    def _cancel(self, statement_id: str, identity: str) -> None:
        row = self.owned(statement_id, identity)
        if row["parent_id"] is not None:
            raise invalid(
                f"Cancel the batch {row['parent_id']}, not its sub-statement {statement_id}."
            )
        if row["status"] in TERMINAL_STATUSES:
            raise invalid(
                f"Could not cancel a query that is already in {row['status']} state with ID: {statement_id}"
            )
        self.store.request_cancel(statement_id)
        deadline = time.monotonic() + CANCEL_WAIT_SECONDS
        signalled = False
        while True:
            version = self.executor.version(statement_id)
            current = self.store.get(statement_id)
            if current is None:
                raise not_found(statement_id)
            current = self._reap_if_orphaned(current)
            if current["status"] in TERMINAL_STATUSES:
                return
            if current["status"] == "STARTED" and current["redshift_pid"]:
                signalled = self.store.cancel_backend(current["redshift_pid"], statement_id)
            if time.monotonic() >= deadline:
                backend = (
                    f"backend pid {current['redshift_pid']} was signalled"
                    if signalled
                    else f"no live backend was found to signal (pid {current['redshift_pid']})"
                )
                raise ServiceError(
                    "QueryTimeoutException",
                    f"Could not cancel statement {statement_id}: it is still {current['status']} "
                    f"{CANCEL_WAIT_SECONDS:.0f} s after the cancel request ({backend}). The "
                    "request stays recorded; check DescribeStatement.",
                )
            self.executor.wait_for_change(statement_id, version, 0.1)

    def list(self, identity: str, request: ListRequest) -> tuple[list[DictRow], bool]:
        return self.store.list_statements(identity, request)

    def wait(self, statement_id: str, seconds: int) -> DictRow:
        """The statement once it has ended, or as it is when ``seconds`` run out.

        Statements run by this process wake the waiter as soon as they change; statements
        run by another endpoint process are re-read every 0.2 s.
        """
        deadline = time.monotonic() + seconds
        while True:
            version = self.executor.version(statement_id)
            row = self.store.get(statement_id)
            if row is None:
                raise not_found(statement_id)
            row = self._reap_if_orphaned(row)
            remaining = deadline - time.monotonic()
            if row["status"] in TERMINAL_STATUSES or remaining <= 0:
                return row
            self.executor.wait_for_change(
                statement_id, version, min(remaining, _REMOTE_POLL_SECONDS)
            )
