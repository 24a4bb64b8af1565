"""Clients, target and paths for one run, built once from Settings and handed to steps.

This is where "local" and "aws" differ and the only place: the embedded default is just a
different endpoint URL in the environment, so flows and tasks keep one code path.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from flows.settings import Settings
from tasks.aws import aws_client
from tasks.redshift_data import RedshiftTarget, WaitPolicy

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient


@dataclass
class Runtime:
    settings: Settings
    redshift_data: RedshiftDataAPIServiceClient
    glue: GlueClient
    target: RedshiftTarget
    api_calls: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        credentials = _load_credentials(settings.aws_credentials_block)
        data = aws_client("redshift-data", credentials=credentials, region=settings.region)
        glue = aws_client("glue", credentials=credentials, region=settings.region)
        target = RedshiftTarget(
            database=settings.database,
            cluster_identifier=settings.cluster_identifier
            or ("local" if settings.target == "local" else None),
            workgroup_name=settings.workgroup_name,
            db_user=settings.db_user or ("awsuser" if settings.target == "local" else None),
            secret_arn=settings.secret_arn,
        )
        return cls.with_clients(settings, data, glue, target)

    @classmethod
    def with_clients(
        cls,
        settings: Settings,
        redshift_data: RedshiftDataAPIServiceClient,
        glue: GlueClient,
        target: RedshiftTarget,
    ) -> Runtime:
        """A runtime over given clients; every call they make is counted for the summary."""
        runtime = cls(settings=settings, redshift_data=redshift_data, glue=glue, target=target)
        for client in (redshift_data, glue):
            client.meta.events.register("before-call", runtime._count_call)
        return runtime

    def _count_call(self, model: Any, **_: Any) -> None:
        self.api_calls[model.name] += 1

    def wait_policy(self, step_timeout_seconds: float) -> WaitPolicy:
        """Long-poll waiting, bounded by the step's timeout and the settings' cap."""
        return WaitPolicy(
            timeout_seconds=min(step_timeout_seconds, self.settings.statement_timeout_seconds)
        )

    def glue_arguments(self, table_arguments: dict[str, str]) -> dict[str, str]:
        """The job's per-run arguments: the step's own plus the zone paths from settings."""
        paths = {
            "--raw_path": self.settings.raw_path,
            "--clean_path": self.settings.clean_path,
            "--quarantine_path": self.settings.quarantine_path,
        }
        return {**{k: v for k, v in paths.items() if v}, **table_arguments}


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
