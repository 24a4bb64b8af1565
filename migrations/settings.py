"""Which warehouse a command talks to, from ``MYSTORE_*`` variables: only what reaching it needs.

Each command validates only the settings it uses. ``python -m migrations`` needs this much
and no more (no zone paths, no Glue job); the flows' ``Settings`` (``flows/settings.py``)
extend it with what a night needs. Secrets are not settings: on AWS, credentials come from
a prefect-aws ``AwsCredentials`` block (named by ``MYSTORE_AWS_CREDENTIALS_BLOCK``) or the
default chain, and the warehouse password from the Secrets Manager secret named by ARN.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tasks.redshift_data import RedshiftTarget

if TYPE_CHECKING:
    pass

_ARN_SECRET = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$"
)

Target = Literal["local", "aws"]
# The standard variable boto3 reads for the Data API endpoint; a command given it uses that
# endpoint instead of starting the embedded default.
ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_REDSHIFT_DATA"
# The embedded default's Data API answers for any cluster; these name its one warehouse.
LOCAL_CLUSTER, LOCAL_DB_USER = "local", "awsuser"
# botocore's standard mode retries throttling, 5xx and dropped connections; a retried
# submit reuses its ClientToken, so it cannot run a statement twice.


class WarehouseSettings(BaseSettings):
    """Where the warehouse is and how to reach it. Every field can be set as MYSTORE_<NAME>."""

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

    # Embedded default
    local_data_dir: Path = Field(
        Path(".local"), description="where the embedded stack keeps its data"
    )

    @model_validator(mode="after")
    def _check_warehouse(self) -> WarehouseSettings:
        if self.secret_arn is not None and not _ARN_SECRET.match(self.secret_arn):
            raise ValueError(
                f"MYSTORE_SECRET_ARN {self.secret_arn!r} is not a Secrets Manager ARN"
                " (arn:aws:secretsmanager:<region>:<account>:secret:<name>)"
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
            self.check_target_fields()
        return self

    def check_target_fields(self) -> None:
        """The block's own rules (identifier formats, exactly one of user or secret), checked
        on validation for the aws target (and by the Step Functions export for any): a bad
        MYSTORE_WORKGROUP_NAME otherwise surfaced inside the flow, after the Prefect server
        and the AWS checks, as a raw validation error of the block."""
        try:
            RedshiftTarget(
                database=self.database,
                cluster_identifier=self.cluster_identifier,
                workgroup_name=self.workgroup_name,
                db_user=self.db_user,
                secret_arn=self.secret_arn,
                region_name=self.region,
            )
        except ValidationError as exc:
            message = describe_validation_error(exc)
            raise ValueError(_IN_VARIABLE_NAMES.sub(_variable_name, message)) from None

    def warehouse_target(self, credentials: Any = None) -> RedshiftTarget:
        """The warehouse as an (unsaved) ``RedshiftTarget`` block: on the local target, the
        embedded warehouse's cluster and user. ``credentials`` (an ``AwsCredentials`` block)
        defaults to the block ``MYSTORE_AWS_CREDENTIALS_BLOCK`` names; without one the
        target's client uses the default chain. Its ``data_api_client()`` honours
        ``AWS_ENDPOINT_URL_REDSHIFT_DATA``."""
        local = self.target == "local"
        if credentials is None and self.aws_credentials_block is not None:
            from prefect_aws import AwsCredentials

            credentials = AwsCredentials.load(self.aws_credentials_block)
        return RedshiftTarget(
            database=self.database,
            cluster_identifier=self.cluster_identifier or (LOCAL_CLUSTER if local else None),
            workgroup_name=self.workgroup_name,
            db_user=self.db_user or (LOCAL_DB_USER if local else None),
            secret_arn=self.secret_arn,
            region_name=self.region,
            aws_credentials=credentials,
        )


# The block's field names as the settings' variables, wherever a message names one outside
# a quoted value (a value is shown as written: 'db_user-wg' stays as it is).
_IN_VARIABLE_NAMES = re.compile(
    r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
    r"|\b(RedshiftTarget\.)?(database|cluster_identifier|workgroup_name|db_user|secret_arn)\b"
)


def _variable_name(match: re.Match[str]) -> str:
    return match[1] or f"MYSTORE_{match[3].upper()}"


def data_api_endpoint(environ: Mapping[str, str] | None = None) -> str | None:
    """The endpoint ``AWS_ENDPOINT_URL_REDSHIFT_DATA`` names, or None when it is unset or empty."""
    value = (os.environ if environ is None else environ).get(ENDPOINT_VARIABLE, "").strip()
    return value or None


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, named by its MYSTORE_* variable and the value given when it
    belongs to one (no setting holds a secret: the password stays in Secrets Manager)."""
    parts = []
    for err in exc.errors():
        message = str(err["msg"]).removeprefix("Value error, ")
        field = ".".join(str(p) for p in err["loc"])
        if not field:
            parts.append(message)
            continue
        value = err.get("input")
        given = f" {_shown(value)}" if isinstance(value, str | int | float) else ""
        parts.append(f"MYSTORE_{field.upper()}{given}: {message}")
    return "; ".join(parts)


def _shown(value: str | int | float, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 4]}...{text[-1]}"
