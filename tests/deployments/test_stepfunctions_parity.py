"""Parity by execution: the same scenario through the Prefect flow and the exported machine.

Each scenario seeds the same clean data on a reset warehouse, runs the flow (in process,
against the test Prefect server), snapshots the warehouse, resets and reseeds, runs the
exported machine in moto's Step Functions interpreter (its Data API calls go over HTTP to
the local endpoint, so the real procedures run on the local warehouse), and compares the
warehouse state and how the failure was classified.

Glue: both orchestrators use moto's Glue backend. The local endpoint's Glue runs real
Spark (about a minute per table), which would make 7 scenarios x 2 orchestrators x 3
tables take over half an hour on 2 shared cores, and what is compared here is the
orchestration around a run (start, wait, a failed run stops the night, a second night
reuses the run), not the clean job (tests/glue covers that). The clean tables are seeded
directly, as a successful clean run would have left them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import boto3
import pytest
from prefect import flow
from prefect_aws import AwsCredentials
from prefect_aws.client_parameters import AwsClientParameters

from deployments.sfn_config import ExportConfig
from deployments.stepfunctions import export_definition
from flows.pipeline import CheckStep, Pipeline, ProcedureStep, nightly_pipeline
from flows.runner import NightFailedError, run_pipeline
from flows.runtime import Runtime
from flows.settings import Settings
from local.embedded import LOCAL_TARGET
from local.stack import LOCAL_REGION, LocalStack
from tasks.jobs import RunKey
from tasks.redshift_data import RedshiftTarget
from tests.conftest import TEST_ACCESS_KEY, TEST_SECRET_KEY, PrefectApi, data_api_client
from tests.deployments.sfn_moto import (
    GLUE_FAILING_JOB,
    MOTO_ACCESS_KEY,
    REGION,
    moto_sfn,
    refused_machine_calls,
    run_execution,
)
from tests.sql.staging import RESET, START, Warehouse, state_of

pytestmark = pytest.mark.slow  # each scenario runs two orchestrators on the warehouse

CONFIG = ExportConfig(target=LOCAL_TARGET)
DAY = datetime(2026, 10, 1, 12)


def seed(wh: Warehouse) -> None:
    wh.customers(
        {"customer_id": "C1", "at": DAY - timedelta(days=30)},
        {"customer_id": "C2", "at": DAY - timedelta(days=20), "gender": "F"},
    )
    wh.addresses({"address_id": "A1", "at": DAY - timedelta(days=30)})
    wh.sales(
        {"ticket_id": 1, "at": DAY},
        {"ticket_id": 2, "at": DAY + timedelta(hours=1), "customer_id": "C2"},
        {"ticket_id": 3, "at": DAY + timedelta(hours=2)},
    )


def fresh(wh: Warehouse, pg_conn: Any) -> None:
    pg_conn.execute(RESET)
    wh.etl_clock = START  # the same etl_processing_datetime values, so the same marks
    seed(wh)


@pytest.fixture
def moto(migrated: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    migrated.endpoint.faults.clear()
    with moto_sfn(migrated.endpoint_url, monkeypatch) as sfn:
        yield sfn
    migrated.endpoint.faults.clear()


# Only how long a refused submit pauses between tries (the attempt counts are unchanged):
# the flow's first pause, and no retries inside botocore, whose own back-off (up to 1+2+4 s
# per try) cannot be shortened. The machine's SDK calls have none either, so each side
# makes exactly its budget of ExecuteStatement calls.
SUBMIT_RETRY_SECONDS = 0.05
NO_BOTOCORE_RETRIES = {"retries": {"mode": "standard", "total_max_attempts": 1}}


def flow_runtime(stack: LocalStack) -> Runtime:
    """The flow's runtime as a user builds it: a target block whose credentials block points
    at the local endpoint (signing as the tests' key), and moto's Glue backend."""
    credentials = AwsCredentials(
        aws_access_key_id=TEST_ACCESS_KEY,
        aws_secret_access_key=TEST_SECRET_KEY,
        region_name=LOCAL_REGION,
        aws_client_parameters=AwsClientParameters(
            endpoint_url=stack.endpoint_url, config=NO_BOTOCORE_RETRIES
        ),
    )
    target = RedshiftTarget(
        database="dev", cluster_identifier="local", db_user="awsuser", aws_credentials=credentials
    )
    glue = boto3.client("glue", region_name=REGION)  # moto's Glue backend (mock_aws is active)
    settings = Settings(target="local", submit_retry_seconds=SUBMIT_RETRY_SECONDS)
    return Runtime.with_clients(settings, target, glue)


def run_flow(pipeline: Pipeline, stack: LocalStack, night: date) -> dict[str, Any]:
    """The flow's outcome: status, the failed step and its error text."""

    @flow(name="parity-flow")
    def night_flow() -> dict[str, Any]:
        return run_pipeline(pipeline, flow_runtime(stack), night, force=False).as_dict()

    try:
        summary = night_flow()
    except NightFailedError as exc:
        failed = [s for s in exc.summary["steps"] if s["status"] == "failed"]
        return {"status": "FAILED", "step": failed[0]["name"], "error": exc.summary["error"]}
    return {"status": "SUCCEEDED", "steps": [s["status"] for s in summary["steps"]]}


def run_machine(sfn: Any, pipeline: Pipeline, night: date, name: str = "run-1") -> dict[str, Any]:
    described = run_execution(
        sfn, export_definition(pipeline, CONFIG), pipeline.name, {"logical_date": night.isoformat()}
    )
    return described


def machine_statements(stack: LocalStack, prefix: str) -> list[dict[str, Any]]:
    client = data_api_client(stack.endpoint_url, MOTO_ACCESS_KEY)
    listed = client.list_statements(StatementName=prefix, Status="ALL")["Statements"]
    return sorted(listed, key=lambda s: s["StatementName"])


def test_a_successful_night_leaves_the_same_warehouse(
    moto: Any, wh: Warehouse, pg_conn: Any, migrated: LocalStack, prefect_settings: PrefectApi
) -> None:
    pipeline = nightly_pipeline()
    fresh(wh, pg_conn)
    by_flow = run_flow(pipeline, migrated, date(2026, 10, 2))
    flow_state = state_of(wh)
    fresh(wh, pg_conn)
    night = date(2026, 10, 12)
    by_machine = run_machine(moto, pipeline, night)
    assert by_flow["status"] == "SUCCEEDED", by_flow
    assert by_machine["status"] == "SUCCEEDED", by_machine
    assert state_of(wh) == flow_state
    assert flow_state["sale_fact"][0] == 3
    # the machine names its statements exactly as the flow's RunKey does
    names = [s["StatementName"] for s in machine_statements(migrated, f"mystore-nightly/{night}/")]
    expected = sorted(
        RunKey("mystore-nightly", night, step.name, 1).statement_name
        for step in pipeline.steps
        if step.kind != "glue"
    )
    assert names == expected


def _failed_procedure_pipeline() -> Pipeline:
    return Pipeline(
        name="parity-fail",
        steps=(
            ProcedureStep(
                "load", "stg_mystore", "sp_validate_parameters", args=("BOGUS", None, None)
            ),
            CheckStep("after_load", "never runs", "select 1 where false", depends_on=("load",)),
        ),
    )


def test_a_failing_procedure_fails_both_with_redshifts_message(
    moto: Any, wh: Warehouse, pg_conn: Any, migrated: LocalStack, prefect_settings: PrefectApi
) -> None:
    pipeline = _failed_procedure_pipeline()
    by_flow = run_flow(pipeline, migrated, date(2026, 10, 3))
    by_machine = run_machine(moto, pipeline, date(2026, 10, 13))
    message = "load_type 'BOGUS' is not valid: expected HISTORY or INCREMENTAL"
    assert by_flow["status"] == "FAILED" and by_flow["step"] == "load"
    assert message in by_flow["error"]
    assert by_machine["status"] == "FAILED"
    assert by_machine["error"] == "Redshift.StatementFailed"
    assert message in by_machine["cause"]
    assert by_machine["entered"][-1] == "load: FAILED"
    # later steps never ran: no statement of after_load, one attempt of load
    assert machine_statements(migrated, "parity-fail/2026-10-13/after_load/") == []
    assert len(machine_statements(migrated, "parity-fail/2026-10-13/load/")) == 1


class _Canceller(threading.Thread):
    """Cancel the statement named ``prefix...`` from outside once it runs (as an operator
    or a WLM rule would), riding out the endpoint's transient errors under load; records
    what it did so a test that fails says why."""

    def __init__(self, endpoint: str, access_key: str, prefix: str) -> None:
        super().__init__(daemon=True)
        self.client = data_api_client(endpoint, access_key)
        self.prefix = prefix
        self.cancelled: str | None = None
        self.errors: list[str] = []

    def run(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                listed = self.client.list_statements(StatementName=self.prefix, Status="ALL")
                running = [s for s in listed["Statements"] if s["Status"] in ("PICKED", "STARTED")]
                if running:
                    self.client.cancel_statement(Id=running[0]["Id"])
                    self.cancelled = running[0]["Id"]
                    return
            except Exception as exc:  # a transient error: look again
                self.errors.append(repr(exc))
            time.sleep(0.1)

    def finish(self) -> None:
        self.join()
        assert self.cancelled, f"never cancelled {self.prefix}: errors {self.errors[-3:]}"


def _cancel_when_started(endpoint: str, access_key: str, prefix: str) -> _Canceller:
    canceller = _Canceller(endpoint, access_key, prefix)
    canceller.start()
    return canceller


def _slow_pipeline() -> Pipeline:
    return Pipeline(
        name="parity-abort",
        steps=(
            CheckStep("slow", "sleeps until cancelled", "select pg_sleep(30)"),
            CheckStep("after", "never runs", "select 1 where false", depends_on=("slow",)),
        ),
    )


def test_a_statement_aborted_from_outside_fails_both_without_a_loop(
    moto: Any, migrated: LocalStack, prefect_settings: PrefectApi
) -> None:
    from tests.conftest import TEST_ACCESS_KEY

    pipeline = _slow_pipeline()
    canceller = _cancel_when_started(
        migrated.endpoint_url, TEST_ACCESS_KEY, "parity-abort/2026-10-04/slow/"
    )
    by_flow = run_flow(pipeline, migrated, date(2026, 10, 4))
    canceller.finish()
    canceller = _cancel_when_started(
        migrated.endpoint_url, MOTO_ACCESS_KEY, "parity-abort/2026-10-14/slow/"
    )
    started = time.monotonic()
    by_machine = run_machine(moto, pipeline, date(2026, 10, 14))
    canceller.finish()
    assert by_flow["status"] == "FAILED" and by_flow["step"] == "slow"
    assert "ABORTED" in by_flow["error"]
    assert by_machine["status"] == "FAILED"
    assert by_machine["error"] == "Redshift.StatementAborted"
    assert by_machine["entered"][-1] == "slow: ABORTED"
    assert time.monotonic() - started < 25  # ended on ABORTED, not at the 30 s sleep's end
    assert len(machine_statements(migrated, "parity-abort/2026-10-14/slow/")) == 1
    assert machine_statements(migrated, "parity-abort/2026-10-14/after/") == []


def _load_only() -> Pipeline:
    from flows.pipeline import RetryPolicy

    return Pipeline(
        name="parity-throttle",
        steps=(
            ProcedureStep(
                "load",
                "stg_mystore",
                "sp_run_incremental_load",
                retry=RetryPolicy(attempts=1, delay_seconds=1),
            ),
        ),
    )


def test_throttled_submits_that_then_succeed_load_once(
    moto: Any, wh: Warehouse, pg_conn: Any, migrated: LocalStack, prefect_settings: PrefectApi
) -> None:
    pipeline = _load_only()
    fresh(wh, pg_conn)
    migrated.endpoint.faults.throttle("ExecuteStatement", 2)
    by_flow = run_flow(pipeline, migrated, date(2026, 10, 5))
    flow_state = state_of(wh)
    fresh(wh, pg_conn)
    migrated.endpoint.faults.throttle("ExecuteStatement", 2)
    by_machine = run_machine(moto, pipeline, date(2026, 10, 15))
    assert by_flow["status"] == "SUCCEEDED", by_flow
    assert by_machine["status"] == "SUCCEEDED"
    assert state_of(wh) == flow_state
    assert flow_state["sale_fact"][0] == 3
    throttled = [
        e["taskFailedEventDetails"] for e in by_machine["events"] if e["type"] == "TaskFailed"
    ]
    # unmodeled in redshift-data: the SDK's base name, the service's message in the cause
    assert [t["error"] for t in throttled] == ["RedshiftData.RedshiftDataException"] * 2
    assert all("Rate exceeded" in t["cause"] for t in throttled)
    assert len(machine_statements(migrated, "parity-throttle/2026-10-15/load/")) == 1


def test_throttling_that_never_ends_fails_both_after_the_retry_budget(
    moto: Any, wh: Warehouse, pg_conn: Any, migrated: LocalStack, prefect_settings: PrefectApi
) -> None:
    pipeline = _load_only()
    fresh(wh, pg_conn)
    before = state_of(wh)
    migrated.endpoint.faults.throttle("ExecuteStatement", 10**6)
    by_flow = run_flow(pipeline, migrated, date(2026, 10, 6))
    # 5 tries of the warehouse-counts read (informative, it fails quietly) + 5 of the load
    refused_flow_calls = migrated.endpoint.faults.fired["throttle"]
    by_machine = run_machine(moto, pipeline, date(2026, 10, 16))
    migrated.endpoint.faults.clear()
    assert by_flow["status"] == "FAILED" and "still refused after 5 tries" in by_flow["error"]
    assert refused_flow_calls == 10
    assert by_machine["status"] == "FAILED"
    assert by_machine["error"] == "RedshiftData.RedshiftDataException"
    assert "Rate exceeded" in by_machine["cause"]
    tries = [e for e in by_machine["events"] if e["type"] == "TaskFailed"]
    assert len(tries) == 5  # MaxAttempts 4 = the flow's 1 attempt x 5 submit tries
    assert state_of(wh) == before
    assert machine_statements(migrated, "parity-throttle/2026-10-16/load/") == []


def test_a_check_with_thousands_of_offending_rows_fails_both_with_the_count(
    moto: Any, migrated: LocalStack, prefect_settings: PrefectApi
) -> None:
    """A first result page of ~340 KB: fetched into the state, it passed the 256 KiB limit
    (States.DataLimitExceeded, moto enforces it too); the machine counts from ResultRows."""
    rows = "with recursive n(i) as (select 1 union all select i + 1 from n where i < 2000)"
    pipeline = Pipeline(
        "parity-rows",
        (CheckStep("wide", "many rows", f"{rows} select i, repeat('x', 300) from n"),),
    )
    by_flow = run_flow(pipeline, migrated, date(2026, 10, 9))
    by_machine = run_machine(moto, pipeline, date(2026, 10, 19))
    assert by_flow["status"] == "FAILED" and "found 2000 offending row(s)" in by_flow["error"]
    assert by_machine["status"] == "FAILED", by_machine
    assert by_machine["error"] == "Check.OffendingRows"
    assert "check wide (many rows) found 2000 offending row(s)" in by_machine["cause"]


def test_a_describe_answered_rate_exceeded_is_retried_without_cancelling(
    moto: Any, migrated: LocalStack
) -> None:
    """Serverless's throttle while polling (the flow: tasks.jobs.is_throttling) is retried
    like the other throttles; the running statement is neither cancelled nor resubmitted."""
    pipeline = Pipeline(
        "parity-rate", (CheckStep("c", "passes", "select pg_sleep(1) where false"),)
    )
    with refused_machine_calls("DescribeStatement", "ValidationException", "Rate exceeded", 2):
        done = run_machine(moto, pipeline, date(2026, 10, 25))
    assert done["status"] == "SUCCEEDED", done
    refused = [e["taskFailedEventDetails"] for e in done["events"] if e["type"] == "TaskFailed"]
    assert [r["error"] for r in refused] == ["RedshiftData.ValidationException"] * 2
    (statement,) = machine_statements(migrated, "parity-rate/2026-10-25/c/")
    assert statement["Status"] == "FINISHED"


def test_a_failed_glue_run_means_no_warehouse_load_in_both(
    moto: Any, wh: Warehouse, pg_conn: Any, migrated: LocalStack, prefect_settings: PrefectApi
) -> None:
    pipeline = nightly_pipeline(GLUE_FAILING_JOB)
    fresh(wh, pg_conn)
    before = state_of(wh)
    by_flow = run_flow(pipeline, migrated, date(2026, 10, 7))
    by_machine = run_machine(moto, pipeline, date(2026, 10, 17))
    assert by_flow["status"] == "FAILED" and by_flow["step"].startswith("clean_")
    assert by_machine["status"] == "FAILED"
    assert by_machine["error"] == "Pipeline.StepFailed"
    # the Glue JobRun, as the .sync task reports it
    assert by_machine["cause"].startswith("step clean_")
    assert (
        "States.TaskFailed" in by_machine["cause"]
        and '"JobRunState": "FAILED"' in by_machine["cause"]
    )
    assert state_of(wh) == before
    assert machine_statements(migrated, "mystore-nightly/2026-10-17/") == []


def test_a_second_execution_for_the_same_night_reattaches(
    moto: Any, wh: Warehouse, pg_conn: Any, migrated: LocalStack, prefect_settings: PrefectApi
) -> None:
    pipeline = nightly_pipeline()
    fresh(wh, pg_conn)
    first = run_flow(pipeline, migrated, date(2026, 10, 8))
    again = run_flow(pipeline, migrated, date(2026, 10, 8))
    flow_state = state_of(wh)
    fresh(wh, pg_conn)
    night = date(2026, 10, 18)
    one = run_machine(moto, pipeline, night)
    two = run_machine(moto, pipeline, night)
    assert first["status"] == again["status"] == "SUCCEEDED"
    assert again["steps"][:4] == ["reattached"] * 4
    assert one["status"] == two["status"] == "SUCCEEDED"
    assert state_of(wh) == flow_state
    load = machine_statements(migrated, f"mystore-nightly/{night}/load_warehouse/")
    assert len(load) == 1  # the second execution reattached to the FINISHED load
    assert "load_warehouse: submit" not in two["entered"]
    runs = boto3.client("glue", region_name=REGION).get_job_runs(JobName="raw2clean")["JobRuns"]
    keys = [r["Arguments"]["--orchestrator_run_key"] for r in runs]
    assert sum(k.startswith(f"mystore-nightly/{night}/") for k in keys) == 3  # not 6


def test_the_canceller_cancels_what_a_stopped_execution_left_running(
    moto: Any, migrated: LocalStack
) -> None:
    """The cancel rule's target, given the event of an execution started by the schedule
    (so it must find the night from scheduled_time), cancels that night's running
    statement and nothing of another night."""
    import json

    from deployments.eventbridge import canceller_definition

    client = data_api_client(migrated.endpoint_url, MOTO_ACCESS_KEY)
    tonight = client.execute_statement(
        ClusterIdentifier="local",
        Database="dev",
        DbUser="awsuser",
        Sql="select pg_sleep(30)",
        StatementName="mystore-nightly/2026-10-21/load_warehouse/attempt-1",
    )["Id"]
    other = client.execute_statement(
        ClusterIdentifier="local",
        Database="dev",
        DbUser="awsuser",
        Sql="select pg_sleep(3)",
        StatementName="mystore-nightly/2026-10-20/load_warehouse/attempt-1",
    )["Id"]
    event = {
        "detail-type": "Step Functions Execution Status Change",
        "detail": {
            "status": "ABORTED",
            "input": json.dumps({"scheduled_time": "2026-10-22T03:00:00Z"}),
        },
    }
    done = run_execution(
        moto,
        canceller_definition("mystore-nightly", {"ClusterIdentifier": "local", "Database": "dev"}),
        "canceller",
        event,
    )
    assert done["status"] == "SUCCEEDED", done
    deadline = time.monotonic() + 10
    while client.describe_statement(Id=tonight)["Status"] != "ABORTED":
        assert time.monotonic() < deadline, "tonight's statement was not cancelled"
        time.sleep(0.1)
    assert client.describe_statement(Id=other)["Status"] != "ABORTED"


def test_a_scheduled_start_loads_the_day_before(moto: Any, migrated: LocalStack) -> None:
    pipeline = Pipeline("parity-schedule", (CheckStep("c", "passes", "select 1 where false"),))
    done = run_execution(
        moto,
        export_definition(pipeline, CONFIG),
        pipeline.name,
        {"scheduled_time": "2026-10-24T03:00:00Z"},
    )
    assert done["status"] == "SUCCEEDED", done
    names = [s["StatementName"] for s in machine_statements(migrated, "parity-schedule/")]
    assert names == ["parity-schedule/2026-10-23/c/attempt-1"]
