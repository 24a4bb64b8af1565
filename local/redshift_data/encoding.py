"""Result encoding: PostgreSQL values and cursor descriptions as Data API Records and metadata.

Response shapes of the statements themselves are in responses.py.

Values are fetched with text loaders for everything except booleans, integers and floats,
so dates, timestamps and decimals arrive exactly as the server prints them (the Data API
returns DECIMAL and temporal values as ``stringValue``, integers as ``longValue``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg.adapt import AdaptersMap
from psycopg.types.string import TextLoader

# Type oids whose Python conversion we keep; everything else is loaded as server text.
_TYPED_OIDS = frozenset({16, 20, 21, 23, 26, 700, 701})
_SIGNED_OIDS = frozenset({20, 21, 23, 700, 701, 1700})
_TEXT_OIDS = frozenset({18, 19, 25, 1042, 1043})
_REDSHIFT_TYPE_NAMES = {"varchar": "varchar", "bpchar": "bpchar", "text": "varchar"}


def use_text_loaders(adapters: AdaptersMap) -> None:
    """Load every non-numeric, non-boolean type as its text form (on one connection's map)."""
    for info in adapters.types:
        if info.oid not in _TYPED_OIDS:
            adapters.register_loader(info.oid, TextLoader)
        if info.array_oid:
            adapters.register_loader(info.array_oid, TextLoader)


def encode_value(value: Any) -> dict[str, Any]:
    if value is None:
        return {"isNull": True}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"longValue": value}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"stringValue": bytes(value).hex()}
    return {"stringValue": str(value)}


def encode_rows(rows: Iterable[Sequence[Any]]) -> list[list[dict[str, Any]]]:
    return [[encode_value(value) for value in row] for row in rows]


def column_metadata(
    description: Sequence[psycopg.Column], type_names: Mapping[int, str]
) -> list[dict[str, Any]]:
    """ColumnMetadata as the Data API shapes it; table/schema names are not tracked locally."""
    columns = []
    for column in description:
        pg_name = type_names.get(column.type_code, str(column.type_code))
        precision = column.precision or column.internal_size or 0
        columns.append(
            {
                "isCaseSensitive": column.type_code in _TEXT_OIDS,
                "isCurrency": False,
                "isSigned": column.type_code in _SIGNED_OIDS,
                "label": column.name,
                "name": column.name,
                "nullable": 1,
                "precision": max(int(precision), 0),
                "scale": int(column.scale or 0),
                "schemaName": "",
                "tableName": "",
                "typeName": _REDSHIFT_TYPE_NAMES.get(pg_name, pg_name),
                "length": 0,
            }
        )
    return columns


def paginate(records: list[list[dict[str, Any]]], page_rows: int) -> list[str]:
    """Records split into pages of JSON text (one row in a page at least, even if empty)."""
    if not records:
        return ["[]"]
    return [
        json.dumps(records[start : start + page_rows], separators=(",", ":"))
        for start in range(0, len(records), page_rows)
    ]
