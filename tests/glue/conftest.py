"""One Spark session for every Glue test: starting Spark costs seconds, so it is shared."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from glue.job_arguments import HUDI_JAR_ENV
from glue.local_spark import DEFAULT_JAVA_OPTIONS, spark_warehouse_dir
from glue.transforms import SESSION_CONF


def maven_hudi_environ() -> dict[str, str]:
    """The environment of a default local clean run: Hudi from Maven Central, no bundle jar
    and no table-format override. The tests that run the job in the session's warm drivers
    (``warm_spark_drivers``) all pass this one, so they share one warm JVM."""
    return {
        k: v for k, v in os.environ.items() if k not in (HUDI_JAR_ENV, "MYSTORE_LOCAL_TABLE_FORMAT")
    }


@contextmanager
def warm_clean_job(data_dir: Path, warm_drivers: Any) -> Iterator[Any]:
    """A local Glue service for the clean job under ``data_dir``, running it in the session's
    warm drivers with ``maven_hudi_environ()``; closed afterwards."""
    from local.glue_jobs import GlueService, default_jobs

    service = GlueService(
        default_jobs(data_dir, None),
        log_dir=data_dir / "logs",
        environ=maven_hudi_environ(),
        warm_drivers=warm_drivers,
    )
    try:
        yield service
    finally:
        service.close()


def run_clean_job(
    service: Any, arguments: Mapping[str, str], timeout: float, *, expect: str = "SUCCEEDED"
) -> tuple[Any, str]:
    """Start one clean-job run on ``service`` and wait for its end: (the run, its log).
    Fails the test, quoting the log, unless the run ended in the state ``expect``."""
    from local.glue_jobs.requests import StartRequest

    run = service.backend.start(
        StartRequest("raw2clean", dict(arguments), None, None, None, None, None)
    )
    deadline = time.monotonic() + timeout
    while run.active and time.monotonic() < deadline:
        time.sleep(0.2)
    log = (Path(run.log_group) / f"{run.id}.log").read_text()
    assert run.state == expect, (dict(arguments), run.state, run.error_message, log[-3000:])
    return run, log


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    builder = SparkSession.builder
    for key, value in SESSION_CONF.items():
        builder = builder.config(key, value)
    session = (
        builder.master("local[2]")
        .appName("mystore-glue-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.driver.extraJavaOptions", DEFAULT_JAVA_OPTIONS)
        .config("spark.sql.warehouse.dir", spark_warehouse_dir())
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("WARN")
    yield session
    session.stop()
