"""Fail-fast checks on the Hudi a run gets, and where the local jars come from."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from glue.hudi_runtime import (
    GLUE_HUDI_RELEASES,
    HudiRuntimeError,
    check_options_match_glue,
    check_runtime,
    ivy_settings_xml,
    local_spark_conf,
    missing_artifacts,
    offline_message,
)


def test_glue_versions_and_the_hudi_they_provide() -> None:
    assert GLUE_HUDI_RELEASES == {"4.0": "0.12.1", "5.0": "0.15.0", "5.1": "1.0.2"}
    assert check_options_match_glue("5.0", "0.15") == "0.15.0"
    assert check_options_match_glue("5.1", "1.0") == "1.0.2"


@pytest.mark.parametrize(
    ("glue_version", "options", "message"),
    [
        (
            "5.1",
            "0.15",
            "--hudi_version 0.15 options do not match Glue 5.1, which provides Hudi 1.0.2; "
            "set --hudi_version 1.0.2 or change the job's Glue version",
        ),
        (
            "4.0",
            "0.15",
            "--hudi_version 0.15 options do not match Glue 4.0, which provides Hudi 0.12.1; "
            "set --hudi_version 0.12.1 or change the job's Glue version",
        ),
        ("3.0", "0.15", "unsupported --glue_version '3.0'; expected one of: 4.0, 5.0, 5.1"),
    ],
)
def test_options_for_another_hudi_than_glue_provides_fail(
    glue_version: str, options: str, message: str
) -> None:
    with pytest.raises(HudiRuntimeError) as info:
        check_options_match_glue(glue_version, options)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_local_conf_resolves_both_jars_from_one_repository(tmp_path: Path) -> None:
    conf = local_spark_conf("0.15", tmp_path, "https://mirror.example/maven2/")
    assert conf == {
        "spark.jars.packages": (
            "org.apache.hudi:hudi-spark3.5-bundle_2.12:0.15.0,org.apache.hudi:hudi-aws:0.15.0"
        ),
        "spark.jars.excludes": (
            "org.apache.hudi:hudi-common,org.apache.hudi:hudi-hive-sync,"
            "org.apache.hudi:hudi-client-common"
        ),
        "spark.jars.ivy": str(tmp_path),
        "spark.jars.ivySettings": str(tmp_path / "mystore-ivysettings.xml"),
    }
    assert (tmp_path / "mystore-ivysettings.xml").read_text() == ivy_settings_xml(
        "https://mirror.example/maven2/"
    )
    assert 'root="https://mirror.example/maven2/"' in ivy_settings_xml(
        "https://mirror.example/maven2/"
    )


def test_missing_artifacts_follow_the_ivy_cache(tmp_path: Path) -> None:
    assert [a.artifact for a in missing_artifacts("0.15", tmp_path)] == [
        "hudi-spark3.5-bundle_2.12",
        "hudi-aws",
    ]
    cached = tmp_path / "cache/org.apache.hudi/hudi-spark3.5-bundle_2.12/jars"
    cached.mkdir(parents=True)
    (cached / "hudi-spark3.5-bundle_2.12-0.15.0.jar").write_bytes(b"jar")
    assert [a.artifact for a in missing_artifacts("0.15", tmp_path)] == ["hudi-aws"]


def test_offline_message_names_the_fix_and_the_fallback(tmp_path: Path) -> None:
    message = offline_message("0.15", "https://repo1.maven.org/maven2/", tmp_path, "no route")
    assert "connect this machine to the internet once" in message
    assert "MYSTORE_MAVEN_REPOSITORY" in message
    assert message.endswith("set MYSTORE_LOCAL_TABLE_FORMAT=delta (the local Delta Lake fallback).")


@pytest.mark.slow
def test_a_session_without_hudi_fails_fast(spark: SparkSession) -> None:
    """The shared test session has no Hudi jars: what a Glue job without --datalake-formats sees."""
    with pytest.raises(HudiRuntimeError) as info:
        check_runtime(spark, "0.15", None)
    assert str(info.value).startswith(
        "Hudi is not enabled in this Spark session (class org.apache.hudi.DefaultSource "
        "not found): on Glue, add the job parameter '--datalake-formats hudi'"
    )
    with pytest.raises(HudiRuntimeError) as mismatch:
        check_runtime(spark, "0.15", "5.1")
    assert "do not match Glue 5.1" in str(mismatch.value)
