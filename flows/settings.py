"""Settings for everything target-specific, read from ``MYSTORE_*`` environment variables.

Tunables and addresses live here, validated once at start-up so a typo fails before any
AWS call. Secrets do not: on AWS, credentials come from a prefect-aws ``AwsCredentials``
block (named by ``MYSTORE_AWS_CREDENTIALS_BLOCK``) or the default chain, and the warehouse
password from the Secrets Manager secret named by ARN.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_ARN_SECRET = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$"
)
_S3_OR_PATH = re.compile(r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?|[^:]+)$")

Target = Literal["local", "aws"]


class Settings(BaseSettings):
    """Where the nightly runs and how it waits. Every field can be set as MYSTORE_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="MYSTORE_", extra="ignore", frozen=True)

    target: Target = Field("local", description="'local' = the embedded default; 'aws' = real AWS")

    # Redshift (exactly one of cluster_identifier / workgroup_name on AWS)
    cluster_identifier: str | None = Field(None, description="provisioned cluster id")
    workgroup_name: str | None = Field(None, description="Redshift Serverless workgroup")
    database: str = Field("dev", description="database the procedures live in")
    db_user: str | None = Field(
        None, description="database user (provisioned, temporary credentials)"
    )
    secret_arn: str | None = Field(
        None, description="Secrets Manager ARN holding the database credentials"
    )

    # AWS access
    region: str | None = Field(None, description="AWS region; default chain when unset")
    aws_credentials_block: str | None = Field(
        None, description="name of a prefect-aws AwsCredentials block for deployed runs"
    )

    # Glue
    glue_job_name: str = Field("raw2clean", description="the Glue job that cleans the raw zone")
    raw_path: str | None = Field(None, description="raw zone root (s3:// on AWS)")
    clean_path: str | None = Field(None, description="clean zone root (s3:// on AWS)")
    quarantine_path: str | None = Field(None, description="where rows that cannot be cleaned go")
    glue_report_path: str | None = Field(
        None, description="where the clean job writes its JSON run reports (rows per step)"
    )
    glue_worker_type: str | None = Field(
        None, description="e.g. G.1X; the job's default when unset"
    )
    glue_number_of_workers: int | None = Field(None, ge=2, le=299)
    glue_timeout_minutes: int = Field(120, ge=1, le=2880)

    # Waiting
    statement_timeout_seconds: float = Field(
        6 * 3600, gt=0, le=24 * 3600, description="cap on any one statement; then it is cancelled"
    )

    # History load
    history_source: Literal["clean_table", "s3_parquet"] = Field(
        "clean_table",
        description="stage the range from the clean table (Spectrum) or COPY parquet from S3",
    )
    history_s3_prefix: str | None = Field(None, description="s3://bucket/prefix of the parquet")
    history_iam_role: str | None = Field(None, description="IAM role ARN the COPY assumes")

    # Embedded default
    local_data_dir: Path = Field(
        Path(".local"), description="where the embedded stack keeps its data"
    )
    local_customers: int = Field(2000, ge=10, le=5_000_000, description="sample size: customers")
    local_sales_per_day: int = Field(
        5000, ge=10, le=50_000_000, description="sample size: sales/day"
    )

    @model_validator(mode="after")
    def _check_target(self) -> Settings:
        if self.secret_arn is not None and not _ARN_SECRET.match(self.secret_arn):
            raise ValueError(
                f"secret_arn {self.secret_arn!r} is not a Secrets Manager ARN"
                " (arn:aws:secretsmanager:<region>:<account>:secret:<name>)"
            )
        for name in ("raw_path", "clean_path", "quarantine_path"):
            value = getattr(self, name)
            if value is not None and not _S3_OR_PATH.match(value):
                raise ValueError(
                    f"{name} {value!r} must be an s3://bucket/prefix URI or a local path"
                )
        if self.target == "aws":
            if (self.cluster_identifier is None) == (self.workgroup_name is None):
                raise ValueError(
                    "target 'aws' needs exactly one of MYSTORE_CLUSTER_IDENTIFIER or"
                    " MYSTORE_WORKGROUP_NAME"
                )
            if self.cluster_identifier and not (self.db_user or self.secret_arn):
                raise ValueError(
                    "a provisioned cluster needs MYSTORE_DB_USER or MYSTORE_SECRET_ARN"
                )
            missing = [n for n in ("raw_path", "clean_path") if getattr(self, n) is None]
            if missing:
                names = ", ".join(f"MYSTORE_{n.upper()}" for n in missing)
                raise ValueError(f"target 'aws' needs {names} (s3:// URIs)")
        return self
