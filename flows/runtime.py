"""Clients, target and paths for one run, built once from Settings and handed to steps.

This is where "local" and "aws" differ and the only place: the embedded default is just a
different endpoint URL in the environment, so flows and tasks keep one code path.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from flows.preflight import check_data_api_access, check_region_and_credentials
from flows.settings import Settings, settings_glue_arguments
from tasks.aws import aws_client, aws_session
from tasks.glue.runner import DEFAULT_POLL as DEFAULT_GLUE_POLL
from tasks.jobs import Logger
from tasks.redshift_data import RedshiftTarget, WaitPolicy

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

log = logging.getLogger(__name__)


def target_from_settings(settings: Settings, credentials: Any = None) -> RedshiftTarget:
    """The warehouse as an (unsaved) ``RedshiftTarget`` block built from MYSTORE_* settings
    (the migrations' settings build it; the nightly's extend them)."""
    return settings.warehouse_target(credentials)


@dataclass
class Runtime:
    """The target block the Data API tasks get, the Glue client, and a count of API calls."""

    settings: Settings
    target: RedshiftTarget
    glue: GlueClient
    api_calls: Counter[str] = field(default_factory=Counter)
    credentials: Any = None  # the prefect-aws AwsCredentials block, when one is configured

    @property
    def redshift_data(self) -> RedshiftDataAPIServiceClient:
        """The target's own client: the one the tasks use (one identity submits and polls)."""
        return self.target.data_api_client()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, check_access: bool = False, logger: Logger | None = None
    ) -> Runtime:
        """The runtime of ``settings``. ``check_access`` (a night's start, not its stop hooks)
        makes sure, on the AWS target, that a region and working credentials exist before
        any step runs (``flows.preflight``); the local target skips it."""
        check = check_access and settings.target == "aws"
        credentials = _load_credentials(settings.aws_credentials_block)
        if check:
            check_region_and_credentials(settings, credentials)
        glue = aws_client("glue", credentials=credentials, region=settings.region)
        runtime = cls.with_clients(settings, target_from_settings(settings, credentials), glue)
        runtime.credentials = credentials
        if check:
            check_data_api_access(runtime.target, logger or log)
        return runtime

    @classmethod
    def with_clients(cls, settings: Settings, target: RedshiftTarget, glue: GlueClient) -> Runtime:
        """A runtime over a target and a Glue client; every call the target's Data API
        client and the Glue client make is counted for the summary."""
        runtime = cls(settings=settings, target=target, glue=glue)
        for client in (target.data_api_client(), glue):
            client.meta.events.register("before-call", runtime._count_call)
        return runtime

    def read_s3(self, bucket: str, key: str) -> bytes:
        """One S3 object (the clean job's report), read as the run's own AWS identity."""
        s3 = aws_session(self.credentials, self.settings.region).client("s3")
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def _count_call(self, model: Any, **_: Any) -> None:
        self.api_calls[model.name] += 1

    def wait_policy(self, step_timeout_seconds: float) -> WaitPolicy:
        """Long-poll waiting, bounded by the step's timeout and the settings' cap; a refused
        submit is paced by ``submit_retry_seconds``."""
        return WaitPolicy(
            timeout_seconds=min(step_timeout_seconds, self.settings.statement_timeout_seconds),
            submit_interval=self.settings.submit_retry_seconds,
        )

    def glue_poll_policy(self) -> WaitPolicy:
        """How often a Glue run is polled: the task's default, capped by the settings (a
        local endpoint answers in a millisecond, so the embedded default polls every 0.5 s
        and notices a run's end that much sooner; real Glue keeps 5 s)."""
        cap = self.settings.glue_poll_max_seconds
        return replace(
            DEFAULT_GLUE_POLL,
            initial_interval=min(DEFAULT_GLUE_POLL.initial_interval, cap),
            max_interval=cap,
        )

    def glue_arguments(self, table_arguments: dict[str, str]) -> dict[str, str]:
        """The job's per-run arguments: the step's own plus the zone paths from settings, and
        ``--allow_empty_input true`` when the deployment allows a day without raw data (else
        the job's own default, which fails such a day)."""
        return {**settings_glue_arguments(self.settings), **table_arguments}


def _load_credentials(block_name: str | None) -> Any:
    if block_name is None:
        return None
    from prefect_aws import AwsCredentials

    return AwsCredentials.load(block_name)


def default_logical_date(now: datetime | None = None) -> date:
    """The day before the scheduled start, so a late or retried run keeps its night."""
    if now is None:
        from prefect.runtime import flow_run

        scheduled = flow_run.scheduled_start_time
        now = scheduled if isinstance(scheduled, datetime) else datetime.now(UTC)
    return (now.astimezone(UTC) - timedelta(days=1)).date()
