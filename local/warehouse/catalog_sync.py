"""The local stand-in for Redshift Spectrum over the Glue Data Catalog.

On AWS the clean job's Hudi sync registers each table in the Glue Data Catalog and
Spectrum reads its current snapshot through ``ext_clean_mystore``. Locally the same sync
writes the local catalog (``local.glue_catalog``); after a clean run succeeds, this module
asks the catalog for the table's location, columns and partitions, reads the latest
snapshot there (Hudi with ``hudi``/hudi-rs, Delta with ``deltalake``), keeps the rows of
registered partitions, and loads them into ``ext_clean_mystore.<table>``. A column the
catalog gains is added to the external table. Delta tables (the local fallback) have no
Hudi sync, so they are registered in the catalog first, from their own schema.

The load is one transaction: TRUNCATE then COPY. TRUNCATE takes an ACCESS EXCLUSIVE lock,
so a reader either sees the old snapshot (before) or waits and sees the new one (after);
nobody sees a half-loaded table, and views over the table (``stg_mystore.v_store_*``) stay
valid, which a drop-and-rename swap would break.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql

from glue.contract import table_contract

EXTERNAL_SCHEMA = "ext_clean_mystore"
DEFAULT_CATALOG_DATABASE = "clean_mystore"
HUDI_META_PREFIX = "_hoodie_"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)$")

# The neutral column types (glue/contract.py's vocabulary plus a few that other Hudi
# tables carry) and their PostgreSQL and Arrow forms.
_SCALAR_TYPES: dict[str, tuple[str, pa.DataType]] = {
    "string": ("text", pa.string()),
    "timestamp": ("timestamp", pa.timestamp("us")),
    "date": ("date", pa.date32()),
    "int": ("integer", pa.int32()),
    "bigint": ("bigint", pa.int64()),
    "smallint": ("smallint", pa.int16()),
    "boolean": ("boolean", pa.bool_()),
    "double": ("double precision", pa.float64()),
    "float": ("real", pa.float32()),
}


class CatalogReader(Protocol):
    """What the Spectrum stand-in reads of a Glue Data Catalog (``local.glue_catalog``'s
    store): a table's entry and its registered partitions, as Glue's API shapes them."""

    def table(self, database: str, name: str) -> Mapping[str, Any] | None: ...

    def partitions(self, database: str, name: str) -> Sequence[Mapping[str, Any]]: ...


class CatalogSyncError(RuntimeError):
    """A clean table could not be loaded into the local external schema."""


@dataclass(frozen=True)
class SyncResult:
    table: str
    source_format: str
    rows: int


def column_types(type_name: str) -> tuple[str, pa.DataType]:
    """PostgreSQL and Arrow types for a neutral type name; unknown names are named back."""
    if type_name in _SCALAR_TYPES:
        return _SCALAR_TYPES[type_name]
    match = _DECIMAL.match(type_name.replace(" ", ""))
    if match:
        precision, scale = int(match.group(1)), int(match.group(2))
        return f"numeric({precision},{scale})", pa.decimal128(precision, scale)
    allowed = ", ".join([*_SCALAR_TYPES, "decimal(p,s)"])
    raise CatalogSyncError(f"unsupported column type {type_name!r}; expected one of: {allowed}")


def check_identifier(name: str, what: str) -> str:
    if not _IDENTIFIER.match(name):
        raise CatalogSyncError(
            f"{what} {name!r} is not a plain identifier (letters, digits, underscore)"
        )
    return name


def detect_format(path: Path) -> str:
    """``hudi`` if the folder has ``.hoodie``, ``delta`` if it has ``_delta_log``."""
    if (path / ".hoodie").is_dir():
        return "hudi"
    if (path / "_delta_log").is_dir():
        return "delta"
    raise CatalogSyncError(
        f"{path} is neither a Hudi table (no .hoodie folder) nor a Delta table (no _delta_log)"
    )


def read_snapshot(path: Path) -> tuple[str, pa.Table]:
    """The table's current snapshot (latest version per key) and its format."""
    table_format = detect_format(path)
    if table_format == "hudi":
        from hudi import HudiTableBuilder

        hudi_table = HudiTableBuilder.from_base_uri(str(path)).build()
        batches = hudi_table.read()
        schema = hudi_table.get_schema() if not batches else batches[0].schema
        data = pa.Table.from_batches(batches, schema=schema)
    else:
        from deltalake import DeltaTable

        data = DeltaTable(str(path)).to_pyarrow_table()
    meta = [name for name in data.column_names if name.startswith(HUDI_META_PREFIX)]
    return table_format, data.drop_columns(meta)


def conform(data: pa.Table, columns: Sequence[tuple[str, str]]) -> pa.Table:
    """Select and cast the snapshot to the expected columns, in order.

    Timestamps with a zone become UTC wall-clock time (Spectrum's ``timestamp`` has no zone);
    a missing column is an error naming it and the columns that are there.
    """
    arrays = []
    for name, type_name in columns:
        if name not in data.column_names:
            present = ", ".join(data.column_names)
            raise CatalogSyncError(f"column {name!r} is missing from the snapshot (has: {present})")
        _, arrow_type = column_types(type_name)
        array = data.column(name)
        if pa.types.is_timestamp(array.type) and array.type.tz is not None:
            array = pc.cast(array, pa.timestamp(array.type.unit, tz="UTC")).cast(
                pa.timestamp(array.type.unit)
            )
        try:
            arrays.append(array.cast(arrow_type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise CatalogSyncError(
                f"column {name!r} of type {array.type} cannot be read as {type_name}: {exc}"
            ) from exc
    return pa.table(arrays, names=[name for name, _ in columns])


def _csv_chunks(data: pa.Table, rows_per_chunk: int = 50_000) -> list[bytes]:
    """CSV for COPY: strings always quoted, NULL as an unquoted empty field, so PostgreSQL
    tells an empty string from a NULL."""
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    chunks = []
    for batch in data.to_batches(max_chunksize=rows_per_chunk):
        buffer = io.BytesIO()
        pacsv.write_csv(pa.Table.from_batches([batch]), buffer, write_options=options)
        chunks.append(buffer.getvalue())
    return chunks


def load_snapshot(
    conn: psycopg.Connection,
    schema: str,
    table: str,
    columns: Sequence[tuple[str, str]],
    data: pa.Table,
) -> int:
    """Replace ``schema.table`` with ``data`` in one transaction; creates it if missing."""
    check_identifier(schema, "schema")
    check_identifier(table, "table")
    for name, _ in columns:
        check_identifier(name, "column")
    conformed = conform(data, columns)
    target = sql.Identifier(schema, table)
    column_list = sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns)
    definitions = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(column_types(type_name)[0]))
        for name, type_name in columns
    )
    with conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(target, definitions))
        _add_missing_columns(conn, schema, table, columns)
        conn.execute(sql.SQL("TRUNCATE {}").format(target))
        with conn.cursor() as cursor:
            copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(target, column_list)
            with cursor.copy(copy_sql) as copy:
                for chunk in _csv_chunks(conformed):
                    copy.write(chunk)
    return conformed.num_rows


def _add_missing_columns(
    conn: psycopg.Connection, schema: str, table: str, columns: Sequence[tuple[str, str]]
) -> None:
    """A column added to the clean table reaches the external table (views stay valid)."""
    present = {
        row[0]
        for row in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            (schema, table),
        ).fetchall()
    }
    for name, type_name in columns:
        if name not in present:
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                    sql.Identifier(schema, table),
                    sql.Identifier(name),
                    sql.SQL(column_types(type_name)[0]),
                )
            )


def sync_table(
    dsn: str,
    path: Path,
    table: str,
    columns: Sequence[tuple[str, str]],
    *,
    schema: str = EXTERNAL_SCHEMA,
) -> SyncResult:
    """Load the table at ``path`` into ``schema.table`` with the given columns."""
    table_format, data = read_snapshot(path)
    with psycopg.connect(dsn) as conn:
        rows = load_snapshot(conn, schema, table, columns, data)
    return SyncResult(table=table, source_format=table_format, rows=rows)


def contract_columns(table: str) -> list[tuple[str, str]]:
    return [(c.name, c.type) for c in table_contract(table).clean_columns]


def sync_clean_table(
    dsn: str, table: str, clean_path: Path, *, schema: str = EXTERNAL_SCHEMA
) -> SyncResult:
    """Sync one MyStore clean table (columns from glue/contract.py).

    No table folder yet means the job committed nothing (empty input): the external table is
    created empty if missing and otherwise left as it is.
    """
    columns = contract_columns(table)
    path = Path(clean_path) / table
    if not path.exists():
        with psycopg.connect(dsn) as conn:
            rows = load_snapshot_if_missing(conn, schema, table, columns)
        return SyncResult(table=table, source_format="none", rows=rows)
    return sync_table(dsn, path, table, columns, schema=schema)


def load_snapshot_if_missing(
    conn: psycopg.Connection, schema: str, table: str, columns: Sequence[tuple[str, str]]
) -> int:
    """Create an empty ``schema.table`` if it does not exist; returns its row count."""
    exists = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}"."{table}"',)
    ).fetchone()
    if exists and exists[0]:
        count = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
        ).fetchone()
        return int(count[0]) if count else 0
    empty = pa.table({name: pa.array([], column_types(t)[1]) for name, t in columns})
    return load_snapshot(conn, schema, table, columns, empty)


def path_of_location(location: str) -> Path:
    """A catalog location (``file:/x``, ``file:///x`` or a plain path) as a local path."""
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path) if parsed.scheme else location)
    raise CatalogSyncError(
        f"table location {location!r} is not a local path; the local Spectrum stand-in "
        "reads file: locations only"
    )


def catalog_columns(entry: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Data columns then partition keys, as the catalog lists them, without Hudi's meta
    columns (Spectrum users never select those)."""
    descriptor = entry.get("StorageDescriptor") or {}
    listed = [*descriptor.get("Columns", []), *(entry.get("PartitionKeys") or [])]
    return [
        (str(c["Name"]), str(c["Type"]).lower())
        for c in listed
        if not str(c["Name"]).startswith(HUDI_META_PREFIX)
    ]


def keep_registered_partitions(
    data: pa.Table, keys: Sequence[str], partitions: Sequence[Mapping[str, Any]]
) -> pa.Table:
    """Spectrum reads only partitions the catalog holds: drop rows of any other."""
    if not keys:
        return data
    registered = {tuple(p["Values"]) for p in partitions}
    columns = [pc.cast(data.column(k), pa.string()).to_pylist() for k in keys]
    mask = pa.array([tuple(values) in registered for values in zip(*columns, strict=True)])
    return data.filter(mask) if len(mask) else data


def refresh_from_catalog(
    dsn: str, catalog: CatalogReader, database: str, table: str, *, schema: str = EXTERNAL_SCHEMA
) -> SyncResult:
    """Load ``schema.table`` from the catalog's table: its location, columns, partitions."""
    entry = catalog.table(database, table)
    if entry is None:
        raise CatalogSyncError(
            f"the catalog has no table {database}.{table}: the clean job's catalog sync did "
            "not run (is --catalog_database set to none?)"
        )
    location = (entry.get("StorageDescriptor") or {}).get("Location")
    if not location:
        raise CatalogSyncError(f"catalog table {database}.{table} has no location")
    columns = catalog_columns(entry)
    table_format, data = read_snapshot(path_of_location(str(location)))
    keys = [str(k["Name"]) for k in entry.get("PartitionKeys") or []]
    data = keep_registered_partitions(data, keys, catalog.partitions(database, table))
    with psycopg.connect(dsn) as conn:
        rows = load_snapshot(conn, schema, table, columns, data)
    return SyncResult(table=table, source_format=table_format, rows=rows)
