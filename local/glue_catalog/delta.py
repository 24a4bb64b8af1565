"""Catalog registration for the Delta Lake fallback (``MYSTORE_LOCAL_TABLE_FORMAT=delta``).

Hudi registers its tables itself (the job's Glue sync); Delta written by delta-rs has no
such sync, so after a Delta run the local service registers the table the way Hudi's sync
would: location, columns from the Delta schema, partition keys from the Delta metadata,
one catalog partition per partition value. Everything goes through the same catalog
operations Hudi's sync calls, so the Spectrum stand-in has one reading path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from local.endpoint import ServiceError
from local.glue_catalog.service import GlueCatalogService
from local.glue_catalog.store import CatalogStore


def glue_type(arrow_type: pa.DataType) -> str:
    """The Glue (Hive) type name of an Arrow type, as Hudi's sync writes it."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    simple = {
        pa.int8(): "tinyint",
        pa.int16(): "smallint",
        pa.int32(): "int",
        pa.int64(): "bigint",
        pa.bool_(): "boolean",
        pa.float32(): "float",
        pa.float64(): "double",
    }
    if arrow_type in simple:
        return simple[arrow_type]
    raise ValueError(f"no Glue type for Arrow type {arrow_type}")


def register_delta_table(catalog: CatalogStore, database: str, table: str, path: Path) -> int:
    """Create or update ``database.table`` from the Delta table at ``path``; returns the
    number of partitions registered."""
    from deltalake import DeltaTable

    delta = DeltaTable(str(path))
    schema = delta.schema().to_arrow()
    arrow_schema = pa.schema(schema) if not isinstance(schema, pa.Schema) else schema
    keys = list(delta.metadata().partition_columns)
    columns = [
        {"Name": f.name, "Type": glue_type(f.type)} for f in arrow_schema if f.name not in keys
    ]
    partition_keys = [{"Name": k, "Type": glue_type(arrow_schema.field(k).type)} for k in keys]
    table_input: dict[str, Any] = {
        "Name": table,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "delta", "table_type": "DELTA"},
        "PartitionKeys": partition_keys,
        "StorageDescriptor": {"Columns": columns, "Location": path.resolve().as_uri()},
    }
    service = GlueCatalogService(catalog)
    try:
        service.create_database({"DatabaseInput": {"Name": database}})
    except ServiceError as exc:
        if exc.code != "AlreadyExistsException":
            raise
    if catalog.table(database, table) is None:
        service.create_table({"DatabaseName": database, "TableInput": table_input})
    else:
        service.update_table({"DatabaseName": database, "TableInput": table_input})
    if not keys:
        return 0
    snapshot = delta.to_pyarrow_table(columns=keys)
    values = {
        tuple(row)
        for row in zip(
            *[pc.cast(snapshot.column(k), pa.string()).to_pylist() for k in keys], strict=True
        )
    }
    registered = {tuple(p["Values"]) for p in catalog.partitions(database, table)}
    new = sorted(values - registered)
    if new:
        service.batch_create_partition(
            {
                "DatabaseName": database,
                "TableName": table,
                "PartitionInputList": [
                    {
                        "Values": list(v),
                        "StorageDescriptor": {
                            "Columns": columns,
                            "Location": (
                                path / "/".join(f"{k}={x}" for k, x in zip(keys, v, strict=True))
                            )
                            .resolve()
                            .as_uri(),
                        },
                    }
                    for v in new
                ],
            }
        )
    return len(values)
