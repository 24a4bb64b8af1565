"""Statement bookkeeping in the warehouse itself (schema ``local_data_api``).

Keeping statements, client tokens and result pages in PostgreSQL rather than in memory is
what lets a client in a new process describe a statement, an endpoint restarted after a
crash answer for statements it ran before, and several endpoint processes share one server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from local.redshift_data.exceptions import active_statements_exceeded, invalid
from local.redshift_data.requests import ListRequest, SubmitRequest
from local.redshift_data.schema import ConnectionPool, ensure_schema

_T = TypeVar("_T")

CLIENT_TOKEN_HOURS = 8
RESULT_RETENTION_HOURS = 24
_SUBMIT_LOCK = 0x6C6F63616D  # serializes the active-statement count and token checks


_P = ParamSpec("_P")


def _read_again_once(read: Callable[_P, _T]) -> Callable[_P, _T]:
    """A read that met a connection lost to a server restart is tried once more (on a new
    connection, which waits for the server to accept it): reads are safe to repeat."""

    @wraps(read)
    def reading(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return read(*args, **kwargs)
        except psycopg.OperationalError:
            return read(*args, **kwargs)

    return reading


class StatementStore:
    """All reads and writes of statement records; every method is one short transaction."""

    def __init__(
        self, dsn: str, pool_size: int = 12, down_reason: Callable[[], str | None] | None = None
    ) -> None:
        ensure_schema(dsn)
        self.pool = ConnectionPool(dsn, pool_size, down_reason)

    def close(self) -> None:
        self.pool.close()

    def submit(
        self,
        request: SubmitRequest,
        statement_id: str,
        identity: str,
        owner: tuple[int, float],
        max_active: int,
    ) -> tuple[DictRow, bool]:
        """Record a new statement, or return the one its ClientToken already names.

        Returns the statement row and whether it is new (and so must be run).
        """
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", [_SUBMIT_LOCK])
            if request.client_token is not None:
                existing = self._replay(conn, request, identity)
                if existing is not None:
                    return existing, False
            active = conn.execute(
                "select count(*) as n from local_data_api.statements where parent_id is null and status in ('SUBMITTED', 'PICKED', 'STARTED')"
            ).fetchone()
            if active is not None and active["n"] >= max_active:
                raise active_statements_exceeded(max_active)
            common = {
                "identity": identity,
                "owner_pid": owner[0],
                "owner_started": owner[1],
                "parameters": Jsonb(list(request.parameters)) if request.parameters else None,
                "statement_name": request.statement_name,
                "database": request.database,
                "cluster_identifier": request.cluster_identifier,
                "workgroup_name": request.workgroup_name,
                "db_user": request.db_user,
                "secret_arn": request.secret_arn,
            }
            self._insert(
                conn,
                id=statement_id,
                status="SUBMITTED",
                query_string=None if request.is_batch else request.sqls[0],
                query_strings=Jsonb(list(request.sqls)) if request.is_batch else None,
                is_batch=request.is_batch,
                execution_mode=request.execution_mode if request.is_batch else None,
                **common,
            )
            if request.is_batch:
                for index, sql in enumerate(request.sqls, start=1):
                    self._insert(
                        conn,
                        id=f"{statement_id}:{index}",
                        parent_id=statement_id,
                        sub_index=index,
                        status="SUBMITTED",
                        query_string=sql,
                        **common,
                    )
            if request.client_token is not None:
                conn.execute(
                    "insert into local_data_api.client_tokens (identity, token, fingerprint, statement_id) values (%s, %s, %s, %s)",
                    [identity, request.client_token, request.fingerprint, statement_id],
                )
            row = self._get(conn, statement_id)
            assert row is not None
            return row, True

    def _replay(
        self, conn: psycopg.Connection[DictRow], request: SubmitRequest, identity: str
    ) -> DictRow | None:
        conn.execute(
            "delete from local_data_api.client_tokens where identity = %s and token = %s and created_at < clock_timestamp() - make_interval(hours => %s)",
            [identity, request.client_token, CLIENT_TOKEN_HOURS],
        )
        token = conn.execute(
            "select fingerprint, statement_id from local_data_api.client_tokens where identity = %s and token = %s",
            [identity, request.client_token],
        ).fetchone()
        if token is None:
            return None
        if token["fingerprint"] != request.fingerprint:
            raise invalid(
                f"ClientToken {request.client_token!r} was already used with a different request "
                f"(statement {token['statement_id']}); a reused token must come with an identical request."
            )
        return self._get(conn, token["statement_id"])

    @staticmethod
    def _insert(conn: psycopg.Connection[DictRow], **values: Any) -> None:
        query = sql.SQL("insert into local_data_api.statements ({}) values ({})").format(
            sql.SQL(", ").join(sql.Identifier(name) for name in values),
            sql.SQL(", ").join(sql.Placeholder(name) for name in values),
        )
        conn.execute(query, values)

    @staticmethod
    def _get(conn: psycopg.Connection[DictRow], statement_id: str) -> DictRow | None:
        return conn.execute(
            "select * from local_data_api.statements where id = %s", [statement_id]
        ).fetchone()

    @_read_again_once
    def get(self, statement_id: str, identity: str | None = None) -> DictRow | None:
        """The statement if it exists (and belongs to ``identity`` when one is given)."""
        with self.pool.connection() as conn:
            row = self._get(conn, statement_id)
        if row is None or (identity is not None and row["identity"] != identity):
            return None
        return row

    @_read_again_once
    def sub_statements(self, parent_id: str) -> list[DictRow]:
        with self.pool.connection() as conn:
            return conn.execute(
                "select * from local_data_api.statements where parent_id = %s order by sub_index",
                [parent_id],
            ).fetchall()

    def claim(self, statement_id: str, worker: str) -> bool:
        """Move a SUBMITTED statement to PICKED for ``worker``; whether it is that worker's
        to run. Asking again with the same ``worker`` answers True: a server restart can
        lose the reply to a claim that committed, and the retry must not leave it PICKED."""
        with self.pool.connection() as conn:
            row = conn.execute(
                """update local_data_api.statements
                    set status = 'PICKED', picked_by = %(worker)s, updated_at = clock_timestamp()
                    where id = %(id)s
                      and (status = 'SUBMITTED' or (status = 'PICKED' and picked_by = %(worker)s))
                    returning id""",
                {"id": statement_id, "worker": worker},
            ).fetchone()
        return row is not None

    def mark_started(self, statement_id: str, pid: int) -> DictRow:
        """STARTED with the backend pid and a new query id; returns the row (for the cancel flag)."""
        with self.pool.connection() as conn:
            row = conn.execute(
                """update local_data_api.statements
                    set status = 'STARTED', redshift_pid = %s, redshift_query_id = nextval('local_data_api.query_id_seq'),
                        started_at = clock_timestamp(), updated_at = clock_timestamp()
                    where id = %s returning *""",
                [pid, statement_id],
            ).fetchone()
        assert row is not None
        return row

    def finish(
        self,
        statement_id: str,
        status: str,
        *,
        error: str | None = None,
        has_result_set: bool = False,
        result_rows: int = -1,
        column_metadata: Sequence[Mapping[str, Any]] | None = None,
        page_count: int = 0,
        result_size: int = -1,
    ) -> None:
        """End a statement; its result pages were stored by ``add_result_page`` already.

        A statement that ends without a result set keeps no pages (a partial result written
        before a failure is removed in the same transaction).
        """
        with self.pool.connection() as conn, conn.transaction():
            if not has_result_set:
                conn.execute(
                    "delete from local_data_api.result_pages where statement_id = %s",
                    [statement_id],
                )
            conn.execute(
                """update local_data_api.statements
                    set status = %s, error = %s, has_result_set = %s, result_rows = %s,
                        result_size = %s, column_metadata = %s, page_count = %s,
                        updated_at = clock_timestamp(),
                        duration_ns = case when started_at is null then 0
                            else (extract(epoch from clock_timestamp() - started_at) * 1e9)::bigint end
                    where id = %s""",
                [
                    status,
                    error,
                    has_result_set,
                    result_rows,
                    result_size if has_result_set else -1,
                    Jsonb(list(column_metadata)) if column_metadata is not None else None,
                    page_count if has_result_set else 0,
                    statement_id,
                ],
            )

    def add_result_page(self, statement_id: str, page_no: int, records: str) -> None:
        """Store one page of a running statement's result (pages are written as fetched)."""
        with self.pool.connection() as conn:
            conn.execute(
                """insert into local_data_api.result_pages (statement_id, page_no, records)
                    values (%s, %s, %s)
                    on conflict (statement_id, page_no) do update set records = excluded.records""",
                [statement_id, page_no, records],
            )

    def record_incident(self, kind: str, detail: str, statement_id: str | None = None) -> None:
        """Note what happened to the endpoint (kept with the statements, purged with them)."""
        with self.pool.connection() as conn:
            conn.execute(
                "insert into local_data_api.incidents (kind, statement_id, detail) values (%s, %s, %s)",
                [kind, statement_id, detail],
            )

    @_read_again_once
    def incidents(self, statement_id: str | None = None) -> list[DictRow]:
        with self.pool.connection() as conn:
            return conn.execute(
                """select * from local_data_api.incidents
                    where %(id)s::text is null or statement_id = %(id)s::text order by id""",
                {"id": statement_id},
            ).fetchall()

    @_read_again_once
    def result_page(self, statement_id: str, page_no: int) -> str | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "select records from local_data_api.result_pages where statement_id = %s and page_no = %s",
                [statement_id, page_no],
            ).fetchone()
        return None if row is None else row["records"]

    def request_cancel(self, statement_id: str) -> DictRow | None:
        with self.pool.connection() as conn:
            return conn.execute(
                "update local_data_api.statements set cancel_requested = true, updated_at = clock_timestamp() where id = %s returning *",
                [statement_id],
            ).fetchone()

    def cancel_backend(self, pid: int, statement_id: str) -> bool:
        """Cancel the query of the backend running ``statement_id`` (matched by application name)."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "select pg_cancel_backend(pid) as ok from pg_stat_activity where pid = %s and application_name = %s",
                [pid, f"local-data-api {statement_id.split(':')[0]}"],
            ).fetchone()
        return bool(row and row["ok"])

    @_read_again_once
    def list_statements(self, identity: str, request: ListRequest) -> tuple[list[DictRow], bool]:
        """One page of the caller's top-level statements, newest first; and whether more exist."""
        params: dict[str, Any] = {
            "identity": identity,
            "status": None if request.status == "ALL" else request.status,
            "prefix": request.name_prefix or None,
            "database": request.database,
            "cluster": request.cluster_identifier,
            "workgroup": request.workgroup_name,
            "limit": request.max_results + 1,
            "offset": request.offset,
        }
        with self.pool.connection() as conn:
            rows = conn.execute(
                """select * from local_data_api.statements
                   where identity = %(identity)s and parent_id is null
                     and (%(status)s::text is null or status = %(status)s::text)
                     and (%(prefix)s::text is null or starts_with(statement_name, %(prefix)s::text))
                     and (%(database)s::text is null or database = %(database)s::text)
                     and (%(cluster)s::text is null
                          or cluster_identifier = %(cluster)s::text)
                     and (%(workgroup)s::text is null
                          or workgroup_name = %(workgroup)s::text)
                   order by created_at desc, id limit %(limit)s offset %(offset)s""",
                params,
            ).fetchall()
        return rows[: request.max_results], len(rows) > request.max_results

    def active_owned_elsewhere(self, owner: tuple[int, float]) -> list[DictRow]:
        """Unfinished top-level statements recorded by other endpoint processes."""
        with self.pool.connection() as conn:
            return conn.execute(
                """select id, owner_pid, owner_started, redshift_pid from local_data_api.statements
                    where parent_id is null and status in ('SUBMITTED', 'PICKED', 'STARTED')
                      and not (owner_pid = %s and owner_started = %s)""",
                [owner[0], owner[1]],
            ).fetchall()

    def abort_orphan(self, statement_id: str, reason: str) -> None:
        """ABORT a statement (and its unfinished sub-statements) whose endpoint died."""
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                """select pg_terminate_backend(a.pid) from pg_stat_activity a
                    where a.application_name = %s""",
                [f"local-data-api {statement_id}"],
            )
            conn.execute(
                """update local_data_api.statements set status = 'ABORTED', error = %s, updated_at = clock_timestamp()
                    where (id = %s or parent_id = %s) and status in ('SUBMITTED', 'PICKED', 'STARTED')""",
                [reason, statement_id, statement_id],
            )

    def purge_expired(self) -> int:
        """Forget statements (and results) past the Data API's 24-hour retention."""
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                "delete from local_data_api.client_tokens where created_at < clock_timestamp() - make_interval(hours => %s)",
                [CLIENT_TOKEN_HOURS],
            )
            cursor = conn.execute(
                """delete from local_data_api.statements where parent_id is null
                    and status not in ('SUBMITTED', 'PICKED', 'STARTED')
                    and created_at < clock_timestamp() - make_interval(hours => %s)""",
                [RESULT_RETENTION_HOURS],
            )
            conn.execute(
                "delete from local_data_api.incidents where at < clock_timestamp() - make_interval(hours => %s)",
                [RESULT_RETENTION_HOURS],
            )
            return cursor.rowcount
