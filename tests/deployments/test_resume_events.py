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
    assert deploy(document, events, lam) == ["mystore-statement-ended", "mystore-glue-run-ended"]
    deploy(document, events, lam)  # a second deploy updates in place
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
