"""The local session: the remembered Hudi jar list (used only when it names jars that are
all still there) and the local driver JVM's flags."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from glue.local_spark import DEFAULT_JAVA_OPTIONS, resolved_jars, resolved_jars_path

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def test_a_complete_jar_list_is_used_and_an_incomplete_one_is_not(tmp_path: Path) -> None:
    assert resolved_jars("0.15", tmp_path) == []  # nothing remembered yet
    jars = [tmp_path / "jars" / "a.jar", tmp_path / "jars" / "b.jar"]
    jars[0].parent.mkdir()
    for jar in jars:
        jar.write_bytes(b"PK")
    path = resolved_jars_path("0.15", tmp_path)
    assert path == tmp_path / "mystore-hudi-0.15-jars.json"
    path.write_text(json.dumps([str(j) for j in jars]))
    assert resolved_jars("0.15", tmp_path) == [str(j) for j in jars]
    assert resolved_jars("1.0", tmp_path) == []  # another Hudi version has its own list
    jars[1].unlink()  # e.g. the Ivy cache was cleaned: resolve again instead
    assert resolved_jars("0.15", tmp_path) == []
    path.write_text("not json")
    assert resolved_jars("0.15", tmp_path) == []


def test_the_local_driver_jvm_gets_c1_only_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The flags reach the session builder (Spark passes them to the driver JVM it starts);
    an empty MYSTORE_SPARK_JAVA_OPTIONS sets none. Captured at getOrCreate: no JVM here."""
    from pyspark.sql import SparkSession

    from glue import local_spark as module

    seen: list[dict[str, str]] = []

    def capture(builder: SparkSession.Builder) -> None:
        seen.append(dict(builder._options))  # type: ignore[attr-defined]

    monkeypatch.setattr(SparkSession.Builder, "getOrCreate", capture)
    monkeypatch.setattr(module, "import_by_name", lambda session: None)
    monkeypatch.setattr(module, "keep_sdk_event_loop", lambda session: False)
    module.local_spark("raw2clean", "store_sale", "delta", "0.15", None)
    assert seen[-1]["spark.driver.extraJavaOptions"] == module.DEFAULT_JAVA_OPTIONS
    assert "-XX:TieredStopAtLevel=1" in module.DEFAULT_JAVA_OPTIONS
    # the catalog's empty directory goes to the temporary dir, not the user's checkout
    warehouse = Path(seen[-1]["spark.sql.warehouse.dir"])
    assert warehouse == Path(tempfile.gettempdir()) / f"mystore-spark-warehouse-{os.getuid()}"
    monkeypatch.setenv(module.JAVA_OPTIONS_ENV, "")
    module.local_spark("raw2clean", "store_sale", "delta", "0.15", None)
    assert "spark.driver.extraJavaOptions" not in seen[-1]


def _final_jvm_flags(options: list[str]) -> dict[str, str]:
    """The flags a real JVM settles on for these options (``-XX:+PrintFlagsFinal``)."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if java is None:
        pytest.skip("no java on PATH or in JAVA_HOME (Spark needs one too)")
    out = subprocess.run(
        [java, *options, "-XX:+PrintFlagsFinal", "-version"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    flags = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] == "=":
            flags[parts[1]] = parts[3]
    return flags


def test_the_c1_only_driver_keeps_a_code_cache_a_warm_driver_does_not_fill() -> None:
    """C1 only shrinks the JVM's default code cache to 48 MB; a warm driver filled that in
    about four nights, after which the JVM stopped compiling and runs were interpreted."""
    jvm_options = [o for o in DEFAULT_JAVA_OPTIONS.split() if o.startswith("-XX:")]
    assert "-XX:TieredStopAtLevel=1" in jvm_options
    flags = _final_jvm_flags(jvm_options)
    assert flags["TieredStopAtLevel"] == "1"
    assert int(flags["ReservedCodeCacheSize"]) >= 200 * 2**20, flags["ReservedCodeCacheSize"]


@pytest.mark.spark
def test_pyspark_finds_its_hot_classes_by_name_not_by_package_search(spark: SparkSession) -> None:
    """After the import, Py4J's view maps each short name straight to its class (no search of
    PySpark's package imports, each miss a search of every jar), and it is the same class."""
    from py4j import protocol

    from glue.local_spark import PY4J_SINGLE_IMPORTS, import_by_name

    jvm = spark.sparkContext._jvm
    assert jvm is not None
    client = jvm._gateway_client

    def single_imports() -> Any:
        # A raw call on the view: a JavaObject for it would delete the view when collected.
        command = f"{protocol.CALL_COMMAND_NAME}{jvm._id[1:]}\ngetSingleImportsMap\n"
        answer = client.send_command(command + protocol.END_COMMAND_PART)
        return protocol.get_return_value(answer, client, jvm._id[1:], "getSingleImportsMap")

    before = {
        name.rsplit(".", 1)[1]: getattr(jvm, name.rsplit(".", 1)[1])._fqn
        for name in PY4J_SINGLE_IMPORTS
    }
    import_by_name(spark)
    singles = single_imports()
    for name in PY4J_SINGLE_IMPORTS:
        short = name.rsplit(".", 1)[1]
        assert singles.get(short) == name
        assert getattr(jvm, short)._fqn == before[short] == name
    from pyspark.sql import functions as F

    assert [r.one for r in spark.range(2).select(F.lit(1).alias("one")).collect()] == [1, 1]


@pytest.mark.spark
def test_a_session_without_the_aws_sdk_keeps_no_event_loop(spark: SparkSession) -> None:
    """The tests' session has no Hudi (so no AWS SDK) on its classpath: nothing to hold, and
    no error. With Hudi, tests/local/glue_catalog/test_hudi_sync.py sees the loop kept."""
    from glue.local_spark import keep_sdk_event_loop

    assert keep_sdk_event_loop(spark) is False
    assert keep_sdk_event_loop(spark) is False
