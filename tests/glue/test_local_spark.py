"""The local session: the remembered Hudi jar list (used only when it names jars that are
all still there) and the local driver JVM's flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glue.local_spark import resolved_jars, resolved_jars_path


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
    module.local_spark("raw2clean", "store_sale", "delta", "0.15", None)
    assert seen[-1]["spark.driver.extraJavaOptions"] == module.DEFAULT_JAVA_OPTIONS
    assert "-XX:TieredStopAtLevel=1" in module.DEFAULT_JAVA_OPTIONS
    monkeypatch.setenv(module.JAVA_OPTIONS_ENV, "")
    module.local_spark("raw2clean", "store_sale", "delta", "0.15", None)
    assert "spark.driver.extraJavaOptions" not in seen[-1]
