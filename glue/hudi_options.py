"""Hudi write options for the clean tables, as plain dicts (golden-tested, no Spark needed).

Why each choice (see DESIGN.md section 8):

* COPY_ON_WRITE: Redshift Spectrum reads Hudi copy-on-write snapshots only.
* Event-time ordering on the table's ordering field, so a record that arrives late with
  an older event time never overwrites the newer stored one. Hudi 0.x's default payload
  (OverwriteWithLatestAvroPayload) would let it; ``DefaultHoodieRecordPayload`` compares
  the ordering field against the stored record. Hudi 1.x expresses the same thing as the
  ``EVENT_TIME_ORDERING`` merge mode.
* Layout and index: customers and addresses are not partitioned (``customer_date`` /
  ``address_date`` stay ordinary columns). Their rows move to the date of their last change
  every night, so date partitions would add a file group per night and make every
  "latest version" lookup open all of them, and the cleaner, which bounds versions per file
  group, could not bound the bytes (measured in bench/bench_customer_lookup.py: 2.7x
  slower lookups and 4.3x the bytes after 30 nights vs 10). Unpartitioned, new keys fill
  the existing small files, so the file-group count follows the table size, not the
  number of nights. With one partition a partition-scoped index is global: SIMPLE on 0.15
  (a join on keys, fine for dimension-sized tables; BLOOM prunes poorly on random keys),
  the record-level index on 1.x. A sale's key never changes its sale date, so sales stay
  partitioned by it (Spectrum prunes on it) with the partition-scoped BLOOM index, which
  prunes by key ranges of the (increasing) ticket ids.
* Cleaner KEEP_LATEST_COMMITS with N commits retained bounds storage; archival keeps the
  active timeline between 2N and 3N commits, above the retained count as Hudi requires.
* Catalog sync with Hudi's Glue Data Catalog sync tool (``AwsGlueCatalogSyncTool``, from
  ``hudi-aws``), timestamps synced as timestamps, so Spectrum sees the table through
  ``ext_clean_mystore``. It calls the Glue API directly; on the embedded default the only
  difference is ``hoodie.aws.glue.endpoint`` (the local endpoint, from ``--catalog_endpoint``).
* Initial load uses ``bulk_insert`` (no index lookup on an empty table); incremental runs
  ``upsert``.
* Write markers (which files a commit is writing, so that a failed commit is rolled back)
  are written directly (``DIRECT``), not batched through the driver's embedded timeline
  server (the Spark default). When that server's marker thread dies, every task waiting on
  it hangs until the client's read timeout, 5 minutes, before the write fails: measured
  locally with a full disk (one clean step took 306.8 s to fail, its siblings 11 s), and
  reported on S3 under load (apache/hudi#7909, #13356, whose workaround is ``DIRECT``).
  A commit here writes a few files per table, so direct markers cost a few object writes,
  and the local commits got faster too (3.2-3.9 s against 4.1-5.2 s, docs/performance.md).
"""

from __future__ import annotations

from typing import Literal

from glue.contract import TableContract

HudiVersion = Literal["0.15", "1.0"]
LoadType = Literal["initial", "incremental"]
HUDI_VERSIONS: tuple[HudiVersion, ...] = ("0.15", "1.0")
LOAD_TYPES: tuple[LoadType, ...] = ("initial", "incremental")
DEFAULT_RETAIN_COMMITS = 10
DEFAULT_CATALOG_DATABASE = "clean_mystore"

# Tables whose rows keep their partition date for life; only these are stored partitioned.
PARTITIONED_TABLES = frozenset({"store_sale"})
NONPARTITIONED_KEY_GENERATOR = "org.apache.hudi.keygen.NonpartitionedKeyGenerator"


def hudi_version_of(text: str) -> HudiVersion:
    """Map a version string ("0.15.0", "1.0.2", "1.0") to the option family it needs."""
    cleaned = text.strip()
    if cleaned.startswith("0.15") or cleaned.startswith("0.14"):
        return "0.15"
    if cleaned.startswith("1."):
        return "1.0"
    raise ValueError(
        f"unsupported Hudi version {text!r}; expected 0.14.x/0.15.x (Glue 5.0) or 1.x (Glue 5.1)"
    )


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of: {', '.join(allowed)}")


def is_partitioned(contract: TableContract) -> bool:
    """Whether the table's files are partitioned by its partition date column.

    Only tables whose rows keep their date for life are: a row that moves to a new date
    every night would spread the table over one file group per night.
    """
    return contract.name in PARTITIONED_TABLES


def is_global_index(contract: TableContract) -> bool:
    """Whether an upsert matches on the key alone (true for every unpartitioned table)."""
    return not is_partitioned(contract)


def partition_path_field(contract: TableContract) -> str:
    """Hudi's partition path field: the date column, or empty for an unpartitioned table."""
    return contract.partition if is_partitioned(contract) else ""


def key_generator(contract: TableContract) -> str:
    """Key generator class: non-partitioned, or simple/complex by the number of key fields."""
    if not is_partitioned(contract):
        # Handles one or several record key fields; every row goes to partition "".
        return NONPARTITIONED_KEY_GENERATOR
    if len(contract.key) > 1:
        return "org.apache.hudi.keygen.ComplexKeyGenerator"
    return "org.apache.hudi.keygen.SimpleKeyGenerator"


def hudi_write_options(
    contract: TableContract,
    *,
    version: HudiVersion,
    load: LoadType,
    retain_commits: int = DEFAULT_RETAIN_COMMITS,
    catalog_database: str | None = DEFAULT_CATALOG_DATABASE,
    catalog_endpoint: str | None = None,
    catalog_region: str | None = None,
) -> dict[str, str]:
    """All options for ``df.write.format("hudi").options(**opts)`` for one clean table.

    ``catalog_database=None`` turns catalog sync off. ``catalog_endpoint`` points the sync
    at another Glue Data Catalog endpoint (the local one); on AWS it stays None.
    """
    _check(version, HUDI_VERSIONS, "Hudi version")
    _check(load, LOAD_TYPES, "load type")
    if retain_commits < 1:
        raise ValueError(f"retain_commits must be at least 1, got {retain_commits}")
    options: dict[str, str] = {
        "hoodie.table.name": contract.name,
        "hoodie.datasource.write.table.name": contract.name,
        "hoodie.datasource.write.table.type": "COPY_ON_WRITE",
        "hoodie.datasource.write.operation": "bulk_insert" if load == "initial" else "upsert",
        "hoodie.datasource.write.recordkey.field": ",".join(contract.key),
        "hoodie.datasource.write.precombine.field": contract.ordering,
        "hoodie.datasource.write.partitionpath.field": partition_path_field(contract),
        "hoodie.datasource.write.keygenerator.class": key_generator(contract),
        "hoodie.datasource.write.hive_style_partitioning": "true",
        "hoodie.datasource.write.drop.partition.columns": "false",
        # In-batch duplicates are already removed by the job; this keeps Hudi honest anyway.
        "hoodie.combine.before.insert": "true",
        "hoodie.combine.before.upsert": "true",
        "hoodie.cleaner.policy": "KEEP_LATEST_COMMITS",
        "hoodie.cleaner.commits.retained": str(retain_commits),
        "hoodie.clean.automatic": "true",
        "hoodie.keep.min.commits": str(2 * retain_commits),
        "hoodie.keep.max.commits": str(3 * retain_commits),
        "hoodie.write.markers.type": "DIRECT",
    }
    if version == "0.15":
        options |= {
            "hoodie.datasource.write.payload.class": (
                "org.apache.hudi.common.model.DefaultHoodieRecordPayload"
            ),
            "hoodie.payload.ordering.field": contract.ordering,
            "hoodie.payload.event.time.field": contract.ordering,
        }
        # One partition: the partition-scoped SIMPLE index already sees every key.
        options |= {"hoodie.index.type": "BLOOM" if is_partitioned(contract) else "SIMPLE"}
    else:
        options |= {
            "hoodie.write.record.merge.mode": "EVENT_TIME_ORDERING",
            "hoodie.record.merge.mode": "EVENT_TIME_ORDERING",
        }
        if is_partitioned(contract):
            options |= {"hoodie.index.type": "BLOOM"}
        else:
            options |= {
                "hoodie.metadata.enable": "true",
                "hoodie.metadata.record.index.enable": "true",
                "hoodie.index.type": "RECORD_INDEX",
            }
    if catalog_database is not None:
        options |= hive_sync_options(contract, catalog_database)
        if catalog_endpoint:
            # The one line that differs from AWS: where the Glue Data Catalog is.
            options["hoodie.aws.glue.endpoint"] = catalog_endpoint
        if catalog_region:
            options["hoodie.aws.glue.region"] = catalog_region
    return options


GLUE_SYNC_TOOL = "org.apache.hudi.aws.sync.AwsGlueCatalogSyncTool"


def hive_sync_options(contract: TableContract, database: str) -> dict[str, str]:
    """Sync to the Glue Data Catalog with Hudi's Glue sync tool after every commit.

    The tool takes the ``hive_sync.*`` settings (database, table, partition fields) and
    calls Glue's API itself (databases, tables, partitions), so it needs no Hive metastore
    client; the same options work against any endpoint that speaks that API. An
    unpartitioned table syncs with no partition fields and ``NonPartitionedExtractor``
    (``MultiPartKeysValueExtractor`` rejects an empty partition path), so its catalog
    entry has no partition keys and its date column is a data column.
    """
    if not database or not database.replace("_", "").isalnum():
        raise ValueError(
            f"invalid catalog database {database!r}; expected letters, digits and underscores"
        )
    return {
        "hoodie.datasource.meta.sync.enable": "true",
        "hoodie.meta.sync.client.tool.class": GLUE_SYNC_TOOL,
        "hoodie.datasource.hive_sync.database": database,
        "hoodie.datasource.hive_sync.table": contract.name,
        "hoodie.datasource.hive_sync.partition_fields": partition_path_field(contract),
        "hoodie.datasource.hive_sync.partition_extractor_class": (
            "org.apache.hudi.hive.MultiPartKeysValueExtractor"
            if is_partitioned(contract)
            else "org.apache.hudi.hive.NonPartitionedExtractor"
        ),
        "hoodie.datasource.hive_sync.support_timestamp": "true",
        "hoodie.datasource.hive_sync.sync_as_datasource": "false",
    }


def save_mode(load: LoadType) -> str:
    """Spark save mode: an initial load replaces whatever is at the path."""
    _check(load, LOAD_TYPES, "load type")
    return "overwrite" if load == "initial" else "append"


def spark_session_conf(bundle_jar: str | None) -> dict[str, str]:
    """Session settings Hudi's Spark writer needs (Glue sets these for --datalake-formats hudi)."""
    conf = {
        "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
        "spark.kryo.registrator": "org.apache.spark.HoodieSparkKryoRegistrar",
        "spark.sql.extensions": "org.apache.spark.sql.hudi.HoodieSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.hudi.catalog.HoodieCatalog",
    }
    if bundle_jar:
        conf["spark.jars"] = bundle_jar
    return conf
