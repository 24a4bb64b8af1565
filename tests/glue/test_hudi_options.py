"""Golden tests of the Hudi write options: every table x Hudi 0.15/1.0 x initial/incremental.

``golden/hudi_options.json`` holds the full reviewed dicts; the literal dicts below pin the
options that carry the design's guarantees, so a change to them is read, not regenerated.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glue.contract import CLEAN_TABLES, STORE_CUSTOMER, STORE_CUSTOMER_ADDRESS, STORE_SALE
from glue.hudi_options import (
    hive_sync_options,
    hudi_version_of,
    hudi_write_options,
    save_mode,
    spark_session_conf,
)

GOLDEN = json.loads((Path(__file__).parent / "golden" / "hudi_options.json").read_text())

COMMON = {
    "hoodie.datasource.write.table.type": "COPY_ON_WRITE",
    "hoodie.datasource.write.hive_style_partitioning": "true",
    "hoodie.cleaner.policy": "KEEP_LATEST_COMMITS",
    "hoodie.cleaner.commits.retained": "10",
    "hoodie.clean.automatic": "true",
    "hoodie.keep.min.commits": "20",
    "hoodie.keep.max.commits": "30",
    "hoodie.write.markers.type": "DIRECT",
    "hoodie.datasource.meta.sync.enable": "true",
    "hoodie.meta.sync.client.tool.class": "org.apache.hudi.aws.sync.AwsGlueCatalogSyncTool",
    "hoodie.datasource.hive_sync.database": "clean_mystore",
    "hoodie.datasource.hive_sync.support_timestamp": "true",
}
EVENT_TIME_015 = {
    "hoodie.datasource.write.payload.class": "org.apache.hudi.common.model.DefaultHoodieRecordPayload",
}
EVENT_TIME_10 = {
    "hoodie.write.record.merge.mode": "EVENT_TIME_ORDERING",
    "hoodie.record.merge.mode": "EVENT_TIME_ORDERING",
}


@pytest.mark.parametrize("table", sorted(CLEAN_TABLES))
@pytest.mark.parametrize("version", ["0.15", "1.0"])
@pytest.mark.parametrize("load", ["initial", "incremental"])
def test_options_match_the_golden_file(table: str, version: str, load: str) -> None:
    options = hudi_write_options(CLEAN_TABLES[table], version=version, load=load)  # type: ignore[arg-type]
    assert options == GOLDEN[f"{table}/{version}/{load}"]


def test_customer_on_015_is_unpartitioned_and_upserts_by_event_time_on_the_key() -> None:
    options = hudi_write_options(STORE_CUSTOMER, version="0.15", load="incremental")
    expected = COMMON | EVENT_TIME_015
    expected |= {
        "hoodie.table.name": "store_customer",
        "hoodie.datasource.write.operation": "upsert",
        "hoodie.datasource.write.recordkey.field": "customer_id",
        "hoodie.datasource.write.precombine.field": "customer_datetime",
        "hoodie.payload.ordering.field": "customer_datetime",
        "hoodie.datasource.write.partitionpath.field": "",
        "hoodie.datasource.write.keygenerator.class": (
            "org.apache.hudi.keygen.NonpartitionedKeyGenerator"
        ),
        "hoodie.index.type": "SIMPLE",
        "hoodie.datasource.hive_sync.table": "store_customer",
        "hoodie.datasource.hive_sync.partition_fields": "",
        "hoodie.datasource.hive_sync.partition_extractor_class": (
            "org.apache.hudi.hive.NonPartitionedExtractor"
        ),
    }
    assert {k: options[k] for k in expected} == expected
    assert not [k for k in options if "update.partition.path" in k]


def test_address_on_10_is_unpartitioned_with_event_time_merge_mode_and_the_record_index() -> None:
    options = hudi_write_options(STORE_CUSTOMER_ADDRESS, version="1.0", load="incremental")
    expected = COMMON | EVENT_TIME_10
    expected |= {
        "hoodie.datasource.write.operation": "upsert",
        "hoodie.datasource.write.recordkey.field": "address_id",
        "hoodie.datasource.write.precombine.field": "address_datetime",
        "hoodie.datasource.write.partitionpath.field": "",
        "hoodie.datasource.write.keygenerator.class": (
            "org.apache.hudi.keygen.NonpartitionedKeyGenerator"
        ),
        "hoodie.index.type": "RECORD_INDEX",
        "hoodie.metadata.record.index.enable": "true",
    }
    assert {k: options[k] for k in expected} == expected
    assert "hoodie.datasource.write.payload.class" not in options


def test_sale_initial_load_bulk_inserts_with_a_composite_key_and_bloom_index() -> None:
    options = hudi_write_options(STORE_SALE, version="0.15", load="initial")
    expected = COMMON | EVENT_TIME_015
    expected |= {
        "hoodie.datasource.write.operation": "bulk_insert",
        "hoodie.datasource.write.recordkey.field": "ticket_id,item_id",
        "hoodie.datasource.write.keygenerator.class": "org.apache.hudi.keygen.ComplexKeyGenerator",
        "hoodie.datasource.write.precombine.field": "sale_datetime",
        "hoodie.datasource.write.partitionpath.field": "sale_date",
        "hoodie.index.type": "BLOOM",
    }
    assert {k: options[k] for k in expected} == expected
    assert save_mode("initial") == "overwrite"
    assert save_mode("incremental") == "append"


def test_retention_and_archival_follow_the_retained_commits() -> None:
    options = hudi_write_options(
        STORE_SALE, version="1.0", load="incremental", retain_commits=4, catalog_database=None
    )
    assert {k: options[k] for k in options if k.startswith(("hoodie.clean", "hoodie.keep"))} == {
        "hoodie.cleaner.policy": "KEEP_LATEST_COMMITS",
        "hoodie.cleaner.commits.retained": "4",
        "hoodie.clean.automatic": "true",
        "hoodie.keep.min.commits": "8",
        "hoodie.keep.max.commits": "12",
    }
    assert not [k for k in options if "hive_sync" in k]


def test_hive_sync_options_for_a_named_database() -> None:
    assert hive_sync_options(STORE_SALE, "mystore_clean") == {
        "hoodie.datasource.meta.sync.enable": "true",
        "hoodie.meta.sync.client.tool.class": "org.apache.hudi.aws.sync.AwsGlueCatalogSyncTool",
        "hoodie.datasource.hive_sync.database": "mystore_clean",
        "hoodie.datasource.hive_sync.table": "store_sale",
        "hoodie.datasource.hive_sync.partition_fields": "sale_date",
        "hoodie.datasource.hive_sync.partition_extractor_class": (
            "org.apache.hudi.hive.MultiPartKeysValueExtractor"
        ),
        "hoodie.datasource.hive_sync.support_timestamp": "true",
        "hoodie.datasource.hive_sync.sync_as_datasource": "false",
    }


def test_a_local_catalog_differs_from_aws_by_the_endpoint_line_only() -> None:
    on_aws = hudi_write_options(STORE_SALE, version="0.15", load="incremental")
    local = hudi_write_options(
        STORE_SALE,
        version="0.15",
        load="incremental",
        catalog_endpoint="http://127.0.0.1:4566",
    )
    assert {k: v for k, v in local.items() if k not in on_aws} == {
        "hoodie.aws.glue.endpoint": "http://127.0.0.1:4566"
    }
    assert {k: v for k, v in local.items() if k in on_aws} == on_aws
    no_sync = hudi_write_options(
        STORE_SALE,
        version="0.15",
        load="incremental",
        catalog_database=None,
        catalog_endpoint="http://127.0.0.1:4566",
    )
    assert not any("sync" in k or "glue" in k for k in no_sync)


def test_session_conf_for_a_local_bundle_jar() -> None:
    assert spark_session_conf("/opt/hudi-spark3.5-bundle_2.12-0.15.0.jar") == {
        "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
        "spark.kryo.registrator": "org.apache.spark.HoodieSparkKryoRegistrar",
        "spark.sql.extensions": "org.apache.spark.sql.hudi.HoodieSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.hudi.catalog.HoodieCatalog",
        "spark.jars": "/opt/hudi-spark3.5-bundle_2.12-0.15.0.jar",
    }


@pytest.mark.parametrize(
    ("text", "expected"), [("0.15.0", "0.15"), ("0.14.1", "0.15"), ("1.0.2", "1.0"), ("1.0", "1.0")]
)
def test_hudi_version_of(text: str, expected: str) -> None:
    assert hudi_version_of(text) == expected


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: hudi_version_of("0.12.3"), "unsupported Hudi version '0.12.3'; expected"),
        (
            lambda: hudi_write_options(STORE_SALE, version="2.0", load="initial"),  # type: ignore[arg-type]
            "unknown Hudi version '2.0'; expected one of: 0.15, 1.0",
        ),
        (
            lambda: hudi_write_options(STORE_SALE, version="1.0", load="full"),  # type: ignore[arg-type]
            "unknown load type 'full'; expected one of: initial, incremental",
        ),
        (
            lambda: hudi_write_options(STORE_SALE, version="1.0", load="initial", retain_commits=0),
            "retain_commits must be at least 1, got 0",
        ),
        (
            lambda: hive_sync_options(STORE_SALE, "drop table;"),
            "invalid catalog database 'drop table;'",
        ),
    ],
)
def test_bad_values_are_named(call: object, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        call()  # type: ignore[operator]
