"""Hudi's own Glue catalog sync (AwsGlueCatalogSyncTool, Hudi 0.15.0) into the local
catalog, run by the real clean job through the local endpoint, twice for the partitioned
sales and once for the unpartitioned customers; then the Spectrum stand-in follows the
catalog."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import psutil
import psycopg
import pytest

from local.endpoint import AwsEndpoint
from local.glue_catalog import attach_glue_catalog
from local.glue_jobs import register_glue
from tests.glue.conftest import maven_hudi_environ

TABLE = "store_sale"


@pytest.fixture
def scratch_dsn(local_stack: Any) -> Iterator[str]:
    parts = urlsplit(local_stack.pg_dsn)
    with psycopg.connect(local_stack.pg_dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS hudi_sync_e2e WITH (FORCE)")
        conn.execute("CREATE DATABASE hudi_sync_e2e")
        try:
            yield urlunsplit(parts._replace(path="/hudi_sync_e2e"))
        finally:
            conn.execute("DROP DATABASE IF EXISTS hudi_sync_e2e WITH (FORCE)")


def jvm_thread_names(driver_pid: int) -> list[str]:
    """The kernel's names (first 15 characters) of the threads of the driver's Spark JVM."""
    names = []
    for child in psutil.Process(driver_pid).children(recursive=True):
        if "java" not in child.name():
            continue
        for thread in child.threads():
            comm = Path(f"/proc/{child.pid}/task/{thread.id}/comm")
            try:
                names.append(comm.read_text().strip())
            except OSError:
                continue  # the thread ended meanwhile
    return names


def run_night(glue: Any, day: str, table: str = TABLE) -> dict[str, Any]:
    run_id = glue.start_job_run(
        JobName="raw2clean", Arguments={"--table": table, "--logical_date": day}
    )["JobRunId"]
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        run: dict[str, Any] = glue.get_job_run(JobName="raw2clean", RunId=run_id)["JobRun"]
        if run["JobRunState"] not in ("STARTING", "RUNNING", "STOPPING"):
            log = (Path(run["LogGroupName"]) / f"{run_id}.log").read_text()
            assert run["JobRunState"] == "SUCCEEDED", (run.get("ErrorMessage"), log[-4000:])
            return run
        time.sleep(0.2)  # GetJobRun is a local call; notice the run's end promptly
    raise AssertionError(f"run {run_id} did not finish")


@pytest.mark.slow
def test_two_nights_register_then_update_tables_and_partitions(
    scratch_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warm_spark_drivers: Any
) -> None:
    """The clean job runs in the session's warm Spark driver (the environment of every
    default clean run, ``maven_hudi_environ``), as the local stack runs it. Its AWS SDK
    (Java) signs the sync's calls with the local job keys ``child_environment`` gives it;
    the region comes with ``--catalog_region``."""
    from hudi import HudiTableBuilder

    from local.sample_data import GenerateConfig, generate

    for key in set(os.environ) - set(maven_hudi_environ()):
        monkeypatch.delenv(key)  # Hudi from Maven Central: the session driver's key
    truth = generate(GenerateConfig(days=2, customers=40, sales_per_day=60), tmp_path)
    days = [night["date"] for night in truth["days"]]
    endpoint = AwsEndpoint()
    service = register_glue(
        endpoint, pg_dsn=scratch_dsn, data_dir=tmp_path, warm_drivers=warm_spark_drivers
    )
    attach_glue_catalog(endpoint, data_dir=tmp_path, glue_service=service, pg_dsn=scratch_dsn)
    endpoint.start()
    glue = boto3.client(
        "glue",
        endpoint_url=endpoint.url,
        region_name="us-east-1",
        aws_access_key_id="AKIDLOCAL",
        aws_secret_access_key="local-dummy-secret",
    )
    try:
        run_night(glue, days[0])
        first = glue.get_table(DatabaseName="clean_mystore", Name=TABLE)["Table"]
        columns = [c["Name"] for c in first["StorageDescriptor"]["Columns"]]
        assert columns[:2] == ["_hoodie_commit_time", "_hoodie_commit_seqno"]
        assert {"ticket_id", "item_id", "sale_datetime", "net_paid"} <= set(columns)
        assert [k["Name"] for k in first["PartitionKeys"]] == ["sale_date"]
        assert first["StorageDescriptor"]["Location"].endswith(f"/clean/{TABLE}")
        first_sync = first["Parameters"]["last_commit_time_sync"]
        partitions = glue.get_partitions(DatabaseName="clean_mystore", TableName=TABLE)
        first_values = {p["Values"][0] for p in partitions["Partitions"]}
        assert days[0] in first_values

        run_night(glue, days[1])
        second = glue.get_table(DatabaseName="clean_mystore", Name=TABLE)["Table"]
        assert second["Parameters"]["last_commit_time_sync"] > first_sync
        partitions = glue.get_partitions(DatabaseName="clean_mystore", TableName=TABLE)
        values = {p["Values"][0] for p in partitions["Partitions"]}
        assert first_values < values and days[1] in values

        batches = HudiTableBuilder.from_base_uri(str(tmp_path / "clean" / TABLE)).build().read()
        hudi_rows = sum(b.num_rows for b in batches)
        assert hudi_rows == truth["days"][-1]["tables"][TABLE]["clean_rows"]
        with psycopg.connect(scratch_dsn) as conn:
            count = conn.execute(f"SELECT count(*) FROM ext_clean_mystore.{TABLE}").fetchone()
            ext_columns = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE "
                    "table_schema = 'ext_clean_mystore' AND table_name = %s "
                    "ORDER BY ordinal_position",
                    (TABLE,),
                ).fetchall()
            ]
        assert count == (hudi_rows,)
        expected = [c for c in columns if not c.startswith("_hoodie_")]
        assert ext_columns == [*expected, "sale_date"] or ext_columns == expected

        # Customers are unpartitioned: no partition keys, customer_date a data column.
        run = run_night(glue, days[0], "store_customer")
        # Each sync closed its AWS SDK client without shutting down the SDK's shared Netty
        # event loop (glue.local_spark.keep_sdk_event_loop), so its threads outlive the runs;
        # a close that shuts the loop down waits 2 s for them to end first.
        driver = service.store.get(run["Id"])
        assert driver is not None and driver.child_pid is not None
        threads = jvm_thread_names(driver.child_pid)
        assert any(name.startswith("aws-java-sdk-Ne") for name in threads), sorted(threads)
        customer = glue.get_table(DatabaseName="clean_mystore", Name="store_customer")["Table"]
        assert customer["PartitionKeys"] == []
        customer_columns = [c["Name"] for c in customer["StorageDescriptor"]["Columns"]]
        assert {"customer_id", "customer_date"} <= set(customer_columns)
        listed = glue.get_partitions(DatabaseName="clean_mystore", TableName="store_customer")
        assert listed["Partitions"] == []
        with psycopg.connect(scratch_dsn) as conn:
            dated = conn.execute(
                "SELECT count(*), count(customer_date) FROM ext_clean_mystore.store_customer"
            ).fetchone()
        customers = truth["days"][0]["tables"]["store_customer"]["clean_rows"]
        assert dated == (customers, customers)
    finally:
        service.close()
        endpoint.stop()
