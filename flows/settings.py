"""Settings for everything target-specific, read from ``MYSTORE_*`` environment variables.

Tunables and addresses live here, validated once at start-up so a typo fails before any
AWS call. The warehouse part (target, cluster or workgroup, database, credentials block,
local data dir) is ``migrations.settings.WarehouseSettings``, shared with
``python -m migrations``, which validates only that part. Secrets are not settings: on
AWS, credentials come from a prefect-aws ``AwsCredentials`` block (named by
``MYSTORE_AWS_CREDENTIALS_BLOCK``) or the default chain, and the warehouse password from
the Secrets Manager secret named by ARN.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from flows.sample_size import MAX_SAMPLE_ROWS, SAMPLE_SIZE_LIMIT
from glue.paths import SPARK_GLOB_CHARACTERS
from migrations.settings import WarehouseSettings
from tasks.jobs import MAX_SUBMIT_INTERVAL

_S3_OR_PATH = re.compile(r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?|[^:]+)$")


class Settings(WarehouseSettings):
    """Where the nightly runs and how it waits. Every field can be set as MYSTORE_<NAME>."""

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
    allow_empty_input: bool = Field(
        False,
        description=(
            "a date with no raw partition passes with the verdict 'no input' (summary, "
            "artifact, exit status 3, flow state NoInput) instead of failing the night; "
            "passed to the clean job as --allow_empty_input true"
        ),
    )

    # Waiting
    statement_timeout_seconds: float = Field(
        6 * 3600, gt=0, le=24 * 3600, description="cap on any one statement; then it is cancelled"
    )

    glue_poll_max_seconds: float = Field(
        5.0,
        gt=0,
        le=60,
        description=(
            "longest pause between two GetJobRun calls while a Glue run is awaited (they start "
            "at 1 s and grow 1.5x); the embedded default sets 0.5, its endpoint being local"
        ),
    )

    submit_retry_seconds: float = Field(
        1.0,
        gt=0,
        le=MAX_SUBMIT_INTERVAL,
        description=(
            "first pause before a submit the Data API refused (throttling, capacity) is tried "
            "again; it doubles on each of the 4 retries (capped at 30 s). How many tries there "
            "are does not change"
        ),
    )

    wait_mode: Literal["poll", "suspend"] = Field(
        "poll",
        description=(
            "poll: the flow process waits for statements and Glue runs; suspend: a deployed "
            "run suspends while they run and the resume-waiting flow resumes it"
        ),
    )
    shared_result_storage: bool = Field(
        False,
        description=(
            "declare PREFECT_LOCAL_STORAGE_PATH shared by every host of the work pool (an "
            "EFS/NFS mount); a storage block in PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK counts "
            "as shared without it"
        ),
    )

    # History load
    history_source: Literal["clean_table", "s3_parquet"] = Field(
        "clean_table",
        description="stage the range from the clean table (Spectrum) or COPY parquet from S3",
    )
    history_s3_prefix: str | None = Field(None, description="s3://bucket/prefix of the parquet")
    history_iam_role: str | None = Field(None, description="IAM role ARN the COPY assumes")

    # Embedded default (sample data; the data dir is a warehouse setting)
    local_customers: int = Field(2000, ge=10, description="sample size: customers")
    local_sales_per_day: int = Field(5000, ge=10, description="sample size: sales/day")

    @field_validator("local_customers", "local_sales_per_day")
    @classmethod
    def _check_sample_size(cls, value: int) -> int:
        if value > MAX_SAMPLE_ROWS:
            raise ValueError(SAMPLE_SIZE_LIMIT)
        return value

    @model_validator(mode="after")
    def _check_paths(self) -> Settings:
        for name in ("raw_path", "clean_path", "quarantine_path", "glue_report_path"):
            value = getattr(self, name)
            if value is not None and not _S3_OR_PATH.match(value):
                raise ValueError(
                    f"MYSTORE_{name.upper()} {value!r} is invalid; allowed: an"
                    " s3://bucket/prefix URI (a bucket name of 3-63 lower-case letters, digits,"
                    " dots and hyphens) or a local path"
                )
            globbed = [c for c in SPARK_GLOB_CHARACTERS if value is not None and c in value]
            if globbed:
                raise ValueError(
                    f"MYSTORE_{name.upper()} {value!r} holds {', '.join(map(repr, globbed))},"
                    " which Spark reads as a glob pattern in a path (the clean job would read"
                    " or write other folders, or none); allowed: a path without"
                    f" {SPARK_GLOB_CHARACTERS}"
                )
        if self.target == "aws":
            missing = [n for n in ("raw_path", "clean_path") if getattr(self, n) is None]
            if missing:
                names = ", ".join(f"MYSTORE_{n.upper()}" for n in missing)
                raise ValueError(f"target 'aws' needs {names} (s3:// URIs)")
        return self

    def check_clean_reports(self) -> None:
        """Before a night with clean steps (not on every read of the settings: the stop hooks
        and the resumer must still work): MYSTORE_ALLOW_EMPTY_INPUT on AWS needs the report
        path, since the clean job's report is the only place that says a day had no input;
        without it such a night would end as a plain success that loaded nothing."""
        if self.target == "aws" and self.allow_empty_input and self.glue_report_path is None:
            raise ValueError(
                "MYSTORE_ALLOW_EMPTY_INPUT=true on target 'aws' needs MYSTORE_GLUE_REPORT_PATH "
                "(an s3:// prefix the Glue job's role may write): the clean job's report is "
                "what tells a day without raw data from a day that loaded rows"
            )


def settings_glue_arguments(settings: Settings) -> dict[str, str]:
    """The clean job's arguments that come from settings, shared with the Step Functions
    export so both deployment targets start the job alike."""
    given = {
        "--raw_path": settings.raw_path,
        "--clean_path": settings.clean_path,
        "--quarantine_path": settings.quarantine_path,
        "--allow_empty_input": "true" if settings.allow_empty_input else None,
    }
    return {k: v for k, v in given.items() if v}
