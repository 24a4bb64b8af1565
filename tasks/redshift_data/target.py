"""Where statements run: a provisioned cluster or a Serverless workgroup, and a database.

Validated when built, so a typo in a deployment's settings fails at flow start with a
message naming the field, not minutes later inside boto3. Region and credentials belong to
the client (``tasks.aws.aws_client``), not here: a target is safe to log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tasks.redshift_data.errors import InvalidRequestError

_CLUSTER_RE = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_WORKGROUP_RE = re.compile(
    r"[a-z0-9-]{3,63}|arn:aws[a-z-]*:redshift-serverless:[a-z0-9-]+:\d{12}:workgroup/[a-z0-9/-]+"
)


@dataclass(frozen=True)
class RedshiftTarget:
    """Exactly one of ``cluster_identifier`` / ``workgroup_name``.

    A cluster authenticates with exactly one of ``db_user`` (temporary credentials) or
    ``secret_arn``; a workgroup with ``secret_arn`` or, when omitted, the caller's IAM
    identity. ``db_user`` is not accepted by Serverless.
    """

    database: str
    cluster_identifier: str | None = None
    workgroup_name: str | None = None
    db_user: str | None = None
    secret_arn: str | None = None

    def __post_init__(self) -> None:
        for field in ("database", "cluster_identifier", "workgroup_name", "db_user", "secret_arn"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InvalidRequestError(f"RedshiftTarget.{field} must be a non-empty string")
        if self.database is None:
            raise InvalidRequestError("RedshiftTarget.database is required")
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

    @property
    def serverless(self) -> bool:
        return self.workgroup_name is not None

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

    def scope(self) -> str:
        """A stable text naming the warehouse, mixed into client tokens."""
        where = self.cluster_identifier or self.workgroup_name
        return f"{where}/{self.database}"
