"""The EventBridge rules that wake suspended runs: golden file, refusals, CLI, deploy on moto.

Golden file: ``UPDATE_GOLDEN=1 uv run pytest tests/deployments/test_resume_events.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.events.models import EventPattern

from deployments.asl import to_json
from deployments.resume_events import ResumeRulesError, deploy, main, resume_documents
from tests.deployments.sfn_moto import no_aws_credentials
from tests.flows.test_resume_events import STATEMENT_EVENT

GOLDEN = Path(__file__).parent / "golden"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:mystore-resume-events"


def test_rules_match_the_golden_file() -> None:
    ((file_name, document),) = resume_documents("mystore", FUNCTION).items()
    golden = GOLDEN / file_name
    text = to_json(document)
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_a_bad_function_arn_is_refused_by_name() -> None:
    with pytest.raises(ResumeRulesError, match="'mystore-resume' is invalid"):
        resume_documents("mystore", "mystore-resume")


@pytest.mark.parametrize("name", ["a;b c", "", "x" * 49, "my.store"])
def test_a_name_no_rule_could_take_is_refused_before_a_file_is_written(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--function-arn", FUNCTION, "--name", name, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --name {name!r} is invalid; allowed: 1-48 letters"), err
    assert not (tmp_path / "o").exists()


def test_deploy_without_credentials_says_so_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_aws_credentials(monkeypatch, tmp_path)
    out = tmp_path / "out"
    assert main(["--function-arn", FUNCTION, "--out", str(out), "--deploy"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot deploy, nothing written: no AWS credentials found"), err
    assert not out.exists()


@mock_aws
def test_the_cli_deploys_rule_by_rule_and_says_which_aws_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No function behind the ARN: EventBridge takes the first rule, Lambda refuses its
    permission; the command names the call, and no rule is listed as done."""
    assert main(["--function-arn", FUNCTION, "--out", str(tmp_path), "--deploy"]) == 1
    out, err = capsys.readouterr()
    assert out == f"wrote {tmp_path / 'mystore-resume-rules.json'}\n"
    assert err.startswith("error: cannot deploy: An error occurred (ResourceNotFoundException)"), (
        err
    )
    assert "AddPermission operation" in err and "Run the command again to finish" in err


def test_the_cli_writes_the_golden_document(tmp_path: Path) -> None:
    assert main(["--function-arn", FUNCTION, "--out", str(tmp_path)]) == 0
    written = (tmp_path / "mystore-resume-rules.json").read_text()
    assert written == (GOLDEN / "mystore-resume-rules.json").read_text()
    assert main(["--function-arn", "nope", "--out", str(tmp_path)]) == 2


@mock_aws
def test_deploy_puts_rules_that_match_the_data_api_event_twice_safely() -> None:
    events = boto3.client("events", region_name="us-east-1")
    lam = boto3.client("lambda", region_name="us-east-1")
    iam = boto3.client("iam", region_name="us-east-1")
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam.create_function(
        FunctionName="mystore-resume-events",
        Runtime="python3.11",
        Role=role,
        Handler="flows.resume_events.eventbridge_handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )
    (document,) = resume_documents("mystore", FUNCTION).values()
    rules = ["mystore-statement-ended", "mystore-glue-run-ended"]
    assert list(deploy(document, events, lam)) == rules
    assert list(deploy(document, events, lam)) == rules  # a second deploy updates in place
    # moto answers TestEventPattern without a Result; its rule matcher decides instead
    pattern = EventPattern.load(
        events.describe_rule(Name="mystore-statement-ended")["EventPattern"]
    )
    assert pattern.matches_event(STATEMENT_EVENT)
    started = {**STATEMENT_EVENT, "detail": {**STATEMENT_EVENT["detail"], "state": "STARTED"}}
    assert not pattern.matches_event(started)
    other = {**STATEMENT_EVENT, "detail": {**STATEMENT_EVENT["detail"], "statementName": "x"}}
    assert not pattern.matches_event(other)  # not one of our pipelines' statements
    targets = events.list_targets_by_rule(Rule="mystore-statement-ended")["Targets"]
    assert [t["Arn"] for t in targets] == [FUNCTION]
