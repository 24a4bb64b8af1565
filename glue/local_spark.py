"""The clean job's local Spark session, with Hudi from Maven Central (see glue.hudi_runtime).

On Glue the session comes from GlueContext; this is only the laptop's way to get the same
Hudi on the classpath: ``spark.jars.packages`` resolved through Spark's Ivy cache. Ivy
re-resolves the whole dependency tree on every start even when everything is cached
(seconds, more on a loaded machine), so after the first resolution the resolved jar list
is kept next to the cache (``mystore-hudi-<version>-jars.json``) and later starts put
those jars on ``spark.jars`` directly; a list naming a missing jar is ignored.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glue.hudi_options import HudiVersion, spark_session_conf
from glue.hudi_runtime import (
    DEFAULT_MAVEN_REPOSITORY,
    MAVEN_REPOSITORY_ENV,
    HudiRuntimeError,
    ivy_dir,
    local_spark_conf,
    missing_artifacts,
    offline_message,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SPARK_MASTER_ENV = "MYSTORE_SPARK_MASTER"
DRIVER_MEMORY_ENV = "MYSTORE_SPARK_DRIVER_MEMORY"
JAVA_OPTIONS_ENV = "MYSTORE_SPARK_JAVA_OPTIONS"
# The local driver JVM's flags (only here: on Glue the session is GlueContext's). A local
# clean run is seconds of mostly cold code on a small laptop, where the JIT's optimizing
# compiler (C2) competes with the work for the cores and rarely pays back: C1 only halved
# a fresh JVM's first night on 2 cores (docs/glue-local.md). JOL (inside Hudi, sizing
# objects for its spillable maps) otherwise probes the HotSpot Serviceability Agent, which
# fails anyway (the Doris docs give the same flag for Hudi 0.15). C1 only also shrinks the
# JVM's default code cache to 48 MB, which a warm driver fills in about four nights; the
# JVM then stops compiling ("CodeCache is full. Compiler has been disabled") and every later
# run is interpreted, twice as slow. 256 MB is reserved, committed only as used (a warm
# driver settled near 60 MB). None of these changes what is computed or written.
# MYSTORE_SPARK_JAVA_OPTIONS="" turns them off.
DEFAULT_JAVA_OPTIONS = (
    "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m -Djol.skipHotspotSAAttach=true"
)


def spark_warehouse_dir() -> str:
    """Where the local session's catalog keeps managed tables: none are made (the job writes
    to explicit paths), but Spark creates the directory, by default as ``spark-warehouse/``
    in the current directory: the repository a user runs nights from. Per user, since the
    system's temporary directory is shared."""
    return str(Path(tempfile.gettempdir()) / f"mystore-spark-warehouse-{os.getuid()}")


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else 'no message'}"


# Classes PySpark looks up by short name through Py4J on every column expression (a clean
# run of the sales table made 445 lookups of ``functions``). PySpark's gateway knows them only
# through package imports (``org.apache.spark.sql.*`` among six others), so each lookup first
# fails in the packages before it, each failure a search of every jar on the classpath:
# 445 lookups took 0.24 s, 0.05 s once the class is imported by name. Local only: on Glue
# the session is GlueContext's.
PY4J_SINGLE_IMPORTS = (
    "org.apache.spark.sql.functions",
    "org.apache.spark.sql.SparkSession",
    "org.apache.spark.api.python.PythonUtils",
)


def local_spark(
    job_name: str, table: str, table_format: str, version: HudiVersion, bundle_jar: str | None
) -> SparkSession:
    """The local session; for Hudi with the bundle jar given, else from Maven Central."""
    session = _local_session(job_name, table, table_format, version, bundle_jar)
    import_by_name(session)
    keep_sdk_event_loop(session)
    return session


def import_by_name(session: SparkSession) -> None:
    """Let Py4J find PySpark's most looked-up classes without searching the classpath."""
    from py4j.java_gateway import java_import

    jvm = session.sparkContext._jvm
    assert jvm is not None
    for name in PY4J_SINGLE_IMPORTS:
        java_import(jvm, name)


# The AWS SDK's async clients share one Netty event loop per JVM, counted by reference;
# the client that closes the last reference shuts the loop down and waits out Netty's fixed
# 2 s quiet period. Hudi's Glue catalog sync builds such a client for each commit and closes
# it after "Sync complete", so every local Hudi commit waited 2 s for nothing (an upsert of
# 300 rows: 5.0 s with the sync, 3.2 s without). The local session holds one reference for
# the JVM's life, so a close only counts down. What is synced is unchanged; only an idle,
# daemon thread pool outlives the commit. Local only: on Glue each job run is its own JVM.
SDK_SHARED_EVENT_LOOP = "software.amazon.awssdk.http.nio.netty.internal.SharedSdkEventLoopGroup"
_sdk_event_loops_kept: dict[int, Any] = {}


def keep_sdk_event_loop(session: SparkSession) -> bool:
    """Hold one reference to the SDK's shared event loop in this session's JVM (once per
    JVM); False when the SDK is not on the classpath (no Glue sync to speed up)."""
    from py4j.java_gateway import JavaClass

    jvm = session.sparkContext._jvm
    assert jvm is not None
    gateway = id(jvm._gateway_client)
    if gateway in _sdk_event_loops_kept:
        return True
    shared = jvm
    for part in SDK_SHARED_EVENT_LOOP.split("."):
        shared = getattr(shared, part)
    if not isinstance(shared, JavaClass):
        return False
    _sdk_event_loops_kept[gateway] = shared.get()
    return True


def _local_session(
    job_name: str, table: str, table_format: str, version: HudiVersion, bundle_jar: str | None
) -> SparkSession:
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(os.environ.get(SPARK_MASTER_ENV, "local[2]"))
        .appName(f"{job_name}:{table}")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", os.environ.get(DRIVER_MEMORY_ENV, "2g"))
        .config("spark.sql.warehouse.dir", spark_warehouse_dir())
    )
    java_options = os.environ.get(JAVA_OPTIONS_ENV, DEFAULT_JAVA_OPTIONS).strip()
    if java_options:
        builder = builder.config("spark.driver.extraJavaOptions", java_options)
    if table_format != "hudi":
        return builder.getOrCreate()
    for key, value in spark_session_conf(bundle_jar).items():
        builder = builder.config(key, value)
    if bundle_jar:
        return builder.getOrCreate()
    return _session_with_maven_hudi(builder, version)


def _session_with_maven_hudi(builder: Any, version: HudiVersion) -> SparkSession:
    """Start Spark with the Hudi jars from Maven Central, downloading them on first use.

    Parallel runs (the nightly starts three) take a file lock while the cache is cold, so
    only one downloads and the others wait and then find the jars cached.
    """
    import fcntl

    ivy = ivy_dir()
    repository = os.environ.get(MAVEN_REPOSITORY_ENV) or DEFAULT_MAVEN_REPOSITORY
    jars = resolved_jars(version, ivy)
    if jars and not missing_artifacts(version, ivy):
        session: SparkSession = builder.config("spark.jars", ",".join(jars)).getOrCreate()
        return session
    for key, value in local_spark_conf(version, ivy, repository).items():
        builder = builder.config(key, value)
    if not missing_artifacts(version, ivy):
        session = builder.getOrCreate()
        _remember_resolved_jars(session, version, ivy)
        return session
    with open(ivy / "mystore-hudi.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = missing_artifacts(version, ivy)
        if missing:
            print(
                f"[raw2clean] downloading {', '.join(a.coordinate for a in missing)} from {repository} "
                f"into {ivy} (first run only, about 130 MB)",
                flush=True,
            )
        session = _start_or_explain(builder, version, repository, ivy)
        _remember_resolved_jars(session, version, ivy)
        return session


def resolved_jars_path(version: HudiVersion, ivy: Path) -> Path:
    return ivy / f"mystore-hudi-{version}-jars.json"


def resolved_jars(version: HudiVersion, ivy: Path) -> list[str]:
    """The jars an earlier Ivy resolution gave, if that list exists and every jar is there."""
    try:
        jars = json.loads(resolved_jars_path(version, ivy).read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(jars, list) or not jars:
        return []
    return [str(j) for j in jars] if all(Path(str(j)).is_file() for j in jars) else []


def _remember_resolved_jars(session: SparkSession, version: HudiVersion, ivy: Path) -> None:
    """Keep the jar list Spark resolved (its ``spark.jars``) for the next start."""
    listed = session.sparkContext.getConf().get("spark.jars") or ""
    jars = [j.removeprefix("file://").removeprefix("file:") for j in listed.split(",") if j]
    if jars and all(Path(j).is_file() for j in jars):
        path = resolved_jars_path(version, ivy)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(jars))
        temporary.replace(path)


def _start_or_explain(
    builder: Any, version: HudiVersion, repository: str, ivy: Path
) -> SparkSession:
    try:
        session: SparkSession = builder.getOrCreate()
    except Exception as exc:  # spark-submit exits before the JVM gateway opens
        raise HudiRuntimeError(offline_message(version, repository, ivy, _first_line(exc))) from exc
    return session
