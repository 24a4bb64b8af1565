"""``--deploy`` (deployments/sfn_deploy.py) and the command line's refusals, against moto's
AWS: the credentials' account in every ARN, nothing written for credentials that do not work
or another account, a deploy refused half-way that says how far it got and finishes when
run again."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from deployments.aws_calls import DeployError
from deployments.sfn_config import ExportConfig, ExportSettingError
from deployments.stepfunctions import main
from tasks.redshift_data.target import RedshiftTarget
from tests.deployments.sfn_moto import aws_export_env, moto_sfn, no_aws_credentials

ACCOUNT = "111122223333"


def _machines() -> dict[str, str]:
    sfn = boto3.client("stepfunctions")
    return {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}


def test_deploy_creates_then_updates_everything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_export_env(monkeypatch)
    with moto_sfn(None, monkeypatch):
        assert main(["--out", str(tmp_path), "--deploy"]) == 0
        assert main(["--out", str(tmp_path), "--deploy"]) == 0
        out = capsys.readouterr().out
        machines = _machines()
        assert sorted(machines) == ["mystore-nightly", "mystore-nightly-canceller"]
        sfn = boto3.client("stepfunctions")
        described = sfn.describe_state_machine(stateMachineArn=machines["mystore-nightly"])
        assert described["definition"] == (tmp_path / "mystore-nightly.asl.json").read_text()
        schedule = boto3.client("scheduler").get_schedule(Name="mystore-nightly")
        assert json.loads(schedule["Target"]["Input"]) == {
            "scheduled_time": "<aws.scheduler.scheduled-time>"
        }
        targets = boto3.client("events").list_targets_by_rule(Rule="mystore-nightly-canceller")
        assert targets["Targets"][0]["Arn"] == machines["mystore-nightly-canceller"]
        policy = boto3.client("iam").get_role_policy(
            RoleName="mystore-nightly-sfn", PolicyName="mystore-nightly-sfn-policy"
        )
        assert policy["PolicyDocument"]["Statement"][0]["Sid"] == "SubmitToTheWarehouse"
    assert "state machine mystore-nightly: created" in out
    assert "state machine mystore-nightly: updated" in out
    assert "schedule mystore-nightly: updated" in out


def test_deploy_names_the_credentials_account_in_every_arn(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --account-id the ARNs would name the placeholder account: roles whose policies
    grant nothing, then a machine AWS refuses. --deploy asks STS whose credentials these are."""
    aws_export_env(monkeypatch)
    monkeypatch.setenv("MOTO_ACCOUNT_ID", ACCOUNT)
    with moto_sfn(None, monkeypatch):
        assert main(["--out", str(tmp_path), "--deploy"]) == 0
        machine = boto3.client("stepfunctions").describe_state_machine(
            stateMachineArn=_machines()["mystore-nightly"]
        )
    assert machine["roleArn"] == f"arn:aws:iam::{ACCOUNT}:role/mystore-nightly-sfn"
    written = "".join(p.read_text() for p in tmp_path.iterdir())
    assert ACCOUNT in written and "123456789012" not in written
    assert "placeholder" not in capsys.readouterr().err


def test_an_account_id_that_is_not_the_credentials_is_refused_before_anything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_export_env(monkeypatch)
    monkeypatch.setenv("MOTO_ACCOUNT_ID", ACCOUNT)
    out = tmp_path / "out"
    with moto_sfn(None, monkeypatch):
        assert main(["--out", str(out), "--account-id", "444455556666", "--deploy"]) == 2
        assert _machines() == {}
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: cannot deploy, nothing written: --account-id 444455556666 is not the account of "
        f"these credentials ({ACCOUNT})"
    ), err
    assert not out.exists()


def test_deploy_without_credentials_says_so_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_export_env(monkeypatch)
    no_aws_credentials(monkeypatch, tmp_path)
    out = tmp_path / "out"
    assert main(["--out", str(out), "--deploy"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot deploy, nothing written: no AWS credentials found"), err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.fixture
def refused_schedule(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """EventBridge Scheduler refuses CreateSchedule (a role without scheduler:*), at the
    boto3 client's seam; the test empties the list to lift the refusal."""
    refusing = ["CreateSchedule"]
    make_client = boto3.session.Session.client

    def client(self: boto3.session.Session, service: str, *args: Any, **kwargs: Any) -> Any:
        made = make_client(self, service, *args, **kwargs)

        def refuse(**_: Any) -> None:
            if refusing:
                raise ClientError(
                    {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}},
                    "CreateSchedule",
                )

        made.meta.events.register("before-call.scheduler.CreateSchedule", refuse)
        return made

    monkeypatch.setattr(boto3.session.Session, "client", client)
    yield refusing


def test_a_deploy_refused_half_way_says_how_far_it_got_and_finishes_when_run_again(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    refused_schedule: list[str],
) -> None:
    aws_export_env(monkeypatch)
    with moto_sfn(None, monkeypatch):
        assert main(["--out", str(tmp_path), "--deploy"]) == 1
        first = capsys.readouterr()
        assert sorted(_machines()) == ["mystore-nightly", "mystore-nightly-canceller"]
        refused_schedule.clear()
        assert main(["--out", str(tmp_path), "--deploy"]) == 0
        second = capsys.readouterr()
        assert boto3.client("scheduler").get_schedule(Name="mystore-nightly")["State"]
    assert "state machine mystore-nightly-canceller: created" in first.out
    assert "rule mystore-nightly-canceller: put" in first.out
    assert "schedule mystore-nightly:" not in first.out
    assert first.err.startswith(
        "error: cannot deploy: An error occurred (AccessDeniedException) when calling the "
        "CreateSchedule operation: not authorized\nRun the command again to finish (each "
        "step creates or updates; what is listed above is done)."
    ), first.err
    assert "Traceback" not in first.err
    assert "state machine mystore-nightly: updated" in second.out
    assert "schedule mystore-nightly: created" in second.out


@pytest.mark.parametrize(
    ("args", "refused"),
    [
        (["--name", "bad;drop"], "--name 'bad;drop' is invalid; allowed: 1-64 letters"),
        (["--account-id", "12"], "--account-id '12' is invalid; allowed: 12 digits"),
        (["--region", "xx"], "--region 'xx' is invalid; allowed: a region name"),
        (["--role-arn", "foo"], "--role-arn 'foo' is invalid; allowed: an IAM role ARN"),
        (["--schedule", "rate(banana)"], "--schedule 'rate(banana)' is invalid; allowed: cron("),
        (["--max-poll-seconds", "-5"], "--max-poll-seconds -5 is invalid; allowed: 2 (the first"),
        (["--max-poll-seconds", "3601"], "--max-poll-seconds 3601 is invalid; allowed: 2 (the"),
    ],
)
def test_a_refused_option_is_named_as_the_user_wrote_it(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    refused: str,
) -> None:
    aws_export_env(monkeypatch)
    assert main(["--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot export: {refused}"), err
    assert err.count("\n") == 1  # one line, no traceback
    assert not (tmp_path / "out").exists()


def test_settings_from_the_environment_are_named_by_their_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_export_env(monkeypatch)
    monkeypatch.setenv("MYSTORE_REGION", "moon-base")
    assert main(["--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(
        "error: cannot export: MYSTORE_REGION 'moon-base' is invalid; allowed: a region name"
    )
    monkeypatch.delenv("MYSTORE_REGION")
    monkeypatch.delenv("MYSTORE_TARGET")  # a workgroup is enough to export; still checked
    monkeypatch.setenv("MYSTORE_WORKGROUP_NAME", "wg")
    assert main(["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot export: MYSTORE_WORKGROUP_NAME 'wg' is invalid"), err
    assert not list(tmp_path.iterdir())


def test_an_export_without_an_account_says_its_arns_name_a_placeholder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_export_env(monkeypatch)
    assert main(["--out", str(tmp_path)]) == 0
    assert "note: the ARNs name the placeholder account 123456789012" in capsys.readouterr().err
    assert main(["--out", str(tmp_path), "--account-id", ACCOUNT]) == 0
    assert capsys.readouterr().err == ""


def test_the_refusals_pickle_with_their_message() -> None:
    with pytest.raises(ExportSettingError) as refused:
        ExportConfig(target=RedshiftTarget(database="dev", workgroup_name="mystore"), region="x")
    for error in (refused.value, DeployError("AccessDenied on CreateRole")):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
    assert refused.value.named("--region") == (
        "--region 'x' is invalid; allowed: a region name like us-east-1"
    )


def test_a_full_disk_is_one_line_and_leaves_no_half_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_export_env(monkeypatch)
    write_text = Path.write_text
    written: list[str] = []

    def fill_the_disk(self: Path, text: str, *args: Any, **kwargs: Any) -> int:
        if written:  # the second file finds the disk full, after a part of it
            write_text(self, text[:100], *args, **kwargs)
            raise OSError(28, "No space left on device")
        written.append(self.name)
        return write_text(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", fill_the_disk)
    assert main(["--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"error: cannot write {tmp_path}: No space left on device\n"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["mystore-nightly-cancel-rule.json"]  # the whole first file, nothing else
