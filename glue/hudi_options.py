"""Hudi write options for the clean tables, as plain dicts (golden-tested, no Spark needed).

Why each choice (see DESIGN.md section 8):

* COPY_ON_WRITE: Redshift Spectrum reads Hudi copy-on-write snapshots only.
* Event-time ordering on the table's ordering field, so a record that arrives late with
  an older event time never overwrites the newer stored one. Hudi 0.x's default payload
  (OverwriteWithLatestAvroPayload) would let it; ``DefaultHoodieRecordPayload`` compares
  the ordering field against the stored record. Hudi 1.x expresses the same thing as the
  ``EVENT_TIME_ORDERING`` merge mode.
* Index: customers and addresses are partitioned by the date of their last change, so an
  update moves a key to a new partition; only a global index with partition-path update
  keeps one live row per key. GLOBAL_SIMPLE on 0.15 (a join on keys, fine for these
  dimension-sized tables; GLOBAL_BLOOM degrades on random keys), the record-level index on
  1.x. A sale's key never changes its sale date, so sales use the partition-scoped BLOOM
  index, which prunes by key ranges of the (increasing) ticket ids.
* Cleaner KEEP_LATEST_COMMITS with N commits retained bounds storage; archival keeps the
  active timeline between 2N and 3N commits, above the retained count as Hudi requires.
* Catalog sync with Hudi's Glue Data Catalog sync tool (``AwsGlueCatalogSyncTool``, from
  ``hudi-aws``), timestamps synced as timestamps, so Spectrum sees the table through
  ``ext_clean_mystore``. It calls the Glue API directly; on the embedded default the only
  difference is ``hoodie.aws.glue.endpoint`` (the local endpoint, from ``--catalog_endpoint``).
* Initial load uses ``bulk_insert`` (no index lookup on an empty table); incremental runs
  ``upsert``.
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

# Tables whose rows keep their partition for life can use a partition-scoped index.
PARTITION_STABLE_TABLES = frozenset({"store_sale"})


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


def is_global_index(contract: TableContract) -> bool:
    """Whether a key may move between partitions (and so needs a global index)."""
    return contract.name not in PARTITION_STABLE_TABLES


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
    composite = len(contract.key) > 1
    options: dict[str, str] = {
        "hoodie.table.name": contract.name,
        "hoodie.datasource.write.table.name": contract.name,
        "hoodie.datasource.write.table.type": "COPY_ON_WRITE",
        "hoodie.datasource.write.operation": "bulk_insert" if load == "initial" else "upsert",
        "hoodie.datasource.write.recordkey.field": ",".join(contract.key),
        "hoodie.datasource.write.precombine.field": contract.ordering,
        "hoodie.datasource.write.partitionpath.field": contract.partition,
        "hoodie.datasource.write.keygenerator.class": (
            "org.apache.hudi.keygen.ComplexKeyGenerator"
            if composite
            else "org.apache.hudi.keygen.SimpleKeyGenerator"
        ),
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
    }
    if version == "0.15":
        options |= {
            "hoodie.datasource.write.payload.class": (
                "org.apache.hudi.common.model.DefaultHoodieRecordPayload"
            ),
            "hoodie.payload.ordering.field": contract.ordering,
            "hoodie.payload.event.time.field": contract.ordering,
        }
        if is_global_index(contract):
            options |= {
                "hoodie.index.type": "GLOBAL_SIMPLE",
                "hoodie.simple.index.update.partition.path": "true",
            }
        else:
            options |= {"hoodie.index.type": "BLOOM"}
    else:
        options |= {
            "hoodie.write.record.merge.mode": "EVENT_TIME_ORDERING",
            "hoodie.record.merge.mode": "EVENT_TIME_ORDERING",
        }
        if is_global_index(contract):
            options |= {
                "hoodie.metadata.enable": "true",
                "hoodie.metadata.record.index.enable": "true",
                "hoodie.index.type": "RECORD_INDEX",
                "hoodie.record.index.update.partition.path": "true",
            }
        else:
            options |= {"hoodie.index.type": "BLOOM"}
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
    client; the same options work against any endpoint that speaks that API.
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
        "hoodie.datasource.hive_sync.partition_fields": contract.partition,
        "hoodie.datasource.hive_sync.partition_extractor_class": (
            "org.apache.hudi.hive.MultiPartKeysValueExtractor"
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
