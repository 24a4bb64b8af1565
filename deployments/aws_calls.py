"""What the two ``--deploy`` commands share: credentials checked before anything is
written, AWS's refusals as one line, and PutTargets' partial failures raised.

A deploy is a run of create-or-update calls, so one refused half-way is finished by running
the command again; the commands print each resource as it is done and, on a refusal, this
module's one line (the service's code, the operation and its message; botocore puts no
credential in them) instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError


class DeployError(Exception):
    """AWS refused a call or could not be reached; the message says which call and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


def describe_aws_error(exc: Exception) -> str:
    """One line for an AWS call's failure: the service's code and message, or botocore's."""
    if isinstance(exc, NoCredentialsError):
        return (
            "no AWS credentials found (the usual chain: AWS_PROFILE or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, an instance or task role)"
        )
    return str(exc)


def caller_account(session: boto3.session.Session) -> str:
    """The account of the session's credentials (STS GetCallerIdentity, which needs no
    permission): missing or rejected credentials are found before anything is written."""
    try:
        return str(session.client("sts").get_caller_identity()["Account"])
    except (BotoCoreError, ClientError) as exc:
        raise DeployError(describe_aws_error(exc)) from exc


def put_targets(events: Any, rule: str, targets: Sequence[Mapping[str, Any]]) -> None:
    """PutTargets, raising for a target it refused: it reports those in its answer instead
    of failing, so an unchecked call leaves a rule that sends nowhere."""
    answer = events.put_targets(Rule=rule, Targets=list(targets))
    if answer.get("FailedEntryCount"):
        failed = answer["FailedEntries"][0]
        raise DeployError(
            f"rule {rule}: target {failed.get('TargetId')} refused: "
            f"{failed.get('ErrorCode')}: {failed.get('ErrorMessage')}"
        )


__all__ = ["DeployError", "caller_account", "describe_aws_error", "put_targets"]
