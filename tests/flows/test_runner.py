"""The pipeline runner against the local stack: a failure names its step and stops the night.

Runs real flows (in this process, against the test Prefect server) on real statements and
real local Glue runs; only the pipelines are small ones made for the failure being tested.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import boto3
import pytest
from prefect import flow

from flows.pipeline import CheckStep, GlueStep, Pipeline, ProcedureStep
from flows.runner import NightFailedError, run_pipeline
from flows.runtime import Runtime
from flows.settings import Settings
from local.embedded import LOCAL_TARGET
from local.stack import LOCAL_REGION, LocalStack
from tests.conftest import TEST_ACCESS_KEY, TEST_SECRET_KEY, PrefectApi, data_api_client

NIGHT = date(2026, 11, 20)


def _runtime(stack: LocalStack) -> Runtime:
    glue = boto3.client(
        "glue",
        endpoint_url=stack.endpoint_url,
        region_name=LOCAL_REGION,
        aws_access_key_id=TEST_ACCESS_KEY,
        aws_secret_access_key=TEST_SECRET_KEY,
    )
    runtime = Runtime(
        settings=Settings(target="local"),
        redshift_data=data_api_client(stack.endpoint_url),
        glue=glue,
        target=LOCAL_TARGET,
    )
    for client in (runtime.redshift_data, runtime.glue):
        client.meta.events.register("before-call", runtime._count_call)
    return runtime


def _run(pipeline: Pipeline, runtime: Runtime, force: bool = False) -> dict[str, Any]:
    @flow(name="runner-test")
    def run() -> dict[str, Any]:
        return run_pipeline(pipeline, runtime, NIGHT, force=force).as_dict()

    return run()


def _statements_named(runtime: Runtime, prefix: str) -> list[str]:
    listed = runtime.redshift_data.list_statements(StatementName=prefix, Status="ALL")
    return [s["StatementName"] for s in listed["Statements"]]


def test_a_failing_procedure_fails_the_night_with_redshifts_message(
    migrated: LocalStack, prefect_settings: PrefectApi
) -> None:
    runtime = _runtime(migrated)
    pipeline = Pipeline(
        name="runner-test-proc",
        steps=(
            ProcedureStep(
                "load", "stg_mystore", "sp_validate_parameters", args=("BOGUS", None, None)
            ),
            CheckStep("after_load", "never runs", "select 1 where false", depends_on=("load",)),
        ),
    )
    with pytest.raises(NightFailedError) as caught:
        _run(pipeline, runtime)
    summary = caught.value.summary
    assert summary["error"].startswith("step load failed:")
    assert "load_type 'BOGUS' is not valid: expected HISTORY or INCREMENTAL" in summary["error"]
    statuses = {s["name"]: s["status"] for s in summary["steps"]}
    assert statuses == {"load": "failed", "after_load": "skipped"}
    assert _statements_named(runtime, "runner-test-proc/2026-11-20/after_load") == []


@pytest.mark.slow
def test_a_failing_clean_job_means_no_warehouse_load(
    migrated: LocalStack, prefect_settings: PrefectApi
) -> None:
    runtime = _runtime(migrated)
    pipeline = Pipeline(
        name="runner-test-glue",
        steps=(
            GlueStep(
                "clean_bad",
                job_name="raw2clean",
                arguments={"--table": "no_such_table", "--logical_date": "{logical_date}"},
            ),
            ProcedureStep(
                "load_warehouse",
                "stg_mystore",
                "sp_run_incremental_load",
                depends_on=("clean_bad",),
            ),
        ),
    )
    with pytest.raises(NightFailedError) as caught:
        _run(pipeline, runtime)
    summary = caught.value.summary
    assert summary["error"].startswith("step clean_bad failed:")
    assert "no_such_table" in summary["error"]
    assert [s["status"] for s in summary["steps"]] == ["failed", "skipped"]
    assert _statements_named(runtime, "runner-test-glue/2026-11-20/load_warehouse") == []
    assert runtime.api_calls["StartJobRun"] == 1
