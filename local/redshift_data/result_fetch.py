"""Runs one statement's SQL on its connection and pages any result set into the store.

Split from executor.py along the line between *when* a statement runs (threads, queueing,
status, cancellation, retries while PostgreSQL restarts: executor.py) and *how* its SQL
text is run and its rows fetched (this module). Everything here works on a connection it is
given and hands each encoded page to a ``write_page`` callback, so it knows nothing of the
store, the job or its status; the executor binds the callback to its durable store write.

A single query runs through a server-side cursor so rows arrive one page at a time; what
PostgreSQL will not DECLARE runs plainly and its result is paged from libpq's copy. Both
stay within the Data API's limits (results.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import ClientCursor
from psycopg.pq import TransactionStatus

from local.redshift_data.encoding import column_metadata
from local.redshift_data.results import PagedResult, ResultLimits, ResultTooLarge

__all__ = ["Outcome", "PageWriter", "execute_plainly", "pg_message", "stream_query"]

# Writes one encoded page of a result set: (page number, records as JSON text).
PageWriter = Callable[[int, str], None]

_CURSOR_NAMES = itertools.count(1)
_TYPE_NAME_CACHE: dict[int, str] = {}


@dataclass
class Outcome:
    """How one statement (or sub-statement) ended, as the store records it."""

    status: str
    error: str | None = None
    has_result_set: bool = False
    result_rows: int = -1
    columns: list[dict[str, Any]] | None = None
    page_count: int = 0
    result_size: int = -1


def stream_query(
    conn: psycopg.Connection[Any],
    sql: str,
    values: Mapping[str, str] | None,
    limits: ResultLimits,
    write_page: PageWriter,
) -> Outcome | None:
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
        outcome = fetch_result(conn, description, cursor.fetchmany, limits, write_page)
    except ResultTooLarge:  # nothing of it is kept: undo what the query did
        conn.execute(
            "rollback" if own_transaction else "rollback to savepoint local_data_api_result"
        )
        raise
    cursor.close()
    conn.execute("commit" if own_transaction else "release savepoint local_data_api_result")
    return outcome


def execute_plainly(
    conn: psycopg.Connection[Any],
    sql: str,
    values: Mapping[str, str] | None,
    extra: Sequence[str],
    limits: ResultLimits,
    write_page: PageWriter,
) -> Outcome:
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
            return Outcome(status="FINISHED", result_rows=max(cursor.rowcount, -1))
        return fetch_result(conn, description, cursor.fetchmany, limits, write_page)


def fetch_result(
    conn: psycopg.Connection[Any],
    description: Sequence[psycopg.Column],
    fetch: Callable[[int], Sequence[Sequence[Any]]],
    limits: ResultLimits,
    write_page: PageWriter,
) -> Outcome:
    """Fetch a result set page by page into the store, within the Data API's limits."""
    paged = PagedResult(limits, write_page)
    while rows := fetch(limits.page_rows):
        paged.add(rows)
    paged.close()
    type_names = {column.type_code: _type_name(conn, column.type_code) for column in description}
    return Outcome(
        status="FINISHED",
        has_result_set=True,
        result_rows=paged.rows,
        columns=column_metadata(description, type_names),
        page_count=paged.pages,
        result_size=paged.size,
    )


def pg_message(exc: psycopg.Error) -> str:
    """PostgreSQL's own error text (``ERROR: ...`` as Redshift prints it), no client noise."""
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    if primary:
        return f"ERROR: {primary}"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


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
