"""Where the clean rows go: a Hudi table on Glue, a Delta Lake table on a laptop.

PyPI has no Hudi writer, so without a Hudi Spark bundle jar the job writes Delta Lake
through ``deltalake`` (delta-rs) with the semantics the Hudi options give on AWS:

* upsert on the record key (one live row per key; a key may move to a new partition,
  except for tables whose rows never change partition, where the key is matched within
  its partition like Hudi's partition-scoped index);
* event-time ordering: an incoming row replaces the stored one only if its ordering value
  is greater than or equal (Hudi's ``DefaultHoodieRecordPayload`` rule), so a late, older
  record never overwrites a newer one;
* the partition date column is always present; the files are partitioned by it for
  sales only (see ``DeltaSink``), which the local catalog sync, reading whole snapshots,
  does not notice;
* bounded history like Hudi's KEEP_LATEST_COMMITS cleaner: after each write only the data
  files and log entries needed by the last N write commits are kept. Vacuum's own
  bookkeeping commits are not counted, just as Hudi's ``.clean`` instants are not commits.

Both sinks take a Spark DataFrame of exactly the clean columns (see ``glue.transforms``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa
import pyarrow.fs as pafs

from glue.contract import ColumnType, TableContract
from glue.hudi_options import (
    DEFAULT_RETAIN_COMMITS,
    HudiVersion,
    LoadType,
    hudi_write_options,
    is_global_index,
    save_mode,
)

if TYPE_CHECKING:
    from deltalake import DeltaTable
    from pyspark.sql import DataFrame, SparkSession


def _delta() -> Any:
    """deltalake, imported on use: Glue's runtime has no deltalake, and only the local
    fallback needs it."""
    import deltalake

    return deltalake


_LOG_ENTRY = re.compile(r"^(\d{20})\.(json|checkpoint\.parquet|crc)$")
_WRITE_OPERATIONS = frozenset({"WRITE", "MERGE", "CREATE TABLE", "CREATE OR REPLACE TABLE"})


@dataclass(frozen=True)
class CommitResult:
    """What one write did; counts are None where the format does not report them."""

    table_format: str
    commit_id: str
    rows_inserted: int | None = None
    rows_updated: int | None = None
    rows_ignored_older: int | None = None


class TableSink(Protocol):
    table_format: str

    def exists(self) -> bool: ...

    def write(self, clean: DataFrame, load: LoadType) -> CommitResult: ...


def arrow_type(column_type: ColumnType) -> pa.DataType:
    """Arrow type of a contract column type, as stored in Delta (timestamps in UTC)."""
    mapping: dict[str, pa.DataType] = {
        "string": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
        "int": pa.int32(),
        "bigint": pa.int64(),
        "decimal(7,2)": pa.decimal128(7, 2),
        "decimal(5,2)": pa.decimal128(5, 2),
    }
    try:
        return mapping[column_type]
    except KeyError:
        raise ValueError(
            f"unknown contract column type {column_type!r}; expected one of: {', '.join(mapping)}"
        ) from None


def arrow_schema(contract: TableContract) -> pa.Schema:
    return pa.schema([pa.field(c.name, arrow_type(c.type)) for c in contract.clean_columns])


def to_arrow(clean: DataFrame, contract: TableContract) -> pa.Table:
    """Collect a clean DataFrame as Arrow with exactly the contract's schema.

    delta-rs writes from one process, so the rows pass through the driver; that is the
    local stand-in's limit, not the Glue path's.
    """
    batches = clean.select(*contract.column_names)._collect_as_arrow()
    schema = arrow_schema(contract)
    if not batches:
        return schema.empty_table()
    return pa.Table.from_batches(batches).cast(schema)


def _sql_literal(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def merge_predicate(contract: TableContract, partitions: list[str] | None = None) -> str:
    """Join condition of the upsert: the key, plus the partition for partition-stable tables."""
    parts = [f"t.`{k}` = s.`{k}`" for k in contract.key]
    if not is_global_index(contract):
        parts.append(f"t.`{contract.partition}` = s.`{contract.partition}`")
        if partitions:
            listed = ", ".join(_sql_literal(p) for p in sorted(partitions))
            parts.append(f"t.`{contract.partition}` IN ({listed})")
    return " AND ".join(parts)


def newer_predicate(contract: TableContract) -> str:
    """When a matched row is replaced: not older by event time (ties go to the newcomer)."""
    return f"s.`{contract.ordering}` >= t.`{contract.ordering}`"


def _open_delta(path: str, storage_options: dict[str, str] | None) -> DeltaTable:
    table: DeltaTable = _delta().DeltaTable(path, storage_options=storage_options)
    return table


class DeltaSink:
    """The local stand-in for the Hudi table (see module docstring for the semantics)."""

    table_format = "delta"

    def __init__(
        self,
        path: str,
        contract: TableContract,
        retain_commits: int = DEFAULT_RETAIN_COMMITS,
        storage_options: dict[str, str] | None = None,
        partitioned: bool | None = None,
    ) -> None:
        if retain_commits < 1:
            raise ValueError(f"retain_commits must be at least 1, got {retain_commits}")
        # Physical partitioning by the partition date only where rows keep their partition
        # (sales): customer and address rows move to the newest date every night, so date
        # partitions would add a file per night to every lookup (bench_customer_lookup.py
        # measures both layouts); the column itself is always there.
        self.partitioned = not is_global_index(contract) if partitioned is None else partitioned
        self.path = path
        self.contract = contract
        self.retain_commits = retain_commits
        self.storage_options = storage_options

    def exists(self) -> bool:
        return bool(
            _delta().DeltaTable.is_deltatable(self.path, storage_options=self.storage_options)
        )

    def write(self, clean: DataFrame, load: LoadType) -> CommitResult:
        return self.write_arrow(to_arrow(clean, self.contract), load)

    def write_arrow(self, rows: pa.Table, load: LoadType) -> CommitResult:
        """Upsert (or, for an initial load, replace) and then trim history."""
        rows = rows.cast(arrow_schema(self.contract))
        if load == "initial" or not self.exists():
            _delta().write_deltalake(
                self.path,
                rows,
                partition_by=[self.contract.partition] if self.partitioned else None,
                mode="overwrite",
                schema_mode="overwrite",
                storage_options=self.storage_options,
            )
            result = CommitResult(self.table_format, "", rows.num_rows, 0, 0)
        else:
            table = _open_delta(self.path, self.storage_options)
            partitions = None
            if not is_global_index(self.contract):
                partitions = [str(p) for p in rows.column(self.contract.partition).unique()]
            metrics = (
                table.merge(
                    rows,
                    merge_predicate(self.contract, partitions),
                    source_alias="s",
                    target_alias="t",
                )
                .when_matched_update_all(predicate=newer_predicate(self.contract))
                .when_not_matched_insert_all()
                .execute()
            )
            inserted = int(metrics["num_target_rows_inserted"])
            updated = int(metrics["num_target_rows_updated"])
            result = CommitResult(
                self.table_format, "", inserted, updated, rows.num_rows - inserted - updated
            )
        version = self._trim_history()
        return CommitResult(
            result.table_format,
            str(version),
            result.rows_inserted,
            result.rows_updated,
            result.rows_ignored_older,
        )

    def write_versions(self) -> list[int]:
        """Versions of the loadable history that wrote data (newest first)."""
        table = _open_delta(self.path, self.storage_options)
        return [
            int(entry["version"])
            for entry in table.history()
            if entry.get("operation") in _WRITE_OPERATIONS
        ]

    def _trim_history(self) -> int:
        """Keep only what the last N write commits need; return the newest write version."""
        table = _open_delta(self.path, self.storage_options)
        version = table.version()
        # A checkpoint at every write lets the oldest kept write load without older logs.
        table.create_checkpoint()
        kept = self.write_versions()[: self.retain_commits]
        table.vacuum(
            retention_hours=0,
            enforce_retention_duration=False,
            dry_run=False,
            keep_versions=kept,
        )
        self._delete_log_entries_before(min(kept))
        return version

    def _delete_log_entries_before(self, oldest: int) -> None:
        filesystem, root = pafs.FileSystem.from_uri(self.path)
        log_dir = f"{root.rstrip('/')}/_delta_log"
        for info in filesystem.get_file_info(pafs.FileSelector(log_dir)):
            match = _LOG_ENTRY.match(info.base_name)
            if match and int(match.group(1)) < oldest:
                filesystem.delete_file(info.path)


class HudiSink:
    """Hudi through Spark's datasource: on Glue, and locally with the bundle from Maven."""

    table_format = "hudi"

    def __init__(
        self,
        spark: SparkSession,
        path: str,
        contract: TableContract,
        *,
        version: HudiVersion,
        retain_commits: int = DEFAULT_RETAIN_COMMITS,
        catalog_database: str | None = None,
        catalog_endpoint: str | None = None,
        catalog_region: str | None = None,
    ) -> None:
        self.spark = spark
        self.catalog_endpoint = catalog_endpoint
        self.catalog_region = catalog_region
        self.path = path
        self.contract = contract
        self.version: HudiVersion = version
        self.retain_commits = retain_commits
        self.catalog_database = catalog_database

    def _hadoop_path(self, suffix: str = "") -> Any:
        jvm = self.spark.sparkContext._jvm
        assert jvm is not None
        path = jvm.org.apache.hadoop.fs.Path(self.path.rstrip("/") + suffix)
        return path, path.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration())

    def exists(self) -> bool:
        path, filesystem = self._hadoop_path("/.hoodie")
        return bool(filesystem.exists(path))

    def write(self, clean: DataFrame, load: LoadType) -> CommitResult:
        options = hudi_write_options(
            self.contract,
            version=self.version,
            load=load,
            retain_commits=self.retain_commits,
            catalog_database=self.catalog_database,
            catalog_endpoint=self.catalog_endpoint,
            catalog_region=self.catalog_region,
        )
        clean.write.format("hudi").options(**options).mode(save_mode(load)).save(self.path)
        return CommitResult(self.table_format, self._latest_commit())

    def _latest_commit(self) -> str:
        """The instant time of the newest completed commit (0.x and 1.x timeline layouts)."""
        instants: list[str] = []
        for folder in ("/.hoodie", "/.hoodie/timeline"):
            path, filesystem = self._hadoop_path(folder)
            if not filesystem.exists(path):
                continue
            for status in filesystem.listStatus(path):
                name = str(status.getPath().getName())
                if name.endswith(".commit") or name.endswith(".replacecommit"):
                    instants.append(name.split(".")[0].split("_")[0])
        return max(instants) if instants else ""
