"""The exported documents: golden files, byte stability, validators, refusals, CLI.

Golden files: ``UPDATE_GOLDEN=1 uv run pytest tests/deployments/test_stepfunctions_export.py``
rewrites them; review the diff like code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from deployments.asl import AslBuildError, Branch, to_json, wait
from deployments.sfn_config import ExportConfig
from deployments.sfn_errors import SERVERLESS_THROTTLING
from deployments.sfn_steps import add_step, client_token_hash
from deployments.stepfunctions import (
    export_definition,
    export_documents,
    iam_policy,
    main,
    write_documents,
)
from flows.pipeline import CheckStep, GlueStep, Pipeline, ProcedureStep, StepWait, nightly_pipeline
from tasks.glue.starting import DEFAULT_CONCURRENCY_WAIT
from tasks.jobs import RunKey
from tasks.redshift_data.target import RedshiftTarget
from tests.deployments.sfn_moto import asl_validator, aws_export_env, moto_sfn, run_execution

__all__ = ["asl_validator"]  # the fixture, imported for pytest

GOLDEN = Path(__file__).parent / "golden"
CONFIG = ExportConfig(
    target=RedshiftTarget(database="dev", workgroup_name="mystore"),
    glue_arguments={
        "--raw_path": "s3://mystore-raw/raw",
        "--clean_path": "s3://mystore-clean/clean",
    },
)


def _documents() -> dict[str, dict[str, Any]]:
    return export_documents(nightly_pipeline(), CONFIG)


@pytest.mark.parametrize("file_name", sorted(_documents()))
def test_exported_documents_match_the_golden_files(file_name: str) -> None:
    text = to_json(_documents()[file_name])
    golden = GOLDEN / file_name
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_the_export_is_byte_stable(tmp_path: Path) -> None:
    first = write_documents(_documents(), tmp_path / "a")
    second = write_documents(_documents(), tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    definition = json.loads(first[-1].read_text())
    assert list(definition) == sorted(definition)


def test_a_provisioned_cluster_policy_names_only_its_user_and_database() -> None:
    config = ExportConfig(
        target=RedshiftTarget(database="dev", cluster_identifier="mystore", db_user="etl")
    )
    policy = iam_policy(nightly_pipeline(), config)
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["SubmitToTheWarehouse"]["Resource"] == [
        "arn:aws:redshift:us-east-1:123456789012:cluster:mystore"
    ]
    assert by_sid["TemporaryCredentials"]["Resource"] == [
        "arn:aws:redshift:us-east-1:123456789012:dbuser:mystore/etl",
        "arn:aws:redshift:us-east-1:123456789012:dbname:mystore/dev",
    ]
    assert by_sid["CleanJobRuns"]["Resource"] == [
        "arn:aws:glue:us-east-1:123456789012:job/raw2clean"
    ]
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert not any(a.endswith("*") for a in actions)


def _states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state of the machine by name, those inside Parallel branches too."""
    found: dict[str, dict[str, Any]] = {}
    for name, state in definition["States"].items():
        found[name] = state
        for branch in state.get("Branches", ()):
            found |= _states(branch)
    return found


def test_any_session_of_the_role_may_describe_and_cancel_the_nights_statements() -> None:
    """The canceller and a second execution run under other sessions of the role: a
    statement-owner condition would deny them (moto does not enforce IAM, so only here)."""
    statements = iam_policy(nightly_pipeline(), CONFIG)["Statement"]
    data_api = [s for s in statements if any(a.startswith("redshift-data:") for a in s["Action"])]
    assert not any("Condition" in s for s in data_api)
    watching = {s["Sid"]: s for s in data_api}["DescribeOrCancelAnyStatement"]
    assert watching["Resource"] == ["*"]
    assert set(watching["Action"]) == {
        "redshift-data:CancelStatement",
        "redshift-data:DescribeStatement",
    }
    actions = {a for s in data_api for a in s["Action"]}
    assert "redshift-data:GetStatementResult" not in actions  # no state fetches rows


def test_a_check_counts_its_rows_from_describe_and_never_fetches_them() -> None:
    """GetStatementResult's answer counts against the 256 KiB state limit before any
    ResultSelector: a check with thousands of offending rows would end the execution with
    States.DataLimitExceeded. DescribeStatement's ResultRows is the count."""
    states = _states(export_definition(nightly_pipeline(), CONFIG))
    resources = {str(s.get("Resource", "")) for s in states.values()}
    assert not any(r.endswith(":getStatementResult") for r in resources)
    verdict = states["check_sales_reconciled: offending rows"]
    assert verdict["Error"] == "Check.OffendingRows"
    assert "$.desc.ResultRows" in verdict["CausePath"]


def test_only_the_describe_poll_retries_serverless_rate_exceeded() -> None:
    """Serverless throttles with ValidationException "Rate exceeded"; a describe that is
    not retried on it goes to the cancel path and cancels a running load."""
    states = _states(export_definition(nightly_pipeline(), CONFIG))
    for name, state in states.items():
        errors = {e for r in state.get("Retry", ()) for e in r["ErrorEquals"]}
        if str(state.get("Resource", "")).endswith(":describeStatement"):
            assert SERVERLESS_THROTTLING in errors, name
        else:  # a submit's ValidationException may be a real refusal
            assert SERVERLESS_THROTTLING not in errors, name


def test_a_glue_step_waits_for_a_free_run_slot_as_long_as_the_flow() -> None:
    """The flow tries StartJobRun for DEFAULT_CONCURRENCY_WAIT per attempt, with the
    step's attempts; the machine's Retry (FULL jitter: a pause averages half its length)
    takes the same pauses for as long on average, and the execution's timeout fits them."""
    pipeline = nightly_pipeline()
    definition = export_definition(pipeline, CONFIG)
    (retry,) = _states(definition)["clean_store_sale: run"]["Retry"]
    wait = DEFAULT_CONCURRENCY_WAIT
    assert wait.timeout_seconds is not None
    budget = pipeline.step("clean_store_sale").retry.attempts * wait.timeout_seconds
    assert (retry["IntervalSeconds"], retry["MaxDelaySeconds"], retry["BackoffRate"]) == (
        wait.initial_interval,
        wait.max_interval,
        wait.multiplier,
    )
    assert retry["JitterStrategy"] == "FULL"
    pauses = [
        min(retry["MaxDelaySeconds"], retry["IntervalSeconds"] * retry["BackoffRate"] ** n)
        for n in range(retry["MaxAttempts"])
    ]
    assert budget <= sum(pauses) / 2 < budget + pauses[-1] / 2
    run_seconds = CONFIG.glue_timeout_minutes * 60
    assert definition["TimeoutSeconds"] >= sum(pauses) + run_seconds


def test_a_glue_run_is_timed_by_glue_alone_as_in_the_flow() -> None:
    """The Task's own clock also counts StartJobRun, Glue's start-up and the .sync polling
    delay: a TimeoutSeconds of the run's Timeout failed a run that succeeded near its limit.
    The flow's wait is bounded only by the run's Timeout (flows.steps.glue_options)."""
    pipeline = nightly_pipeline()
    states = _states(export_definition(pipeline, CONFIG))
    for step in pipeline.steps:
        if isinstance(step, GlueStep):
            run = states[f"{step.name}: run"]
            assert "TimeoutSeconds" not in run
            flows_minutes = min(CONFIG.glue_timeout_minutes, int(step.wait.timeout_seconds // 60))
            assert run["Parameters"]["Timeout"] == flows_minutes


def test_asl_validator_accepts_both_machines_and_rejects_a_broken_one(
    asl_validator: Path, tmp_path: Path
) -> None:
    paths = [p for p in write_documents(_documents(), tmp_path) if p.name.endswith(".asl.json")]
    args = [str(asl_validator)] + [a for p in paths for a in ("--json-path", str(p))]
    ok = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = json.loads(paths[0].read_text())
    broken["States"]["Night succeeded"] = wait(1, "Nowhere")
    bad = tmp_path / "broken.asl.json"
    bad.write_text(json.dumps(broken))
    refused = subprocess.run(
        [str(asl_validator), "--json-path", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 1
    assert "Nowhere" in refused.stdout + refused.stderr


def test_moto_accepts_both_machines(monkeypatch: pytest.MonkeyPatch) -> None:
    with moto_sfn(None, monkeypatch) as sfn:
        for file_name, document in _documents().items():
            if file_name.endswith(".asl.json"):
                name = file_name.removesuffix(".asl.json")
                sfn.create_state_machine(
                    name=name,
                    definition=json.dumps(document),
                    roleArn=CONFIG.machine_role("mystore-nightly"),
                )
        assert len(sfn.list_state_machines()["stateMachines"]) == 2


def test_the_client_token_is_the_flows_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Evaluated by moto's intrinsic functions, the ASL token equals RunKey.client_token."""
    definition = {
        "StartAt": "Token",
        "States": {
            "Token": {
                "Type": "Pass",
                "Parameters": {"token.$": client_token_hash("mystore-nightly", "load", CONFIG)},
                "End": True,
            }
        },
    }
    with moto_sfn(None, monkeypatch) as sfn:
        done = run_execution(
            sfn, definition, "token", {"logical_date": "2026-11-02", "run": {"attempt": 2}}
        )
    expected = RunKey("mystore-nightly", "2026-11-02", "load", 2)
    assert json.loads(done["output"])["token"] == expected.client_token(CONFIG.target.scope())


def test_an_execution_without_a_logical_date_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with moto_sfn(None, monkeypatch) as sfn:
        done = run_execution(
            sfn, export_definition(nightly_pipeline(), CONFIG), "nightly", {"date": "x"}
        )
    assert done["status"] == "FAILED"
    assert done["error"] == "Input.InvalidLogicalDate"


# --- what the export refuses --------------------------------------------------------------


def test_an_unknown_step_kind_is_refused() -> None:
    with pytest.raises(AslBuildError, match="no Step Functions translation"):
        add_step(Branch("x"), object(), "p", CONFIG, "next")  # type: ignore[arg-type]


def test_a_glue_argument_that_cannot_be_rendered_at_run_time_is_refused() -> None:
    pipeline = Pipeline(
        "p",
        (GlueStep("clean", "raw2clean", arguments={"--where": "day = '{logical_date}'"}),),
    )
    with pytest.raises(AslBuildError, match=r"Glue argument --where=.*clean.*quotes"):
        export_definition(pipeline, CONFIG)


def test_a_check_description_with_quotes_is_refused() -> None:
    pipeline = Pipeline("p", (CheckStep("c", "customer's rows", "select 1"),))
    with pytest.raises(AslBuildError, match=r"cannot go into States\.Format"):
        export_definition(pipeline, CONFIG)


def test_a_pipeline_longer_than_a_standard_workflow_may_run_is_refused() -> None:
    week = StepWait(timeout_seconds=200 * 24 * 3600)
    config = ExportConfig(target=CONFIG.target, statement_timeout_seconds=10**9)
    pipeline = Pipeline(
        "p",
        (
            ProcedureStep("a", "s", "p1", wait=week),
            ProcedureStep("b", "s", "p2", depends_on=("a",), wait=week),
        ),
    )
    with pytest.raises(AslBuildError, match="longer than a Standard workflow"):
        export_definition(pipeline, config)


def test_the_longest_step_name_fits_and_a_longer_state_name_is_refused() -> None:
    pipeline = Pipeline("p", (CheckStep("x" * 64, "d", "select 1"),))
    assert max(len(n) for n in export_definition(pipeline, CONFIG)["States"]) <= 80
    with pytest.raises(AslBuildError, match="longer than 80 characters"):
        Branch("a").add("y" * 81, wait(1, "a"))


def test_a_dangling_transition_is_refused() -> None:
    branch = Branch("a")
    branch.add("a", wait(1, "b"))
    with pytest.raises(AslBuildError, match="'a' goes to 'b', which does not exist"):
        branch.to_asl()


# --- the command line and --deploy ----------------------------------------------------------


def test_help_explains_the_export(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "--out DIR" in text and "--deploy" in text and "logical_date" in text


def test_the_cli_writes_the_golden_documents(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_export_env(monkeypatch)
    assert main(["--out", str(tmp_path)]) == 0
    for path in sorted(tmp_path.iterdir()):
        assert path.read_text() == (GOLDEN / path.name).read_text(), path.name
    assert len(list(tmp_path.iterdir())) == len(_documents())


def test_the_cli_refuses_settings_it_cannot_export(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_export_env(monkeypatch)
    assert main(["--out", str(tmp_path), "--account-id", "12"]) == 2
    assert "--account-id '12' is invalid; allowed: 12 digits" in capsys.readouterr().err
    assert not tmp_path.exists() or not list(tmp_path.iterdir())
    monkeypatch.setenv("MYSTORE_WORKGROUP_NAME", "wg")
    assert main(["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot export: MYSTORE_WORKGROUP_NAME 'wg' is invalid"), err
    assert "pydantic" not in err  # one line naming the variable, not a validation dump
    assert not tmp_path.exists() or not list(tmp_path.iterdir())
    # Allowed empty days end NoInput in the flow; the machine has no such verdict and would
    # end such a day SUCCEEDED having loaded nothing.
    aws_export_env(monkeypatch)
    monkeypatch.setenv("MYSTORE_ALLOW_EMPTY_INPUT", "true")
    monkeypatch.setenv("MYSTORE_GLUE_REPORT_PATH", "s3://mystore-lake/reports")
    assert main(["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "MYSTORE_ALLOW_EMPTY_INPUT=true is not exported" in err and "SUCCEEDED" in err
    assert not tmp_path.exists() or not list(tmp_path.iterdir())


def _submit_retries(definition: dict[str, Any]) -> list[tuple[int, int]]:
    """(IntervalSeconds, MaxAttempts) of every executeStatement state's Retry."""
    found: list[tuple[int, int]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if str(node.get("Resource", "")).endswith(":executeStatement"):
                found.extend((r["IntervalSeconds"], r["MaxAttempts"]) for r in node["Retry"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(definition)
    return found


def test_the_submit_retry_pause_follows_the_flows_setting_and_keeps_the_budget() -> None:
    default = _submit_retries(export_definition(nightly_pipeline(), CONFIG))
    assert {interval for interval, _ in default} == {1}  # a tenth of the steps' 10 s delay
    paced = ExportConfig(target=CONFIG.target, submit_retry_seconds=2.5)
    retries = _submit_retries(export_definition(nightly_pipeline(), paced))
    assert retries == [(3, attempts) for _, attempts in default]  # whole seconds, same tries


def test_a_submit_retry_pause_out_of_range_is_refused_naming_it() -> None:
    with pytest.raises(AslBuildError, match="submit_retry_seconds 0 is invalid"):
        ExportConfig(target=CONFIG.target, submit_retry_seconds=0)


def test_the_export_reads_the_submit_retry_pause_only_when_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.settings import Settings

    aws_export_env(monkeypatch)
    assert ExportConfig.from_settings(Settings()).submit_retry_seconds is None
    monkeypatch.setenv("MYSTORE_SUBMIT_RETRY_SECONDS", "4")
    assert ExportConfig.from_settings(Settings()).submit_retry_seconds == 4


@pytest.mark.parametrize(
    "expression",
    ["cron(0 3 * * ? *)", "cron(30 2 ? * MON-FRI *)", "rate(1 day)", "at(2027-01-01T03:00:00)"],
)
def test_a_scheduler_expression_is_exported_as_given(expression: str) -> None:
    config = dataclasses.replace(CONFIG, schedule_expression=expression)
    documents = export_documents(nightly_pipeline(), config)
    assert documents["mystore-nightly-schedule.json"]["ScheduleExpression"] == expression


@pytest.mark.parametrize(
    "expression", ["nonsense", "cron(0 3 * * *)", "cron(0 3 * * * *)", "rate(0 days)", ""]
)
def test_a_schedule_eventbridge_would_refuse_is_refused_before_anything_is_written(
    expression: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    aws_export_env(monkeypatch)
    assert main(["--out", str(tmp_path), "--schedule", expression]) == 2
    err = capsys.readouterr().err
    assert f"--schedule {expression!r} is invalid; allowed: cron(" in err
    assert not tmp_path.exists() or not list(tmp_path.iterdir())
