"""The bookkeeping schema ``local_data_api`` and the pool of connections that use it.

The schema is created on first use. A schema of an older known layout is migrated in place
(``MIGRATIONS``); one this endpoint cannot read (a newer endpoint's, or a layout with no
migration path) is refused with a message, never dropped: its statement records and client
tokens are what keeps a rerun of a finished night from running its CALL again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import DictRow, dict_row

from local.warehouse.postgres import RESTART_WAIT_SECONDS, transient_connect_error

log = logging.getLogger(__name__)

SCHEMA = "local_data_api"
SCHEMA_VERSION = 5
_DDL_LOCK = 0x6C6F63616C  # advisory lock key for schema creation

_DDL = """
create schema if not exists local_data_api;
create table if not exists local_data_api.schema_version (version int not null);
create sequence if not exists local_data_api.query_id_seq;
create table if not exists local_data_api.statements (
    id text primary key,
    parent_id text references local_data_api.statements (id) on delete cascade,
    sub_index int,
    identity text not null,
    owner_pid int not null,
    owner_started double precision not null,
    status text not null,
    query_string text,
    query_strings jsonb,
    parameters jsonb,
    statement_name text,
    database text not null,
    cluster_identifier text,
    workgroup_name text,
    db_user text,
    secret_arn text,
    is_batch boolean not null default false,
    execution_mode text,
    created_at timestamptz not null default clock_timestamp(),
    updated_at timestamptz not null default clock_timestamp(),
    started_at timestamptz,
    duration_ns bigint,
    error text,
    redshift_pid int,
    redshift_query_id bigint,
    has_result_set boolean not null default false,
    result_rows bigint not null default -1,
    result_size bigint not null default -1,
    column_metadata jsonb,
    page_count int not null default 0,
    cancel_requested boolean not null default false
);
create index if not exists statements_identity_created
    on local_data_api.statements (identity, created_at desc) where parent_id is null;
create index if not exists statements_active
    on local_data_api.statements (status) where status in ('SUBMITTED', 'PICKED', 'STARTED');
create index if not exists statements_parent on local_data_api.statements (parent_id);
create table if not exists local_data_api.result_pages (
    statement_id text not null references local_data_api.statements (id) on delete cascade,
    page_no int not null,
    records text not null,
    primary key (statement_id, page_no)
);
create table if not exists local_data_api.client_tokens (
    identity text not null,
    token text not null,
    fingerprint text not null,
    statement_id text not null,
    created_at timestamptz not null default clock_timestamp(),
    primary key (identity, token)
);
"""

# What happened to the endpoint itself (a statement's backend lost, the server restarted).
_INCIDENTS_DDL = """
create table if not exists local_data_api.incidents (
    id bigserial primary key,
    at timestamptz not null default clock_timestamp(),
    kind text not null,
    statement_id text,
    detail text not null
);
"""

# Which worker moved a statement to PICKED: a claim whose reply a server restart lost is
# retried, and the retry must see its own claim, not another worker's (store.claim).
_PICKED_BY_DDL = """
alter table local_data_api.statements add column if not exists picked_by text;
"""

# version -> SQL that brings a schema of that version to the next one; a new store is made
# of version 3's layout and every migration, so it is the same as a migrated one.
MIGRATIONS: dict[int, str] = {3: _INCIDENTS_DDL, 4: _PICKED_BY_DDL}


class StoreSchemaError(RuntimeError):
    """The bookkeeping schema has a layout this endpoint cannot use; nothing was changed."""


def _refusal(found: object) -> StoreSchemaError:
    return StoreSchemaError(
        f"The statement store {SCHEMA!r} has layout version {found}; this endpoint uses "
        f"version {SCHEMA_VERSION} and can migrate only from versions "
        f"{', '.join(str(v) for v in sorted(MIGRATIONS))}. It was left untouched: it holds the "
        "statement records and client tokens that stop a rerun from running a statement "
        "twice. Use the endpoint version that wrote it, or, to discard that bookkeeping, "
        f"run `drop schema {SCHEMA} cascade` on the warehouse (python -m local query ...)."
    )


class WarehouseDownError(psycopg.OperationalError):
    """The warehouse's server is down for good (not restarting): nothing can be read or
    recorded until a stack starts it again, so callers stop waiting and say why."""


class ConnectionPool:
    """A small fixed pool of autocommit bookkeeping connections shared by request threads.

    ``down_reason`` says why the server is down for good, or None while it runs or restarts
    (``local.warehouse.postgres.server_down_reason``): a connect that fails while it has a
    reason raises WarehouseDownError at once instead of waiting for a restart.
    """

    def __init__(
        self, dsn: str, size: int, down_reason: Callable[[], str | None] | None = None
    ) -> None:
        self._dsn = dsn
        self._down_reason = down_reason
        self._idle: queue.LifoQueue[psycopg.Connection[DictRow]] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[DictRow]]:
        self._slots.acquire()
        conn: psycopg.Connection[DictRow] | None = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
            yield conn
        except psycopg.OperationalError:
            if conn is not None:
                conn.close()
                conn = None
            # A lost connection usually means the server restarted: every idle one is dead
            # too, and the next caller should not have to discover that one by one.
            self._discard_idle()
            raise
        finally:
            if conn is not None:
                if self._closed or conn.closed or conn.info.transaction_status != 0:
                    conn.close()
                else:
                    self._idle.put(conn)
            self._slots.release()

    def _connect(self) -> psycopg.Connection[DictRow]:
        """A new connection; while the server restarts (crash recovery takes a moment) the
        caller waits up to ``RESTART_WAIT_SECONDS`` instead of failing at once."""
        deadline = time.monotonic() + RESTART_WAIT_SECONDS
        while True:
            try:
                return psycopg.connect(
                    self._dsn,
                    autocommit=True,
                    row_factory=dict_row,
                    application_name="local-data-api bookkeeping",
                )
            except psycopg.OperationalError as exc:
                if self._closed or not transient_connect_error(exc):
                    raise
                down = self._down_reason() if self._down_reason is not None else None
                if down is not None:
                    raise WarehouseDownError(down) from exc
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _discard_idle(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    def close(self) -> None:
        self._closed = True
        self._discard_idle()


def ensure_schema(dsn: str) -> list[int]:
    """Create the bookkeeping schema, or migrate an older known layout in one transaction.

    Returns the versions migrated from (empty when the schema was current or new). Raises
    StoreSchemaError, changing nothing, for a layout it cannot migrate.
    """
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", [_DDL_LOCK])
        schema_exists = conn.execute(
            "select 1 from information_schema.schemata where schema_name = %s", [SCHEMA]
        ).fetchone()
        if not schema_exists:
            conn.execute(_DDL + "".join(MIGRATIONS[version] for version in sorted(MIGRATIONS)))
            conn.execute("insert into local_data_api.schema_version values (%s)", [SCHEMA_VERSION])
            return []
        has_version_table = conn.execute(
            "select 1 from information_schema.tables where table_schema = %s and table_name = 'schema_version'",
            [SCHEMA],
        ).fetchone()
        if not has_version_table:
            raise _refusal("unknown (no schema_version table)")
        row = conn.execute("select max(version) from local_data_api.schema_version").fetchone()
        found = row[0] if row is not None else None
        if found == SCHEMA_VERSION:
            return []
        if not isinstance(found, int) or found > SCHEMA_VERSION or found not in MIGRATIONS:
            raise _refusal(found)
        migrated = []
        version = found
        while version < SCHEMA_VERSION:
            if version not in MIGRATIONS:
                raise _refusal(found)
            conn.execute(MIGRATIONS[version])
            migrated.append(version)
            version += 1
        conn.execute("delete from local_data_api.schema_version")
        conn.execute("insert into local_data_api.schema_version values (%s)", [SCHEMA_VERSION])
        log.warning(
            "Migrated the statement store %s from layout version %d to %d (records kept)",
            SCHEMA,
            found,
            SCHEMA_VERSION,
        )
        return migrated
