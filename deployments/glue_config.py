"""What differs between deployments of the clean job on AWS (``GlueJobConfig``), checked
when it is made: every refusal names the setting, the value and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

# Glue version -> the Hudi it ships (the job refuses options for another: glue.hudi_runtime)
GLUE_HUDI_RELEASES = {"4.0": "0.12.1", "5.0": "0.15.0", "5.1": "1.0.2"}
WORKER_TYPES = ("G.1X", "G.2X", "G.4X", "G.8X", "G.025X", "Z.2X")


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
