"""What the Step Functions export needs to know beyond the pipeline: where it runs.

Built from the same ``MYSTORE_*`` settings the flow reads (``from_settings``), so the
exported machine talks to the same warehouse and passes the Glue job the same arguments.
Nothing secret is here: a Secrets Manager ARN names a secret, it is not one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from deployments.asl import AslBuildError
from tasks.jobs import MAX_SUBMIT_INTERVAL
from tasks.redshift_data.target import RedshiftTarget

if TYPE_CHECKING:
    from flows.settings import Settings

# Waiting between DescribeStatement calls grows with the time already waited: a tenth of
# it, at least MIN and at most MAX seconds. Step Functions bills every state transition, so
# a fixed short Wait would cost more than the original 30 s loop on long loads; this one
# notices a short statement within seconds and a 4-hour load within 5 minutes, at about a
# fifth of the original's transitions (bench/bench_sfn_transitions.py).
DEFAULT_MIN_POLL_SECONDS = 2
DEFAULT_MAX_POLL_SECONDS = 300
DEFAULT_POLL_GROWTH = 0.1
MAX_POLL_LIMIT = 3600
PLACEHOLDER_ACCOUNT_ID = "123456789012"  # AWS's documentation account, for export-only runs
_ACCOUNT_RE = re.compile(r"\d{12}")
_REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ROLE_RE = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
# EventBridge Scheduler's three forms; a cron has six fields and "?" in day-of-month or
# day-of-week. Checked here: AWS would refuse any other only at --deploy, after the export
# had written a schedule document that can never be created.
_SCHEDULE_RE = re.compile(
    r"at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)"
    r"|rate\([1-9]\d* (?:minutes?|hours?|days?)\)"
    r"|cron\(\S+ \S+ (?P<day_of_month>\S+) \S+ (?P<day_of_week>\S+) \S+\)"
)


class ExportSettingError(AslBuildError):
    """One export setting refused; ``setting`` names the field, so that a command line can
    name its own option or variable instead (``named``)."""

    def __init__(self, setting: str, value: object, allowed: str) -> None:
        super().__init__(setting, value, allowed)  # all three: it pickles and unpickles
        self.setting, self.value, self.allowed = setting, value, allowed

    def __str__(self) -> str:
        return self.named(self.setting)

    def named(self, name: str) -> str:
        return f"{name} {self.value!r} is invalid; allowed: {self.allowed}"


@dataclass(frozen=True)
class ExportConfig:
    target: RedshiftTarget
    region: str = "us-east-1"
    account_id: str = PLACEHOLDER_ACCOUNT_ID
    role_arn: str | None = None  # the machines' role; default: <name>-sfn in the account
    state_machine_name: str | None = None  # default: the pipeline's name
    schedule_expression: str = "cron(0 3 * * ? *)"  # 03:00 UTC, as prefect.yaml's nightly
    min_poll_seconds: int = DEFAULT_MIN_POLL_SECONDS
    max_poll_seconds: int = DEFAULT_MAX_POLL_SECONDS
    poll_growth: float = DEFAULT_POLL_GROWTH
    statement_timeout_seconds: float = 24 * 3600.0
    glue_arguments: dict[str, str] = field(default_factory=dict)  # zone paths, as the flow
    glue_report_path: str | None = None
    glue_worker_type: str | None = None
    glue_number_of_workers: int | None = None
    glue_timeout_minutes: int = 120
    # The first pause of a refused submit's Retry (MYSTORE_SUBMIT_RETRY_SECONDS, as the
    # flow's); None: a tenth of the step's retry delay, at least 1 s (1 s by default).
    submit_retry_seconds: float | None = None

    def __post_init__(self) -> None:
        retry = self.submit_retry_seconds
        if retry is not None and not 0 < retry <= MAX_SUBMIT_INTERVAL:
            raise ExportSettingError(
                "submit_retry_seconds",
                retry,
                f"more than 0, at most {MAX_SUBMIT_INTERVAL:g} (Step Functions rounds it up to"
                " whole seconds)",
            )
        if not _ACCOUNT_RE.fullmatch(self.account_id):
            raise ExportSettingError("account_id", self.account_id, "12 digits")
        if not _REGION_RE.fullmatch(self.region):
            raise ExportSettingError("region", self.region, "a region name like us-east-1")
        if self.role_arn is not None and not _ROLE_RE.fullmatch(self.role_arn):
            raise ExportSettingError(
                "role_arn", self.role_arn, "an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
            )
        if self.state_machine_name is not None and not _NAME_RE.fullmatch(self.state_machine_name):
            raise ExportSettingError(
                "state_machine_name", self.state_machine_name, "1-64 letters, digits, '_' and '-'"
            )
        schedule = _SCHEDULE_RE.fullmatch(self.schedule_expression)
        cron_days = schedule and (schedule["day_of_month"], schedule["day_of_week"])
        if schedule is None or (cron_days and None not in cron_days and "?" not in cron_days):
            raise ExportSettingError(
                "schedule_expression",
                self.schedule_expression,
                "cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>) with ? as"
                " day-of-month or day-of-week, rate(<n> minutes|hours|days) or"
                " at(yyyy-mm-ddThh:mm:ss), as EventBridge Scheduler takes them",
            )
        if not 1 <= self.min_poll_seconds <= MAX_POLL_LIMIT:
            raise ExportSettingError(
                "min_poll_seconds", self.min_poll_seconds, f"1 to {MAX_POLL_LIMIT} seconds"
            )
        if not self.min_poll_seconds <= self.max_poll_seconds <= MAX_POLL_LIMIT:
            raise ExportSettingError(
                "max_poll_seconds",
                self.max_poll_seconds,
                f"{self.min_poll_seconds} (the first wait) to {MAX_POLL_LIMIT} seconds",
            )
        if not 0 <= self.poll_growth <= 10:
            raise ExportSettingError("poll_growth", self.poll_growth, "0 to 10")

    def machine_name(self, pipeline_name: str) -> str:
        return self.state_machine_name or pipeline_name

    def machine_role(self, pipeline_name: str) -> str:
        return self.role_arn or (
            f"arn:aws:iam::{self.account_id}:role/{self.machine_name(pipeline_name)}-sfn"
        )

    def machine_arn(self, pipeline_name: str, suffix: str = "") -> str:
        name = self.machine_name(pipeline_name) + suffix
        return f"arn:aws:states:{self.region}:{self.account_id}:stateMachine:{name}"

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> ExportConfig:
        """The flow's AWS settings as an export configuration (``overrides`` win)."""
        from flows.settings import settings_glue_arguments

        if settings.target != "aws" and not (
            settings.cluster_identifier or settings.workgroup_name
        ):
            raise AslBuildError(
                "the export targets AWS: set MYSTORE_WORKGROUP_NAME or "
                "MYSTORE_CLUSTER_IDENTIFIER (with MYSTORE_DB_USER or MYSTORE_SECRET_ARN)"
            )
        if settings.allow_empty_input:
            # The flow tells an allowed empty day by the clean job's report and ends NoInput
            # (CLI exit 3); the machine has no such verdict, so an empty day would end as a
            # plain SUCCEEDED execution that loaded nothing.
            raise AslBuildError(
                "MYSTORE_ALLOW_EMPTY_INPUT=true is not exported: a Step Functions execution "
                "of a day without raw data would end SUCCEEDED having loaded nothing (the "
                "flow ends it NoInput). Export without it; run such deployments as the flow"
            )
        if settings.target != "aws":  # checked on validation for the aws target only
            try:
                settings.check_target_fields()
            except ValueError as exc:
                raise AslBuildError(str(exc)) from exc
        target = RedshiftTarget(
            database=settings.database,
            cluster_identifier=settings.cluster_identifier,
            workgroup_name=settings.workgroup_name,
            db_user=settings.db_user,
            secret_arn=settings.secret_arn,
        )
        values: dict[str, object] = {
            "target": target,
            "statement_timeout_seconds": settings.statement_timeout_seconds,
            "glue_arguments": settings_glue_arguments(settings),
            "glue_report_path": settings.glue_report_path,
            "glue_worker_type": settings.glue_worker_type,
            "glue_number_of_workers": settings.glue_number_of_workers,
            "glue_timeout_minutes": settings.glue_timeout_minutes,
        }
        if settings.region:
            values["region"] = settings.region
        if "submit_retry_seconds" in settings.model_fields_set:  # set by the user only
            values["submit_retry_seconds"] = settings.submit_retry_seconds
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
