"""The RedshiftData service behind the local endpoint: operations, scoping and long-polling.

Each operation validates its request (validation.py), reads or writes the statement store
(store.py) and shapes the response (encoding.py); statements run in executor.py. Statements
are scoped to the caller identity: another identity's statement is "not found", as with the
real API's session scoping.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import psutil
import psycopg
from psycopg.rows import DictRow

from local.data_api.encoding import describe_shape, epoch, list_item_shape
from local.data_api.executor import DEFAULT_PAGE_ROWS, Executor, Job
from local.data_api.params import bind_parameters
from local.data_api.store import StatementStore
from local.data_api.validation import (
    TERMINAL_STATUSES,
    invalid,
    make_next_token,
    parse_list,
    parse_next_token,
    parse_statement_id,
    parse_submit,
    parse_wait,
)
from local.endpoint import Call, ServiceError

log = logging.getLogger(__name__)

TARGET_PREFIX = "RedshiftData"
DEFAULT_MAX_ACTIVE_STATEMENTS = 200
_REMOTE_POLL_SECONDS = 0.2
_CANCEL_RETRY_SECONDS = 2.0

_UNSUPPORTED = frozenset(
    {
        "DescribeTable",
        "ListDatabases",
        "ListSchemas",
        "ListTables",
        "ListSessions",
        "GetStatementResultV2",
    }
)


def this_process_owner() -> tuple[int, float]:
    """(pid, start time): a pid alone could be reused by a later process."""
    pid = os.getpid()
    return pid, psutil.Process(pid).create_time()


def owner_alive(pid: int, started: float) -> bool:
    try:
        process = psutil.Process(pid)
        return (
            abs(process.create_time() - started) < 0.01 and process.status() != psutil.STATUS_ZOMBIE
        )
    except psutil.Error:
        return False


def orphan_reason(owner_pid: int) -> str:
    return (
        f"Aborted: the local Data API endpoint process (pid {owner_pid}) that ran "
        "this statement stopped before the statement finished."
    )


def not_found(statement_id: str) -> ServiceError:
    return ServiceError(
        "ResourceNotFoundException",
        f"Query does not exist: {statement_id}.",
        fields={"ResourceId": statement_id},
    )


class RedshiftDataService:
    """The Data API over the local warehouse; register on an AwsEndpoint as ``RedshiftData``."""

    def __init__(
        self,
        dsn_for: Callable[[str], str],
        *,
        database_dsn: str,
        max_active_statements: int = DEFAULT_MAX_ACTIVE_STATEMENTS,
        page_rows: int = DEFAULT_PAGE_ROWS,
    ) -> None:
        self.max_active_statements = max_active_statements
        self.owner = this_process_owner()
        self.store = StatementStore(database_dsn)
        self.executor = Executor(self.store, dsn_for, page_rows=page_rows)
        self._handlers: dict[str, Callable[[Call], Mapping[str, Any]]] = {
            "ExecuteStatement": self._submit,
            "BatchExecuteStatement": self._submit,
            "DescribeStatement": self._describe,
            "GetStatementResult": self._get_result,
            "CancelStatement": self._cancel,
            "ListStatements": self._list,
        }
        self.recover()

    @property
    def stage_delays(self) -> dict[str, float]:
        """Seconds to hold each new statement in SUBMITTED / PICKED / STARTED (for tests)."""
        return self.executor.stage_delays

    def close(self) -> None:
        self.executor.stop()
        self.store.close()

    def recover(self) -> list[str]:
        """ABORT statements left unfinished by endpoint processes that are gone; purge old ones."""
        aborted = []
        for row in self.store.active_owned_elsewhere(self.owner):
            if owner_alive(row["owner_pid"], row["owner_started"]):
                continue
            self.store.abort_orphan(row["id"], orphan_reason(row["owner_pid"]))
            aborted.append(row["id"])
        if aborted:
            log.warning("Marked %d statement(s) of dead endpoint processes ABORTED", len(aborted))
        self.store.purge_expired()
        return aborted

    def handle(self, call: Call) -> Mapping[str, Any]:
        handler = self._handlers.get(call.operation)
        if handler is not None:
            return handler(call)
        if call.operation in _UNSUPPORTED:
            raise invalid(f"{call.operation} is not supported by the local Data API endpoint.")
        raise ServiceError("UnknownOperationException", f"Unknown operation {call.operation!r}.")

    # --- operations -------------------------------------------------------------------------

    def _submit(self, call: Call) -> Mapping[str, Any]:
        request = parse_submit(call.operation, call.body)
        sqls, values = bind_parameters(list(request.sqls), list(request.parameters or []) or None)
        statement_id = str(uuid.uuid4())
        try:
            row, is_new = self.store.submit(
                request, statement_id, call.identity, self.owner, self.max_active_statements
            )
        except psycopg.Error as exc:
            raise ServiceError(
                f"{call.operation}Exception",
                f"The statement could not be submitted to the warehouse: {exc}",
                500,
                fields={"StatementId": statement_id},
            ) from exc
        if is_new:
            self.executor.submit(
                Job(
                    statement_id=statement_id,
                    database=request.database,
                    sqls=sqls,
                    values=values,
                    is_batch=request.is_batch,
                    execution_mode=request.execution_mode,
                    db_user=request.db_user,
                )
            )
        if request.wait_time_seconds:
            row = self._wait(row["id"], request.wait_time_seconds)
        response: dict[str, Any] = {
            "Id": row["id"],
            "CreatedAt": epoch(row["created_at"]),
            "Database": row["database"],
        }
        for key, column in (
            ("ClusterIdentifier", "cluster_identifier"),
            ("WorkgroupName", "workgroup_name"),
            ("DbUser", "db_user"),
            ("SecretArn", "secret_arn"),
        ):
            if row[column] is not None:
                response[key] = row[column]
        if request.wait_time_seconds:
            response["Status"] = row["status"]
            response["HasResultSet"] = bool(row["has_result_set"])
            if row["redshift_pid"]:
                response["RedshiftPid"] = row["redshift_pid"]
        return response

    def _owned(self, statement_id: str, identity: str) -> DictRow:
        row = self.store.get(statement_id, identity)
        if row is None:
            raise not_found(statement_id)
        return self._reap_if_orphaned(row)

    def _reap_if_orphaned(self, row: DictRow) -> DictRow:
        """An unfinished statement whose endpoint process died is ABORTED on sight.

        Endpoints sharing the server would otherwise show it running until one restarts.
        """
        if (
            row["status"] in TERMINAL_STATUSES
            or (row["owner_pid"], row["owner_started"]) == self.owner
        ):
            return row
        if owner_alive(row["owner_pid"], row["owner_started"]):
            return row
        top_id = row["parent_id"] or row["id"]
        self.store.abort_orphan(top_id, orphan_reason(row["owner_pid"]))
        return self.store.get(row["id"]) or row

    def _describe(self, call: Call) -> Mapping[str, Any]:
        statement_id = parse_statement_id(call.body)
        wait = parse_wait(call.body)
        row = self._owned(statement_id, call.identity)
        if wait:
            row = self._wait(statement_id, wait)
        subs = self.store.sub_statements(statement_id) if row["is_batch"] else []
        return describe_shape(row, subs)

    def _get_result(self, call: Call) -> Mapping[str, Any]:
        statement_id = parse_statement_id(call.body)
        wait = parse_wait(call.body)
        page_no = parse_next_token(call.body)
        row = self._owned(statement_id, call.identity)
        if wait:
            row = self._wait(statement_id, wait)
        if row["is_batch"]:
            raise invalid(
                f"Statement {statement_id} is a batch; fetch the result of a sub-statement "
                f"by its Id ({statement_id}:1 to {statement_id}:{len(row['query_strings'] or [])})."
            )
        if row["status"] != "FINISHED":
            if row["status"] in TERMINAL_STATUSES:
                raise ServiceError(
                    "ResourceNotFoundException",
                    f"Query does not have result: statement {statement_id} is {row['status']}. "
                    "Please check query status with DescribeStatement.",
                    fields={"ResourceId": statement_id},
                )
            raise invalid(
                f"Statement {statement_id} is {row['status']}; its result is available once it "
                "is FINISHED (pass WaitTimeSeconds to wait for it)."
            )
        if not row["has_result_set"]:
            raise ServiceError(
                "ResourceNotFoundException",
                f"Query does not have result: statement {statement_id} returned no result set. "
                "Please check query status with DescribeStatement.",
                fields={"ResourceId": statement_id},
            )
        if page_no >= max(row["page_count"], 1):
            raise invalid(f"NextToken does not match a page of statement {statement_id}.")
        records = self.store.result_page(statement_id, page_no)
        response: dict[str, Any] = {
            "Records": json.loads(records or "[]"),
            "ColumnMetadata": row["column_metadata"] or [],
            "TotalNumRows": row["result_rows"],
        }
        if page_no + 1 < row["page_count"]:
            response["NextToken"] = make_next_token(page_no + 1)
        return response

    def _cancel(self, call: Call) -> Mapping[str, Any]:
        statement_id = parse_statement_id(call.body)
        row = self._owned(statement_id, call.identity)
        if row["parent_id"] is not None:
            raise invalid(
                f"Cancel the batch {row['parent_id']}, not its sub-statement {statement_id}."
            )
        if row["status"] in TERMINAL_STATUSES:
            raise invalid(
                f"Could not cancel a query that is already in {row['status']} state with ID: {statement_id}"
            )
        self.store.request_cancel(statement_id)
        deadline = time.monotonic() + _CANCEL_RETRY_SECONDS
        while True:
            current = self.store.get(statement_id)
            if current is None or current["status"] in TERMINAL_STATUSES:
                break
            if current["status"] == "STARTED" and current["redshift_pid"]:
                self.store.cancel_backend(current["redshift_pid"], statement_id)
            if time.monotonic() >= deadline:
                break
            self.executor.wait_for_change(statement_id, self.executor.version(statement_id), 0.05)
        return {"Status": True}

    def _list(self, call: Call) -> Mapping[str, Any]:
        request = parse_list(call.body)
        rows, more = self.store.list_statements(call.identity, request)
        response: dict[str, Any] = {"Statements": [list_item_shape(row) for row in rows]}
        if more:
            response["NextToken"] = make_next_token(request.offset + request.max_results)
        return response

    # --- long-polling -----------------------------------------------------------------------

    def _wait(self, statement_id: str, seconds: int) -> DictRow:
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
