"""Where statements run, as a Prefect block: save it once by name, load it in any flow.

A provisioned cluster or a Serverless workgroup, a database, how to authenticate to the
database (a db user's temporary credentials or a Secrets Manager secret ARN), the region
and, optionally, a prefect-aws ``AwsCredentials`` block for the AWS identity. Validated
when built, so a typo fails at flow start with a message naming the field. Nothing here is
secret but the credentials block's (prefect-aws keeps its secret key as a secret, but an
``aws_session_token`` as plain text, visible in the block's repr), so log a target's fields,
never the block with its credentials.

The client is built here, once per block instance (boto3 clients are thread-safe), through
``tasks.aws.aws_client``; like every boto3 client it honours
``AWS_ENDPOINT_URL_REDSHIFT_DATA``, which is how the embedded default points it at the
local endpoint.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

from prefect.blocks.core import Block
from prefect_aws import AwsCredentials
from pydantic import Field, PrivateAttr, model_validator

from tasks.aws import aws_client
from tasks.jobs import InvalidRequestError

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

_CLUSTER_RE = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_WORKGROUP_RE = re.compile(
    r"[a-z0-9-]{3,63}|arn:aws[a-z-]*:redshift-serverless:[a-z0-9-]+:\d{12}:workgroup/[a-z0-9/-]+"
)
_CLIENT_LOCK = threading.Lock()


class RedshiftTarget(Block):
    """A Redshift warehouse reached through the Data API.

    Exactly one of ``cluster_identifier`` / ``workgroup_name``. A cluster authenticates
    with exactly one of ``db_user`` (temporary credentials) or ``secret_arn``; a workgroup
    with ``secret_arn`` or, when omitted, the caller's IAM identity (``db_user`` is not
    accepted by Serverless).

    Example:
        ```python
        RedshiftTarget(workgroup_name="analytics", database="dev").save("warehouse")
        execute_statement("select 1", target=RedshiftTarget.load("warehouse"))
        ```
    """

    _block_type_name = "Redshift Target"
    _description = "A Redshift cluster or Serverless workgroup reached through the Data API."

    database: str = Field(description="database the statements run in")
    cluster_identifier: str | None = Field(None, description="provisioned cluster id")
    workgroup_name: str | None = Field(None, description="Serverless workgroup name or ARN")
    db_user: str | None = Field(None, description="database user (provisioned clusters)")
    secret_arn: str | None = Field(None, description="Secrets Manager ARN of db credentials")
    region_name: str | None = Field(None, description="AWS region; the default chain's if unset")
    aws_credentials: AwsCredentials | None = Field(
        None, description="AWS identity; boto3's default chain if unset"
    )

    _client: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> RedshiftTarget:
        for field in ("database", "cluster_identifier", "workgroup_name", "db_user", "secret_arn"):
            value = getattr(self, field)
            if value is not None and not value.strip():
                raise InvalidRequestError(f"RedshiftTarget.{field} must be a non-empty string")
        if (self.cluster_identifier is None) == (self.workgroup_name is None):
            raise InvalidRequestError(
                "RedshiftTarget needs exactly one of cluster_identifier (provisioned) or "
                f"workgroup_name (Serverless); got cluster_identifier={self.cluster_identifier!r}, "
                f"workgroup_name={self.workgroup_name!r}"
            )
        if self.cluster_identifier is not None:
            if len(self.cluster_identifier) > 63 or not _CLUSTER_RE.fullmatch(
                self.cluster_identifier
            ):
                raise InvalidRequestError(
                    f"cluster_identifier {self.cluster_identifier!r} is invalid; allowed: "
                    "1-63 lower-case letters, digits and single hyphens, starting with a letter"
                )
            if (self.db_user is None) == (self.secret_arn is None):
                raise InvalidRequestError(
                    "a provisioned cluster needs exactly one of db_user (temporary "
                    "credentials) or secret_arn (Secrets Manager)"
                )
        else:
            assert self.workgroup_name is not None
            if len(self.workgroup_name) > 128 or not _WORKGROUP_RE.fullmatch(self.workgroup_name):
                raise InvalidRequestError(
                    f"workgroup_name {self.workgroup_name!r} is invalid; allowed: 3-63 "
                    "lower-case letters, digits and hyphens, or a workgroup ARN"
                )
            if self.db_user is not None:
                raise InvalidRequestError(
                    "db_user is not accepted for a Serverless workgroup; use secret_arn or "
                    "the caller's IAM identity"
                )
        return self

    def request_fields(self) -> dict[str, str]:
        """The connection fields of ExecuteStatement / BatchExecuteStatement."""
        fields = {"Database": self.database}
        if self.cluster_identifier is not None:
            fields["ClusterIdentifier"] = self.cluster_identifier
        if self.workgroup_name is not None:
            fields["WorkgroupName"] = self.workgroup_name
        if self.db_user is not None:
            fields["DbUser"] = self.db_user
        if self.secret_arn is not None:
            fields["SecretArn"] = self.secret_arn
        return fields

    def statement_filter(self) -> dict[str, str]:
        """ListStatements' filter for this warehouse: its cluster or workgroup and database.

        ListStatements returns every statement the caller's IAM role ran, on any warehouse;
        a lookup by name alone would find the same night of another database's run."""
        fields = self.request_fields()
        return {
            k: fields[k] for k in ("ClusterIdentifier", "WorkgroupName", "Database") if k in fields
        }

    def scope(self) -> str:
        """A stable text naming the warehouse, mixed into client tokens."""
        where = self.cluster_identifier or self.workgroup_name
        return f"{where}/{self.database}"

    def data_api_client(self) -> RedshiftDataAPIServiceClient:
        """This target's ``redshift-data`` client, built on first use and then reused.

        One client per block instance: the Data API lets only the identity that submitted
        a statement describe it, so submit and poll must share one identity.
        """
        with _CLIENT_LOCK:
            if self._client is None:
                self._client = aws_client(
                    "redshift-data", credentials=self.aws_credentials, region=self.region_name
                )
            client: RedshiftDataAPIServiceClient = self._client
            return client
