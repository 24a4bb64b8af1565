"""One Spark session for every Glue test: starting Spark costs seconds, so it is shared."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from glue.job_arguments import HUDI_JAR_ENV
from glue.transforms import SESSION_CONF


def maven_hudi_environ() -> dict[str, str]:
    """The environment of a default local clean run: Hudi from Maven Central, no bundle jar
    and no table-format override. The tests that run the job in the session's warm drivers
    (``warm_spark_drivers``) all pass this one, so they share one warm JVM."""
    return {
        k: v for k, v in os.environ.items() if k not in (HUDI_JAR_ENV, "MYSTORE_LOCAL_TABLE_FORMAT")
    }


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
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("WARN")
    yield session
    session.stop()
