"""The stop hook cancels a night's running statement and stops its running Glue run, found
by name alone (as a runner's hook process must), and leaves other nights alone."""

from __future__ import annotations

import time
from datetime import date

import boto3
from botocore.stub import Stubber
from prefect_aws import AwsCredentials

from flows.hooks import stop_night
from flows.pipeline import GlueStep, Pipeline, ProcedureStep
from flows.runtime import Runtime
from flows.settings import Settings
from local.embedded import LOCAL_TARGET
from local.stack import LocalStack
from tasks.glue import RUN_KEY_ARGUMENT
from tasks.redshift_data import RedshiftTarget
from tests.flows.test_runner import _runtime

NIGHT = date(2026, 11, 21)
PIPELINE = Pipeline(
    name="hook-test",
    steps=(
        GlueStep("clean_store_sale", job_name="raw2clean", arguments={"--table": "store_sale"}),
        ProcedureStep(
            "load", "stg_mystore", "sp_run_incremental_load", depends_on=("clean_store_sale",)
        ),
    ),
)


def _wait_for(predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


def test_stop_night_cancels_statements_and_stops_glue_runs(migrated: LocalStack) -> None:
    runtime = _runtime(migrated)
    data = runtime.redshift_data

    def submit(name: str) -> str:
        return data.execute_statement(
            **LOCAL_TARGET.request_fields(), Sql="select pg_sleep(60)", StatementName=name
        )["Id"]

    ours = submit("hook-test/2026-11-21/load/attempt-1")
    other_night = submit("hook-test/2026-11-22/load/attempt-1")
    run_id = runtime.glue.start_job_run(
        JobName="raw2clean",
        Arguments={
            RUN_KEY_ARGUMENT: "hook-test/2026-11-21/clean_store_sale",
            "--table": "store_sale",
            "--logical_date": "2026-11-21",
        },
    )["JobRunId"]
    _wait_for(lambda: data.describe_statement(Id=ours)["Status"] == "STARTED")

    stop_night(runtime, PIPELINE, NIGHT, reason="test")

    _wait_for(lambda: data.describe_statement(Id=ours)["Status"] == "ABORTED")
    _wait_for(
        lambda: (
            runtime.glue.get_job_run(JobName="raw2clean", RunId=run_id)["JobRun"]["JobRunState"]
            in ("STOPPED", "SUCCEEDED", "FAILED")
        )
    )
    state = runtime.glue.get_job_run(JobName="raw2clean", RunId=run_id)["JobRun"]["JobRunState"]
    assert state == "STOPPED"
    assert data.describe_statement(Id=other_night)["Status"] in ("STARTED", "PICKED", "SUBMITTED")
    data.cancel_statement(Id=other_night)


def test_the_stop_path_leaves_other_nights_glue_runs_running() -> None:
    """Found by run key alone: only this night's active runs are stopped (fast, stubbed)."""
    credentials = AwsCredentials(aws_access_key_id="AKIDTEST", aws_secret_access_key="x")
    target = RedshiftTarget(
        database="dev",
        workgroup_name="mystore-wg",
        region_name="eu-west-1",
        aws_credentials=credentials,
    )
    glue = boto3.client(
        "glue", region_name="eu-west-1", aws_access_key_id="AKIDTEST", aws_secret_access_key="x"
    )
    runtime = Runtime.with_clients(Settings(target="local"), target, glue)
    stopped: list[list[str]] = []
    glue.meta.events.register(
        "before-parameter-build.glue.BatchStopJobRun",
        lambda params, **_: stopped.append(params["JobRunIds"]),
    )

    def run(run_id: str, key: str, state: str = "RUNNING") -> dict[str, object]:
        return {"Id": run_id, "JobRunState": state, "Arguments": {RUN_KEY_ARGUMENT: key}}

    with Stubber(target.data_api_client()) as data_stub, Stubber(glue) as glue_stub:
        data_stub.add_response("list_statements", {"Statements": []})
        glue_stub.add_response(
            "get_job_runs",
            {
                "JobRuns": [
                    run("jr_ours", "hook-test/2026-11-21/clean_store_sale"),
                    run("jr_other_night", "hook-test/2026-11-22/clean_store_sale"),
                    run("jr_done", "hook-test/2026-11-21/clean_store_sale", "SUCCEEDED"),
                ]
            },
        )
        glue_stub.add_response("batch_stop_job_run", {"SuccessfulSubmissions": [], "Errors": []})
        stop_night(runtime, PIPELINE, NIGHT, reason="test")
    assert stopped == [["jr_ours"]]
