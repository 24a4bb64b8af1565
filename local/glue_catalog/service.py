"""The Glue Data Catalog operations Hudi's Glue sync tool and boto3 readers need.

Served on the same ``AWSGlue`` target as the local job runs (``CatalogRouter`` sends each
operation to the service that owns it). Errors use Glue's codes
(``EntityNotFoundException``, ``AlreadyExistsException``, ``InvalidInputException``) so
Hudi's sync (AWS SDK for Java v2) and boto3 react to them as they do on AWS. Listing
operations page with ``NextToken``/``MaxResults``; ``GetPartitions`` also honours
``Segment`` (Hudi reads all partitions in parallel segments) and a simple ``Expression``
(``key = 'value'`` terms joined by AND/OR, what Hudi pushes down). Those request rules
(required fields, paging, expressions, the errors for them) are in requests.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from local.endpoint import Call, Service, ServiceError
from local.glue_catalog.requests import (
    invalid_input,
    not_found,
    page_of,
    partition_matches,
    required_field,
)
from local.glue_catalog.store import CatalogStore, now, partition_key, table_id

Handler = Callable[[Mapping[str, Any]], Mapping[str, Any]]


class GlueCatalogService:
    """Databases, tables and partitions of one local catalog (account ``000000000000``)."""

    catalog_id = "000000000000"

    def __init__(self, store: CatalogStore) -> None:
        self.store = store
        self.handlers: dict[str, Handler] = {
            "CreateDatabase": self.create_database,
            "GetDatabase": self.get_database,
            "GetDatabases": self.get_databases,
            "CreateTable": self.create_table,
            "GetTable": self.get_table,
            "GetTables": self.get_tables,
            "UpdateTable": self.update_table,
            "DeleteTable": self.delete_table,
            "GetPartition": self.get_partition,
            "GetPartitions": self.get_partitions,
            "BatchGetPartition": self.batch_get_partition,
            "CreatePartition": self.create_partition,
            "BatchCreatePartition": self.batch_create_partition,
            "UpdatePartition": self.update_partition,
            "BatchUpdatePartition": self.batch_update_partition,
            "DeletePartition": self.delete_partition,
            "BatchDeletePartition": self.batch_delete_partition,
            "GetPartitionIndexes": self.get_partition_indexes,
        }

    def handle(self, call: Call) -> Mapping[str, Any]:
        handler = self.handlers.get(call.operation)
        if handler is None:
            raise ServiceError(
                "UnknownOperationException", f"AWSGlue.{call.operation} is not a catalog operation"
            )
        return handler(call.body)

    # -- databases ----------------------------------------------------------------------

    def create_database(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        database = dict(required_field(body, "DatabaseInput"))
        name = str(required_field(database, "Name")).lower()

        def create(state: dict[str, Any]) -> None:
            if name in state["databases"]:
                raise ServiceError("AlreadyExistsException", f"Database {name} already exists.")
            state["databases"][name] = {
                **database,
                "Name": name,
                "CreateTime": now(),
                "CatalogId": self.catalog_id,
            }

        self.store.change(create)
        return {}

    def _database(self, state: dict[str, Any], name: object) -> dict[str, Any]:
        if not isinstance(name, str) or not name:
            raise invalid_input(f"DatabaseName must be a non-empty string, got {name!r}")
        database = state["databases"].get(name.lower())
        if database is None:
            raise not_found(f"Database {name} not found.")
        return dict(database)

    def get_database(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"Database": self.store.read(lambda s: self._database(s, body.get("Name")))}

    def get_databases(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        databases = self.store.read(lambda s: [s["databases"][k] for k in sorted(s["databases"])])
        page, token = page_of(databases, body)
        return {"DatabaseList": page, **({"NextToken": token} if token else {})}

    # -- tables ---------------------------------------------------------------------------

    def _table(self, state: dict[str, Any], database: object, name: object) -> dict[str, Any]:
        self._database(state, database)
        if not isinstance(name, str) or not name:
            raise invalid_input(f"table Name must be a non-empty string, got {name!r}")
        table = state["tables"].get(table_id(str(database), name))
        if table is None:
            raise not_found(f"Table {name} not found in database {database}.")
        return dict(table)

    def create_table(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        database = str(required_field(body, "DatabaseName")).lower()
        table = dict(required_field(body, "TableInput"))
        name = str(required_field(table, "Name")).lower()

        def create(state: dict[str, Any]) -> None:
            self._database(state, database)
            key = table_id(database, name)
            if key in state["tables"]:
                raise ServiceError("AlreadyExistsException", f"Table {name} already exists.")
            stamp = now()
            state["tables"][key] = {
                **table,
                "Name": name,
                "DatabaseName": database,
                "CreateTime": stamp,
                "UpdateTime": stamp,
                "VersionId": "1",
                "CatalogId": self.catalog_id,
            }

        self.store.change(create)
        return {}

    def get_table(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return {
            "Table": self.store.read(
                lambda s: self._table(s, body.get("DatabaseName"), body.get("Name"))
            )
        }

    def get_tables(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        database = str(required_field(body, "DatabaseName")).lower()
        pattern = body.get("Expression")

        def listing(state: dict[str, Any]) -> list[dict[str, Any]]:
            self._database(state, database)
            tables = [t for t in state["tables"].values() if t["DatabaseName"] == database]
            if pattern:
                regex = re.compile(str(pattern).replace("*", ".*"), re.IGNORECASE)
                tables = [t for t in tables if regex.fullmatch(t["Name"])]
            return sorted(tables, key=lambda t: t["Name"])

        page, token = page_of(self.store.read(listing), body)
        return {"TableList": page, **({"NextToken": token} if token else {})}

    def update_table(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        database = str(required_field(body, "DatabaseName")).lower()
        table = dict(required_field(body, "TableInput"))
        name = str(required_field(table, "Name")).lower()

        def update(state: dict[str, Any]) -> None:
            current = self._table(state, database, name)
            state["tables"][table_id(database, name)] = {
                **table,
                "Name": name,
                "DatabaseName": database,
                "CreateTime": current["CreateTime"],
                "UpdateTime": now(),
                "VersionId": str(int(current.get("VersionId", "1")) + 1),
                "CatalogId": self.catalog_id,
            }

        self.store.change(update)
        return {}

    def delete_table(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        database = str(required_field(body, "DatabaseName")).lower()
        name = str(required_field(body, "Name")).lower()

        def delete(state: dict[str, Any]) -> None:
            self._table(state, database, name)
            del state["tables"][table_id(database, name)]
            state["partitions"].pop(table_id(database, name), None)

        self.store.change(delete)
        return {}

    # -- partitions -----------------------------------------------------------------------

    def get_partition_indexes(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """No partition indexes locally (Hudi's sync asks before every sync)."""
        self.store.read(lambda s: self._table(s, body.get("DatabaseName"), body.get("TableName")))
        return {"PartitionIndexDescriptorList": []}

    def _partitions(
        self, state: dict[str, Any], body: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        table = self._table(state, body.get("DatabaseName"), body.get("TableName"))
        key = table_id(table["DatabaseName"], table["Name"])
        return table, state["partitions"].setdefault(key, {})

    def _new_partition(self, table: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
        values = [str(v) for v in required_field(entry, "Values")]
        keys = table.get("PartitionKeys") or []
        if len(values) != len(keys):
            raise invalid_input(
                f"partition values {values} do not match the table's {len(keys)} partition key(s)"
            )
        stamp = now()
        return {
            **entry,
            "Values": values,
            "DatabaseName": table["DatabaseName"],
            "TableName": table["Name"],
            "CreationTime": entry.get("CreationTime", stamp),
            "LastAccessTime": stamp,
            "CatalogId": self.catalog_id,
        }

    def get_partition(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        values = [str(v) for v in required_field(body, "PartitionValues")]

        def find(state: dict[str, Any]) -> dict[str, Any]:
            _, partitions = self._partitions(state, body)
            found = partitions.get(partition_key(values))
            if found is None:
                raise not_found(f"Partition {values} not found.")
            return dict(found)

        return {"Partition": self.store.read(find)}

    def get_partitions(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        segment = body.get("Segment") or {"SegmentNumber": 0, "TotalSegments": 1}
        number, total = segment.get("SegmentNumber", 0), segment.get("TotalSegments", 1)
        if not (isinstance(total, int) and 1 <= total <= 10 and 0 <= number < total):
            raise invalid_input(f"Segment {segment!r} is invalid (TotalSegments 1-10, 0 <= number)")
        expression = body.get("Expression")

        def listing(state: dict[str, Any]) -> list[dict[str, Any]]:
            table, partitions = self._partitions(state, body)
            keys = [k["Name"].lower() for k in table.get("PartitionKeys") or []]
            ordered = [partitions[k] for k in sorted(partitions)]
            return [
                p
                for index, p in enumerate(ordered)
                if index % total == number and partition_matches(p, keys, expression)
            ]

        page, token = page_of(self.store.read(listing), body)
        return {"Partitions": page, **({"NextToken": token} if token else {})}

    def batch_get_partition(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        wanted = [
            [str(v) for v in e.get("Values", [])] for e in required_field(body, "PartitionsToGet")
        ]

        def find(state: dict[str, Any]) -> list[dict[str, Any]]:
            _, partitions = self._partitions(state, body)
            return [partitions[k] for k in map(partition_key, wanted) if k in partitions]

        return {"Partitions": self.store.read(find), "UnprocessedKeys": []}

    def _batch(
        self,
        body: Mapping[str, Any],
        entries: list[Any],
        apply: Callable[[dict[str, Any], dict[str, Any], Any], None],
    ) -> Mapping[str, Any]:
        """Apply each entry; per-entry failures become ``Errors`` as in Glue's batch calls."""

        def run(state: dict[str, Any]) -> list[dict[str, Any]]:
            table, partitions = self._partitions(state, body)
            errors = []
            for entry in entries:
                try:
                    apply(table, partitions, entry)
                except ServiceError as exc:
                    values = entry.get("Values") or entry.get("PartitionValueList") or []
                    errors.append(
                        {
                            "PartitionValues": values,
                            "ErrorDetail": {"ErrorCode": exc.code, "ErrorMessage": exc.message},
                        }
                    )
            return errors

        errors = self.store.change(run)
        return {"Errors": errors} if errors else {}

    @staticmethod
    def _create(
        service: GlueCatalogService,
        table: dict[str, Any],
        partitions: dict[str, Any],
        entry: Any,
    ) -> None:
        partition = service._new_partition(table, entry)
        key = partition_key(partition["Values"])
        if key in partitions:
            raise ServiceError("AlreadyExistsException", f"Partition {partition['Values']} exists.")
        partitions[key] = partition

    def batch_create_partition(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        entries = list(required_field(body, "PartitionInputList"))
        return self._batch(body, entries, lambda t, p, e: self._create(self, t, p, e))

    def create_partition(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        result = self.batch_create_partition(
            {**body, "PartitionInputList": [required_field(body, "PartitionInput")]}
        )
        _raise_first(result)
        return {}

    def _update(self, table: dict[str, Any], partitions: dict[str, Any], entry: Any) -> None:
        old = [str(v) for v in required_field(entry, "PartitionValueList")]
        if partition_key(old) not in partitions:
            raise not_found(f"Partition {old} not found.")
        previous = partitions.pop(partition_key(old))
        partition = self._new_partition(table, required_field(entry, "PartitionInput"))
        partition["CreationTime"] = previous["CreationTime"]
        partitions[partition_key(partition["Values"])] = partition

    def batch_update_partition(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return self._batch(body, list(required_field(body, "Entries")), self._update)

    def update_partition(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        entry = {
            "PartitionValueList": required_field(body, "PartitionValueList"),
            "PartitionInput": required_field(body, "PartitionInput"),
        }
        _raise_first(self.batch_update_partition({**body, "Entries": [entry]}))
        return {}

    @staticmethod
    def _delete(table: dict[str, Any], partitions: dict[str, Any], entry: Any) -> None:
        values = [str(v) for v in required_field(entry, "Values")]
        if partitions.pop(partition_key(values), None) is None:
            raise not_found(f"Partition {values} not found.")

    def batch_delete_partition(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return self._batch(body, list(required_field(body, "PartitionsToDelete")), self._delete)

    def delete_partition(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        entry = {"Values": required_field(body, "PartitionValues")}
        _raise_first(self.batch_delete_partition({**body, "PartitionsToDelete": [entry]}))
        return {}


def _raise_first(result: Mapping[str, Any]) -> None:
    for error in result.get("Errors", []):
        detail = error["ErrorDetail"]
        raise ServiceError(detail["ErrorCode"], detail["ErrorMessage"])


class CatalogRouter:
    """One ``AWSGlue`` target for two services: catalog operations here, the rest (job
    runs) to the service that was registered before."""

    def __init__(self, catalog: GlueCatalogService, other: Service | None) -> None:
        self.catalog = catalog
        self.other = other

    def handle(self, call: Call) -> Mapping[str, Any]:
        if call.operation in self.catalog.handlers or self.other is None:
            return self.catalog.handle(call)
        return self.other.handle(call)
