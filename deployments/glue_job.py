"""The clean job on AWS, as code: ``plan`` prints what ``apply`` creates or updates.

``python -m deployments.glue_job plan --artifacts-s3 s3://bucket/glue ...`` prints the
Glue job definition, the IAM role's trust and least-privilege policy, and the uploads,
as JSON, without any AWS call. ``apply`` does the same with boto3: uploads
``glue/raw2clean.py`` and the ``glue`` package (``--extra-py-files``), creates or updates
the role and its inline policy, then creates or updates the job. It first asks STS whose
credentials these are: none, or another account than ``--account-id`` (which the role's
policy names), changes nothing; AWS's refusal on the way is one line, and running the
command again finishes (every step creates or updates). The settings are checked in
``glue_config``, the role's policies built in ``glue_iam``.

Why these job parameters: ``--datalake-formats hudi`` puts Glue's Hudi on the classpath,
the Kryo serializer is what Hudi's Spark writer needs, ``--enable-glue-datacatalog`` lets
Spark see the catalog the job's Hudi sync writes. ``--glue_version`` and
``--hudi_version`` are job arguments too, so the job itself refuses to run with options
for another Hudi than its Glue version provides (``glue.hudi_runtime``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from deployments.glue_config import GLUE_HUDI_RELEASES, GlueJobConfig, GlueJobConfigError, split_s3
from deployments.glue_iam import job_policy, trust_policy

REPO_ROOT = Path(__file__).resolve().parents[1]
GLUE_PACKAGE = REPO_ROOT / "glue"
KRYO = "spark.serializer=org.apache.spark.serializer.KryoSerializer"


def job_definition(config: GlueJobConfig) -> dict[str, Any]:
    """The CreateJob request (UpdateJob takes the same without ``Name``)."""
    return {
        "Name": config.job_name,
        "Description": "MyStore raw -> clean: Hudi upserts, cleaner, Glue Data Catalog sync",
        "Role": config.role_arn,
        "Command": {
            "Name": "glueetl",
            "ScriptLocation": config.script_location,
            "PythonVersion": "3",
        },
        "DefaultArguments": {
            "--datalake-formats": "hudi",
            "--conf": KRYO,
            "--enable-glue-datacatalog": "true",
            "--job-language": "python",
            "--extra-py-files": config.package_location,
            "--enable-metrics": "true",
            "--enable-continuous-cloudwatch-log": "true",
            "--glue_version": config.glue_version,
            "--hudi_version": GLUE_HUDI_RELEASES[config.glue_version],
            "--raw_path": config.raw_path,
            "--clean_path": config.clean_path,
            "--quarantine_path": config.quarantine_path,
            "--catalog_database": config.catalog_database,
        },
        "ExecutionProperty": {"MaxConcurrentRuns": config.max_concurrent_runs},
        "MaxRetries": 0,
        "Timeout": config.timeout_minutes,
        "GlueVersion": config.glue_version,
        "WorkerType": config.worker_type,
        "NumberOfWorkers": config.number_of_workers,
        "Tags": {"project": "mystore-elt"},
    }


def glue_package_zip(root: Path = GLUE_PACKAGE) -> bytes:
    """The ``glue`` package as a zip for ``--extra-py-files`` (deterministic bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.glob("*.py")):
            info = zipfile.ZipInfo(f"glue/{path.name}", date_time=(2020, 1, 1, 0, 0, 0))
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def plan(config: GlueJobConfig) -> dict[str, Any]:
    """Everything ``apply`` would create or update, as plain data."""
    return {
        "uploads": {
            config.script_location: "glue/raw2clean.py",
            config.package_location: "glue/*.py (zip)",
        },
        "role": {
            "RoleName": config.role_name,
            "AssumeRolePolicyDocument": trust_policy(),
            "InlinePolicyName": f"{config.job_name}-least-privilege",
            "InlinePolicy": job_policy(config),
        },
        "job": job_definition(config),
    }


def apply(config: GlueJobConfig, *, s3: Any, iam: Any, glue: Any) -> dict[str, str]:
    """Create or update everything in ``plan`` with the given boto3 clients."""
    definition = plan(config)
    for target, body in (
        (config.script_location, (GLUE_PACKAGE / "raw2clean.py").read_bytes()),
        (config.package_location, glue_package_zip()),
    ):
        target_bucket, key = split_s3(target, "artifact")
        s3.put_object(Bucket=target_bucket, Key=key, Body=body)
    role = definition["role"]
    try:
        iam.get_role(RoleName=config.role_name)
        iam.update_assume_role_policy(
            RoleName=config.role_name,
            PolicyDocument=json.dumps(role["AssumeRolePolicyDocument"]),
        )
        role_action = "updated"
    except iam.exceptions.NoSuchEntityException:
        iam.create_role(
            RoleName=config.role_name,
            AssumeRolePolicyDocument=json.dumps(role["AssumeRolePolicyDocument"]),
            Description=f"Glue job {config.job_name} (mystore-elt)",
        )
        role_action = "created"
    iam.put_role_policy(
        RoleName=config.role_name,
        PolicyName=role["InlinePolicyName"],
        PolicyDocument=json.dumps(role["InlinePolicy"]),
    )
    job = definition["job"]
    try:
        glue.get_job(JobName=config.job_name)
    except glue.exceptions.EntityNotFoundException:
        glue.create_job(**job)
        job_action = "created"
    else:
        update = {k: v for k, v in job.items() if k not in ("Name", "Tags")}
        glue.update_job(JobName=config.job_name, JobUpdate=update)
        job_action = "updated"
    return {"role": role_action, "job": job_action, "script": config.script_location}


def _whole_number(variable: str) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            return int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{value!r} is not a whole number (the option, or {variable} when it is not given)"
            ) from None

    return parse


def _parser() -> argparse.ArgumentParser:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m deployments.glue_job", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=("plan", "apply"))
    parser.add_argument("--artifacts-s3", required=True, help="s3://bucket/prefix for the script")
    parser.add_argument("--account-id", required=True, help="12-digit AWS account id")
    parser.add_argument("--region", default=env.get("MYSTORE_REGION", "us-east-1"))
    parser.add_argument("--job-name", default=env.get("MYSTORE_GLUE_JOB_NAME", "raw2clean"))
    parser.add_argument("--role-name", default="mystore-raw2clean-glue")
    parser.add_argument("--glue-version", default="5.0", choices=tuple(GLUE_HUDI_RELEASES))
    parser.add_argument("--worker-type", default=env.get("MYSTORE_GLUE_WORKER_TYPE", "G.1X"))
    # A string default goes through ``type`` too: a bad MYSTORE_* value is named, as an option's.
    parser.add_argument(
        "--number-of-workers",
        type=_whole_number("MYSTORE_GLUE_NUMBER_OF_WORKERS"),
        default=env.get("MYSTORE_GLUE_NUMBER_OF_WORKERS", "2"),
    )
    parser.add_argument(
        "--timeout-minutes",
        type=_whole_number("MYSTORE_GLUE_TIMEOUT_MINUTES"),
        default=env.get("MYSTORE_GLUE_TIMEOUT_MINUTES", "60"),
    )
    for name, variable in (
        ("raw-path", "MYSTORE_RAW_PATH"),
        ("clean-path", "MYSTORE_CLEAN_PATH"),
        ("quarantine-path", "MYSTORE_QUARANTINE_PATH"),
        ("report-path", "MYSTORE_GLUE_REPORT_PATH"),
    ):
        parser.add_argument(f"--{name}", default=env.get(variable), required=not env.get(variable))
    return parser


def config_from_args(values: Mapping[str, Any]) -> GlueJobConfig:
    return GlueJobConfig(
        artifacts_s3=values["artifacts_s3"],
        raw_path=values["raw_path"],
        clean_path=values["clean_path"],
        quarantine_path=values["quarantine_path"],
        report_path=values["report_path"],
        account_id=values["account_id"],
        region=values["region"],
        job_name=values["job_name"],
        role_name=values["role_name"],
        glue_version=values["glue_version"],
        worker_type=values["worker_type"],
        number_of_workers=values["number_of_workers"],
        timeout_minutes=values["timeout_minutes"],
    )


def main(argv: Sequence[str] | None = None) -> int:
    values = vars(_parser().parse_args(argv))
    try:
        config = config_from_args(values)
    except GlueJobConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if values["command"] == "plan":
        print(json.dumps(plan(config), indent=2, sort_keys=True))
        return 0
    import boto3

    from deployments.aws_calls import (
        AccountMismatchError,
        DeployError,
        caller_account,
        deploy_errors,
        print_deployed,
    )

    session = boto3.session.Session(region_name=config.region)
    try:  # the role's ARN and policy name --account-id: the credentials must be its
        caller_account(session, config.account_id)
    except DeployError as exc:
        print(f"error: cannot apply, nothing changed: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, AccountMismatchError) else 1
    s3, iam, glue = session.client("s3"), session.client("iam"), session.client("glue")

    def applied() -> Iterator[str]:
        with deploy_errors():
            yield json.dumps(apply(config, s3=s3, iam=iam, glue=glue), indent=2, sort_keys=True)

    return print_deployed(applied(), verb="apply")


if __name__ == "__main__":
    raise SystemExit(main())
