"""The Glue job as code: ``plan`` against a reviewed golden file, ``apply`` against moto."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from deployments.glue_config import GlueJobConfig, GlueJobConfigError
from deployments.glue_job import apply, glue_package_zip, job_definition, main, plan
from tests.deployments.sfn_moto import no_aws_credentials

GOLDEN = Path(__file__).parent / "golden" / "glue_job_plan.json"
CONFIG = GlueJobConfig(
    artifacts_s3="s3://mystore-artifacts/glue",
    raw_path="s3://mystore-lake/raw",
    clean_path="s3://mystore-lake/clean",
    quarantine_path="s3://mystore-lake/quarantine",
    report_path="s3://mystore-lake/glue-reports",
    account_id="123456789012",
)
PLAN_ARGV = [
    "plan",
    "--artifacts-s3", "s3://mystore-artifacts/glue",
    "--account-id", "123456789012",
    "--raw-path", "s3://mystore-lake/raw",
    "--clean-path", "s3://mystore-lake/clean",
    "--quarantine-path", "s3://mystore-lake/quarantine",
    "--report-path", "s3://mystore-lake/glue-reports",
]  # fmt: skip


def test_plan_matches_the_golden_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("MYSTORE_REGION", "MYSTORE_GLUE_WORKER_TYPE", "MYSTORE_GLUE_NUMBER_OF_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MYSTORE_GLUE_TIMEOUT_MINUTES", raising=False)
    monkeypatch.delenv("MYSTORE_GLUE_JOB_NAME", raising=False)
    assert main(PLAN_ARGV) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(GOLDEN.read_text())
    assert printed == json.loads(json.dumps(plan(CONFIG)))


def test_the_job_enables_hudi_kryo_and_the_catalog() -> None:
    arguments = job_definition(CONFIG)["DefaultArguments"]
    assert {
        k: arguments[k] for k in ("--datalake-formats", "--conf", "--enable-glue-datacatalog")
    } == {
        "--datalake-formats": "hudi",
        "--conf": "spark.serializer=org.apache.spark.serializer.KryoSerializer",
        "--enable-glue-datacatalog": "true",
    }
    assert (arguments["--glue_version"], arguments["--hudi_version"]) == ("5.0", "0.15.0")


def test_the_policy_grants_no_wildcard_actions_and_no_other_buckets() -> None:
    policy = plan(CONFIG)["role"]["InlinePolicy"]
    actions = [
        a
        for s in policy["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    assert all("*" not in action for action in actions)
    s3_resources = [
        r
        for s in policy["Statement"]
        for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
        if r.startswith("arn:aws:s3")
    ]
    assert all(
        r.startswith(("arn:aws:s3:::mystore-artifacts/glue/", "arn:aws:s3:::mystore-lake"))
        for r in s3_resources
    )
    assert "arn:aws:s3:::mystore-lake/*" not in s3_resources


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"glue_version": "3.0"},
            "glue version '3.0' is not supported; expected one of: 4.0, 5.0, 5.1",
        ),
        (
            {"worker_type": "G.16X"},
            "worker type 'G.16X' is not one of G.1X, G.2X, G.4X, G.8X, G.025X, Z.2X",
        ),
        ({"account_id": "12"}, "account id '12' is not 12 digits"),
        (
            {"raw_path": "/data/raw"},
            "raw path '/data/raw' is not an s3:// URI (s3://bucket/prefix)",
        ),
    ],
)
def test_bad_settings_are_named(change: dict[str, Any], message: str) -> None:
    values = {**CONFIG.__dict__, **change}
    with pytest.raises(GlueJobConfigError) as info:
        GlueJobConfig(**values)
    assert str(info.value) == message


def test_a_bad_number_from_an_option_or_its_variable_is_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYSTORE_GLUE_NUMBER_OF_WORKERS", "abc")
    with pytest.raises(SystemExit) as exited:
        main(PLAN_ARGV)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--number-of-workers: 'abc' is not a whole number" in err
    assert "MYSTORE_GLUE_NUMBER_OF_WORKERS when it is not given" in err
    monkeypatch.setenv("MYSTORE_GLUE_NUMBER_OF_WORKERS", "4")
    with pytest.raises(SystemExit):
        main([*PLAN_ARGV, "--timeout-minutes", "1.5"])
    assert "--timeout-minutes: '1.5' is not a whole number" in capsys.readouterr().err
    assert main(PLAN_ARGV) == 0
    assert json.loads(capsys.readouterr().out)["job"]["NumberOfWorkers"] == 4


def test_apply_creates_the_role_the_uploads_and_the_job_in_moto() -> None:
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        s3, iam, glue = session.client("s3"), session.client("iam"), session.client("glue")
        s3.create_bucket(Bucket="mystore-artifacts")
        result = apply(CONFIG, s3=s3, iam=iam, glue=glue)
        assert result == {
            "role": "created",
            "job": "created",
            "script": "s3://mystore-artifacts/glue/raw2clean.py",
        }
        script = s3.get_object(Bucket="mystore-artifacts", Key="glue/raw2clean.py")["Body"].read()
        assert (
            script == (Path(__file__).resolve().parents[2] / "glue" / "raw2clean.py").read_bytes()
        )
        package = s3.get_object(Bucket="mystore-artifacts", Key="glue/glue.zip")["Body"].read()
        names = zipfile.ZipFile(io.BytesIO(package)).namelist()
        assert {"glue/raw2clean.py", "glue/hudi_options.py", "glue/hudi_runtime.py"} <= set(names)
        job = glue.get_job(JobName="raw2clean")["Job"]
        expected = job_definition(CONFIG)
        assert {
            k: job[k]
            for k in (
                "Role",
                "Command",
                "DefaultArguments",
                "GlueVersion",
                "WorkerType",
                "NumberOfWorkers",
                "Timeout",
            )
        } == {
            k: expected[k]
            for k in (
                "Role",
                "Command",
                "DefaultArguments",
                "GlueVersion",
                "WorkerType",
                "NumberOfWorkers",
                "Timeout",
            )
        }
        policy = iam.get_role_policy(
            RoleName="mystore-raw2clean-glue", PolicyName="raw2clean-least-privilege"
        )
        assert policy["PolicyDocument"] == plan(CONFIG)["role"]["InlinePolicy"]
        role = iam.get_role(RoleName="mystore-raw2clean-glue")["Role"]
        assert role["Arn"] == CONFIG.role_arn
        assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
            "Service": "glue.amazonaws.com"
        }


def test_apply_updates_an_existing_job_and_role() -> None:
    """moto 5.2 has no UpdateJob; the glue client is stubbed at that one call (S3, IAM in moto)."""
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        s3, iam = session.client("s3"), session.client("iam")
        s3.create_bucket(Bucket="mystore-artifacts")
        iam.create_role(RoleName="mystore-raw2clean-glue", AssumeRolePolicyDocument="{}")
        glue = boto3.client("glue", region_name="us-east-1")
        update = {k: v for k, v in job_definition(CONFIG).items() if k not in ("Name", "Tags")}
        with Stubber(glue) as stub:
            stub.add_response("get_job", {"Job": {"Name": "raw2clean"}}, {"JobName": "raw2clean"})
            stub.add_response(
                "update_job",
                {"JobName": "raw2clean"},
                {"JobName": "raw2clean", "JobUpdate": update},
            )
            result = apply(CONFIG, s3=s3, iam=iam, glue=glue)
            stub.assert_no_pending_responses()
        assert (result["role"], result["job"]) == ("updated", "updated")
        trust = iam.get_role(RoleName="mystore-raw2clean-glue")["Role"]["AssumeRolePolicyDocument"]
        assert trust["Statement"][0]["Principal"] == {"Service": "glue.amazonaws.com"}


def test_the_package_zip_is_deterministic() -> None:
    assert glue_package_zip() == glue_package_zip()


APPLY_ARGV = ["apply", *PLAN_ARGV[1:]]


def test_apply_without_credentials_says_so_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_aws_credentials(monkeypatch, tmp_path)
    assert main(APPLY_ARGV) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot apply, nothing changed: no AWS credentials found"), err


def test_apply_into_another_account_than_the_plans_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "111122223333")
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="mystore-artifacts")
        assert main(APPLY_ARGV) == 2
        assert boto3.client("iam").list_roles()["Roles"] == []
    assert capsys.readouterr().err.startswith(
        "error: cannot apply, nothing changed: --account-id 123456789012 is not the account "
        "of these credentials (111122223333)"
    )


def test_apply_refused_by_aws_names_the_call_and_finishes_when_run_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No artifacts bucket yet: S3 refuses the script's upload (a real refusal, in moto)."""
    with mock_aws():
        assert main(APPLY_ARGV) == 1
        err = capsys.readouterr().err
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="mystore-artifacts")
        assert main(APPLY_ARGV) == 0
        assert json.loads(capsys.readouterr().out)["job"] == "created"
    assert err.startswith(
        "error: cannot apply: An error occurred (NoSuchBucket) when calling the PutObject operation"
    ), err
    assert "Run the command again to finish" in err and "Traceback" not in err
