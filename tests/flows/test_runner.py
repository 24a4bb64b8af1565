"""The pipeline runner against the local stack: a failure names its step and stops the night.

Runs real flows (in this process, against the test Prefect server) on real statements and
real local Glue runs; only the pipelines are small ones made for the failure being tested.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import boto3
import pytest
from prefect import flow
from prefect_aws import AwsCredentials
from prefect_aws.client_parameters import AwsClientParameters

from flows.pipeline import CheckStep, GlueStep, Pipeline, ProcedureStep, history_pipeline
from flows.runner import CheckFailedError, NightFailedError, run_check, run_pipeline
from flows.runtime import Runtime
from flows.settings import Settings
from local.stack import LOCAL_REGION, LocalStack
from tasks.redshift_data import RedshiftTarget
from tests.conftest import TEST_ACCESS_KEY, TEST_SECRET_KEY, PrefectApi
from tests.sql.staging import Warehouse

NIGHT = date(2026, 11, 20)


def _runtime(stack: LocalStack) -> Runtime:
    """A runtime on the local stack, built as a user would: a target block whose
    credentials block points at the endpoint, and a Glue client."""
    credentials = AwsCredentials(
        aws_access_key_id=TEST_ACCESS_KEY,
        aws_secret_access_key=TEST_SECRET_KEY,
        region_name=LOCAL_REGION,
        aws_client_parameters=AwsClientParameters(endpoint_url=stack.endpoint_url),
    )
    target = RedshiftTarget(
        database="dev", cluster_identifier="local", db_user="awsuser", aws_credentials=credentials
    )
    glue = boto3.client(
        "glue",
        endpoint_url=stack.endpoint_url,
        region_name=LOCAL_REGION,
        aws_access_key_id=TEST_ACCESS_KEY,
        aws_secret_access_key=TEST_SECRET_KEY,
    )
    return Runtime.with_clients(Settings(target="local"), target, glue)


def _run(
    pipeline: Pipeline, runtime: Runtime, force: bool = False, night: date = NIGHT
) -> dict[str, Any]:
    @flow(name="runner-test")
    def run() -> dict[str, Any]:
        return run_pipeline(pipeline, runtime, night, force=force).as_dict()

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


@pytest.mark.slow
def test_a_day_without_raw_data_fails_unless_the_deployment_allows_no_input(
    migrated: LocalStack, prefect_settings: PrefectApi
) -> None:
    """The real clean job on a date with no raw partition: by default the night fails naming
    it; with MYSTORE_ALLOW_EMPTY_INPUT (the setting) it passes as "no input"."""
    empty_day = date(2020, 2, 29)
    assert not (migrated.data_dir / "raw" / "store_sale" / "ingest_date=2020-02-29").exists()
    pipeline = Pipeline(
        name="runner-test-empty",
        steps=(
            GlueStep(
                "clean_store_sale",
                job_name="raw2clean",
                arguments={"--table": "store_sale", "--logical_date": "{logical_date}"},
            ),
        ),
    )
    strict = _runtime(migrated)
    strict.settings = Settings(target="local", local_data_dir=migrated.data_dir)
    with pytest.raises(NightFailedError) as caught:
        _run(pipeline, strict, force=True, night=empty_day)
    assert "no raw partition for 2020-02-29" in caught.value.summary["error"]
    assert caught.value.summary["verdict"] == "FAILED"

    allowing = _runtime(migrated)
    allowing.settings = Settings(
        target="local", local_data_dir=migrated.data_dir, allow_empty_input=True
    )
    summary = _run(pipeline, allowing, force=True, night=empty_day)
    assert summary["verdict"] == "succeeded (no input)"
    assert summary["no_input"] == ["clean_store_sale"]
    (step,) = summary["steps"]
    assert (step["status"], step["rows"]) == ("no input", 0)
    assert "no raw partition for 2020-02-29 (allowed: no input)" in step["detail"]

    # Only the report tells that day from one that loaded rows: a rerun (reattaching to the
    # run) that cannot read it stops the night instead of reporting a plain success.
    report = migrated.data_dir / "reports" / "2020-02-29" / "clean_store_sale.json"
    report.unlink()
    with pytest.raises(NightFailedError) as unread:
        _run(pipeline, allowing, night=empty_day)
    error = unread.value.summary["error"]
    assert "clean_store_sale: Glue run" in error and "SUCCEEDED, but report" in error
    assert str(report) in error and "MYSTORE_ALLOW_EMPTY_INPUT=true" in error
    assert unread.value.summary["verdict"] == "FAILED"


def test_the_history_pipeline_backfills_a_range_once(
    wh: Warehouse, migrated: LocalStack, prefect_settings: PrefectApi
) -> None:
    """Staged from the clean table, loaded by sp_run_history_load, checked; a rerun of the
    same range reattaches instead of loading again."""
    day = datetime(2026, 10, 1, 12)
    wh.customers({"customer_id": "C1", "at": day - timedelta(days=30)})
    wh.addresses({"address_id": "A1", "at": day - timedelta(days=30)})
    wh.sales(
        {"ticket_id": 1, "at": day},
        {"ticket_id": 2, "at": day + timedelta(days=1)},
        {"ticket_id": 3, "at": day + timedelta(days=5)},  # outside the range
    )
    runtime = _runtime(migrated)
    start = date(2026, 10, 1)
    pipeline = history_pipeline(start, date(2026, 10, 2))
    summary = _run(pipeline, runtime, night=start)
    assert [s["status"] for s in summary["steps"]] == ["succeeded"] * 4
    assert sorted(wh.facts()) == [(1, 1), (2, 1)]
    assert (summary["warehouse"]["sales loaded"], summary["warehouse"]["sales replaced"]) == (2, 0)
    again = _run(pipeline, runtime, night=start)
    assert (again["warehouse"]["sales loaded"], again["warehouse"]["sales replaced"]) == (0, 0)
    # the checks too: their statements are the first run's, read again, not run again
    assert [s["status"] for s in again["steps"]] == ["reattached"] * 4
    named = _statements_named(runtime, "mystore-history/2026-10-01/load_history_to_20261002/")
    assert len(named) == 1  # the second run reattached to the first load
    # Forced, the backfill loads the range again: the same two sales, written in place,
    # which the summary says instead of a run that seems to have loaded nothing.
    forced = _run(pipeline, runtime, force=True, night=start)
    assert (forced["warehouse"]["sales loaded"], forced["warehouse"]["sales replaced"]) == (0, 2)
    assert sorted(wh.facts()) == [(1, 1), (2, 1)]


def test_a_history_range_with_no_sales_fails_the_backfill(
    wh: Warehouse, migrated: LocalStack, prefect_settings: PrefectApi
) -> None:
    """``python -m flows.history`` on a range the clean table has no sales for: the load
    fails with the warehouse's reason and the checks never run, instead of a "succeeded"
    that loaded nothing."""
    start = date(2001, 1, 1)
    pipeline = history_pipeline(start, date(2001, 1, 2))
    with pytest.raises(NightFailedError) as caught:
        _run(pipeline, _runtime(migrated), night=start)
    summary = caught.value.summary
    assert summary["verdict"] == "FAILED"
    assert summary["error"].startswith("step load_history_to_20010102 failed:")
    assert (
        "HISTORY load of 2001-01-01 to 2001-01-02: stg_mystore.store_sale holds no sales"
        in summary["error"]
    )
    assert [s["status"] for s in summary["steps"]] == ["succeeded", "failed", "skipped", "skipped"]
    assert wh.facts() == {}


def test_a_forced_check_runs_again_instead_of_reattaching(
    migrated: LocalStack, prefect_settings: PrefectApi
) -> None:
    runtime = _runtime(migrated)
    check = CheckStep("check_forced", "nothing offends", "select 1 where false")
    pipeline = f"runner-test-{uuid.uuid4().hex[:8]}"
    states = [
        run_check(check, pipeline, runtime, NIGHT, force, return_state=True)
        for force in (False, False, True)  # the second reattaches; forced: a new attempt
    ]
    assert [(s.name, s.result().reattached) for s in states] == [
        ("Completed", False),
        ("Reattached", True),
        ("Completed", False),
    ]
    names = _statements_named(runtime, f"{pipeline}/2026-11-20/check_forced/")
    assert sorted(names) == [
        f"{pipeline}/2026-11-20/check_forced/attempt-1",
        f"{pipeline}/2026-11-20/check_forced/attempt-2",
    ]


def test_a_check_with_offending_rows_fails_and_quotes_them(
    migrated: LocalStack, prefect_settings: PrefectApi
) -> None:
    runtime = _runtime(migrated)
    check = CheckStep("check_offends", "one row offends", "select 7 as customer_id")
    with pytest.raises(CheckFailedError, match=r'found 1 offending row\(s\): \{"customer_id": 7\}'):
        run_check(check, f"runner-test-{uuid.uuid4().hex[:8]}", runtime, NIGHT, False)
