"""Records a statement's status in the store so that it survives PostgreSQL restarting.

Split from executor.py along the line between running a statement and writing down what
happened to it: every write the executor makes about a statement (PICKED, STARTED, a result
page, how it ended) goes through :meth:`DurableStatusWriter.durably`, which retries while the
server refuses connections (crash recovery takes about a second) and then records the outage
as an incident. A worker thread therefore never loses an outcome to a short outage, and the
executor's own code only says *what* to record. Writes that change what a long-poll would
see are announced with the ``notify`` callback the executor hands in.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any, TypeVar

import psycopg

from local.redshift_data.result_fetch import Outcome, pg_message
from local.redshift_data.schema import WarehouseDownError
from local.redshift_data.store import StatementStore

log = logging.getLogger(__name__)

__all__ = ["STORE_RETRY_SECONDS", "DurableStatusWriter"]

# Seconds a store write is retried while PostgreSQL is unavailable (a restart after a
# backend crash takes about a second).
STORE_RETRY_SECONDS = 120.0
_T = TypeVar("_T")


class DurableStatusWriter:
    """The executor's writes to the statement store, retried through PostgreSQL restarts.

    ``stopping`` ends the retrying early (the endpoint is shutting down); ``notify``
    announces a change of a statement to this process's long-polls.
    """

    def __init__(
        self,
        store: StatementStore,
        notify: Callable[[str], None],
        stopping: threading.Event,
        retry_seconds: float = STORE_RETRY_SECONDS,
    ) -> None:
        self.store = store
        self.notify = notify
        self.stopping = stopping
        self.retry_seconds = retry_seconds

    def durably(self, what: str, statement_id: str, call: Callable[[], _T]) -> _T:
        """Run a store call, retrying while PostgreSQL is unreachable (e.g. restarting after
        a crash), so a statement's outcome is recorded rather than lost; the outage itself
        is recorded as an incident once the store answers again."""
        deadline = time.monotonic() + self.retry_seconds
        failed_at: float | None = None
        delay = 0.1
        while True:
            try:
                result = call()
            except WarehouseDownError:
                raise  # no restart is coming: waiting would only hide the cause
            except psycopg.OperationalError as exc:
                if failed_at is None:
                    failed_at = time.monotonic()
                    log.warning(
                        "statement %s: the store is unavailable while trying to %s (%s); retrying",
                        statement_id,
                        what,
                        pg_message(exc),
                    )
                if time.monotonic() >= deadline or self.stopping.is_set():
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

    def claim(self, statement_id: str) -> bool:
        """SUBMITTED -> PICKED; False if it is no longer SUBMITTED (the worker then leaves it).
        One worker id for every retry, so a retry after a lost reply finds its own claim."""
        worker = uuid.uuid4().hex
        claimed = self.durably(
            "record PICKED", statement_id, lambda: self.store.claim(statement_id, worker)
        )
        self.notify(statement_id)
        return claimed

    def mark_started(self, statement_id: str, pid: int) -> None:
        """STARTED, on the PostgreSQL backend ``pid`` (what CancelStatement cancels)."""
        self.durably(
            "record STARTED", statement_id, lambda: self.store.mark_started(statement_id, pid)
        )
        self.notify(statement_id)

    def finish(self, statement_id: str, status: str, **values: Any) -> None:
        """Record a final status; the caller announces it (once, after the last write)."""
        self.durably(
            f"record {status}",
            statement_id,
            lambda: self.store.finish(statement_id, status, **values),
        )

    def cancel_requested(self, statement_id: str) -> bool:
        row = self.durably("read", statement_id, lambda: self.store.get(statement_id))
        return bool(row and row["cancel_requested"])

    def write_result_page(self, statement_id: str, page_no: int, records: str) -> None:
        self.durably(
            "store a result page",
            statement_id,
            lambda: self.store.add_result_page(statement_id, page_no, records),
        )

    def record_outcome(self, statement_id: str, outcome: Outcome) -> None:
        self.finish(
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

    def end_all(self, statement_id: str, sub_ids: Sequence[str], status: str, message: str) -> None:
        """End a statement and all its sub-statements with the same status and reason."""
        for sub_id in sub_ids:
            self.finish(sub_id, status, error=message)
        self.finish(statement_id, status, error=message)
        self.notify(statement_id)
