"""GetStatementResult into typed rows, every page, with a guard against huge results.

Airflow's operator returns only the first page; we follow NextToken to the end. The guard
checks TotalNumRows before fetching a second page, so an accidental ``SELECT *`` on the fact
table fails in one call instead of filling the worker's memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tasks.jobs import InvalidRequestError, JobError
from tasks.redshift_data.errors import ResultTooLargeError

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

DEFAULT_MAX_ROWS = 100_000

_DECIMAL_TYPES = {"numeric", "decimal"}
_DATE_TYPES = {"date"}
_TIMESTAMP_TYPES = {
    "timestamp",
    "timestamptz",
    "timestamp without time zone",
    "timestamp with time zone",
}
_TIME_TYPES = {"time", "timetz", "time without time zone"}


def _timestamp(text: str, type_name: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace(" ", "T", 1))
    if type_name in ("timestamptz", "timestamp with time zone") and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def convert_field(field: Mapping[str, Any], column: Mapping[str, Any]) -> Any:
    """One Data API ``Field`` as a Python value, using the column's type where text is lossy.

    Numeric, date and time columns arrive as ``stringValue``; they become Decimal, date,
    datetime and time. Unparseable text stays text rather than failing the whole result.
    """
    if field.get("isNull"):
        return None
    for key in ("booleanValue", "longValue", "doubleValue", "blobValue"):
        if key in field:
            return field[key]
    if "stringValue" not in field:
        raise JobError(f"unknown field shape {sorted(field)!r}")
    text = str(field["stringValue"])
    type_name = str(column.get("typeName", "")).lower()
    try:
        if type_name in _DECIMAL_TYPES:
            return Decimal(text)
        if type_name in _DATE_TYPES:
            return dt.date.fromisoformat(text)
        if type_name in _TIMESTAMP_TYPES:
            return _timestamp(text, type_name)
        if type_name in _TIME_TYPES:
            return dt.time.fromisoformat(text)
    except ValueError:
        return text
    return text


def rows_from_page(
    page: Mapping[str, Any], columns: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    names = [str(c.get("name") or c.get("label") or f"col{i}") for i, c in enumerate(columns)]
    rows = []
    for record in page.get("Records", []):
        if len(record) != len(columns):
            raise JobError(
                f"record has {len(record)} fields but the result has {len(columns)} columns"
            )
        rows.append(
            {n: convert_field(f, c) for n, f, c in zip(names, record, columns, strict=True)}
        )
    return rows


def get_rows(
    client: RedshiftDataAPIServiceClient, statement_id: str, *, max_rows: int = DEFAULT_MAX_ROWS
) -> list[dict[str, Any]]:
    """Every row of a FINISHED statement's result, as dicts keyed by column name."""
    if max_rows < 1:
        raise InvalidRequestError(f"max_rows {max_rows!r} is invalid; allowed: an int >= 1")
    rows: list[dict[str, Any]] = []
    columns: Sequence[Mapping[str, Any]] = ()
    token: str | None = None
    while True:
        page: Mapping[str, Any] = (
            client.get_statement_result(Id=statement_id, NextToken=token)
            if token
            else client.get_statement_result(Id=statement_id)
        )
        if not columns:
            columns = page.get("ColumnMetadata", [])
        total = page.get("TotalNumRows")
        if isinstance(total, int) and total > max_rows:
            raise ResultTooLargeError(
                f"statement {statement_id} returned {total} rows, more than max_rows={max_rows}; "
                "raise max_rows or narrow the query"
            )
        rows.extend(rows_from_page(page, columns))
        if len(rows) > max_rows:
            raise ResultTooLargeError(
                f"statement {statement_id} returned more than max_rows={max_rows} rows"
            )
        token = page.get("NextToken")
        if not token:
            return rows
