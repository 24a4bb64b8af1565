"""The clean job on AWS, as code: ``plan`` prints what ``apply`` creates or updates.

``python -m deployments.glue_job plan --artifacts-s3 s3://bucket/glue ...`` prints the
Glue job definition, the IAM role's trust and least-privilege policy, and the uploads,
as JSON, without any AWS call. ``apply`` does the same with boto3: uploads
``glue/raw2clean.py`` and the ``glue`` package (``--extra-py-files``), creates or updates
the role and its inline policy, then creates or updates the job.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
GLUE_PACKAGE = REPO_ROOT / "glue"
GLUE_HUDI_RELEASES = {"4.0": "0.12.1", "5.0": "0.15.0", "5.1": "1.0.2"}
WORKER_TYPES = ("G.1X", "G.2X", "G.4X", "G.8X", "G.025X", "Z.2X")
KRYO = "spark.serializer=org.apache.spark.serializer.KryoSerializer"


class GlueJobConfigError(ValueError):
    """A deployment setting is invalid; the message names it and what is allowed."""


def split_s3(uri: str, what: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> (bucket, ``some/prefix``) without slashes at the ends."""
    if not uri.startswith("s3://") or len(uri) <= 5:
        raise GlueJobConfigError(f"{what} {uri!r} is not an s3:// URI (s3://bucket/prefix)")
    bucket, _, prefix = uri[5:].partition("/")
    if not bucket:
        raise GlueJobConfigError(f"{what} {uri!r} has no bucket")
    return bucket, prefix.strip("/")


@dataclass(frozen=True)
class GlueJobConfig:
    """What differs between deployments of the clean job."""

    artifacts_s3: str
    raw_path: str
    clean_path: str
    quarantine_path: str
    report_path: str
    account_id: str
    region: str = "us-east-1"
    job_name: str = "raw2clean"
    role_name: str = "mystore-raw2clean-glue"
    glue_version: str = "5.0"
    worker_type: str = "G.1X"
    number_of_workers: int = 2
    timeout_minutes: int = 60
    max_concurrent_runs: int = 3
    catalog_database: str = "clean_mystore"

    def __post_init__(self) -> None:
        if self.glue_version not in GLUE_HUDI_RELEASES:
            raise GlueJobConfigError(
                f"glue version {self.glue_version!r} is not supported; expected one of: "
                f"{', '.join(GLUE_HUDI_RELEASES)}"
            )
        if self.worker_type not in WORKER_TYPES:
            raise GlueJobConfigError(
                f"worker type {self.worker_type!r} is not one of {', '.join(WORKER_TYPES)}"
            )
        if self.number_of_workers < 2:
            raise GlueJobConfigError(
                f"number of workers must be at least 2 for glueetl, got {self.number_of_workers}"
            )
        if not 1 <= self.timeout_minutes < 10080:
            raise GlueJobConfigError(
                f"timeout must be between 1 and 10079 minutes, got {self.timeout_minutes}"
            )
        if not (self.account_id.isdigit() and len(self.account_id) == 12):
            raise GlueJobConfigError(f"account id {self.account_id!r} is not 12 digits")
        for what, uri in self.s3_paths.items():
            split_s3(uri, what)

    @property
    def s3_paths(self) -> dict[str, str]:
        return {
            "artifacts": self.artifacts_s3,
            "raw path": self.raw_path,
            "clean path": self.clean_path,
            "quarantine path": self.quarantine_path,
            "report path": self.report_path,
        }

    @property
    def script_location(self) -> str:
        return f"{self.artifacts_s3.rstrip('/')}/raw2clean.py"

    @property
    def package_location(self) -> str:
        return f"{self.artifacts_s3.rstrip('/')}/glue.zip"

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:role/{self.role_name}"


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


def _object_arns(uri: str) -> str:
    bucket, prefix = split_s3(uri, "path")
    return f"arn:aws:s3:::{bucket}/{prefix + '/' if prefix else ''}*"


def _list_statement(sid: str, uris: Sequence[str]) -> list[dict[str, Any]]:
    """ListBucket per bucket, limited to the prefixes the job uses."""
    prefixes: dict[str, list[str]] = {}
    for uri in uris:
        bucket, prefix = split_s3(uri, "path")
        prefixes.setdefault(bucket, []).extend([prefix, f"{prefix}/*"] if prefix else ["*"])
    return [
        {
            "Sid": f"{sid}{index}",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{bucket}",
            "Condition": {"StringLike": {"s3:prefix": sorted(set(values))}},
        }
        for index, (bucket, values) in enumerate(sorted(prefixes.items()))
    ]


def trust_policy() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "glue.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def job_policy(config: GlueJobConfig) -> dict[str, Any]:
    """Least privilege: read the artifacts and raw zone, write the clean, quarantine and
    report zones, sync one catalog database, write the job's own logs and metrics."""
    catalog = f"arn:aws:glue:{config.region}:{config.account_id}"
    database = config.catalog_database
    writable = [config.clean_path, config.quarantine_path, config.report_path]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadArtifactsAndRaw",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": [_object_arns(config.artifacts_s3), _object_arns(config.raw_path)],
            },
            {
                "Sid": "WriteCleanQuarantineReports",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": [_object_arns(uri) for uri in writable],
            },
            *_list_statement("ListJobPrefixes", [config.raw_path, *writable]),
            {
                "Sid": "HudiCatalogSync",
                "Effect": "Allow",
                "Action": [
                    "glue:GetDatabase",
                    "glue:CreateDatabase",
                    "glue:GetTable",
                    "glue:CreateTable",
                    "glue:UpdateTable",
                    "glue:GetPartition",
                    "glue:GetPartitions",
                    "glue:BatchGetPartition",
                    "glue:BatchCreatePartition",
                    "glue:BatchUpdatePartition",
                    "glue:BatchDeletePartition",
                ],
                "Resource": [
                    f"{catalog}:catalog",
                    f"{catalog}:database/{database}",
                    f"{catalog}:table/{database}/*",
                ],
            },
            {
                "Sid": "JobLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"arn:aws:logs:{config.region}:{config.account_id}:log-group:/aws-glue/*",
            },
            {
                "Sid": "JobMetrics",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": "Glue"}},
            },
        ],
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

    session = boto3.session.Session(region_name=config.region)
    result = apply(
        config, s3=session.client("s3"), iam=session.client("iam"), glue=session.client("glue")
    )
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
