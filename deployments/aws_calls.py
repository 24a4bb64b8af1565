"""What the deploy commands share (the Step Functions export's and the resume rules'
``--deploy``, the Glue job's ``apply``): credentials checked before anything is written or
changed, AWS's refusals as one line, and PutTargets' partial failures raised.

A deploy is a run of create-or-update calls, so one refused half-way is finished by running
the command again; the commands print each resource as it is done and, on a refusal, this
module's one line (the service's code, the operation and its message; botocore puts no
credential in them) instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
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


class AccountMismatchError(DeployError):
    """The credentials belong to another account than the one the documents name."""


def caller_account(session: boto3.session.Session, expected: str | None = None) -> str:
    """The account of the session's credentials (STS GetCallerIdentity, which needs no
    permission): missing or rejected credentials are found before anything is written, and
    documents naming ``expected`` are not deployed into another account."""
    with deploy_errors():
        account = str(session.client("sts").get_caller_identity()["Account"])
    if expected is not None and expected != account:
        raise AccountMismatchError(
            f"--account-id {expected} is not the account of these credentials ({account}); "
            "give that account's id or use its credentials"
        )
    return account


@contextmanager
def deploy_errors() -> Iterator[None]:
    """Inside it, an AWS call's failure (refused, or AWS not reached) is a ``DeployError``
    carrying its one line."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise DeployError(describe_aws_error(exc)) from exc


def print_deployed(lines: Iterable[str], *, verb: str = "deploy") -> int:
    """Print each resource as a deploy finishes it; a refusal half-way ends it with one line
    and how to finish. Returns the command's exit status."""
    try:
        for line in lines:
            print(line, flush=True)
    except DeployError as exc:
        print(
            f"error: cannot {verb}: {exc}\nRun the command again to finish (each step creates "
            "or updates; what is listed above is done).",
            file=sys.stderr,
        )
        return 1
    return 0


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


__all__ = [
    "AccountMismatchError",
    "DeployError",
    "caller_account",
    "deploy_errors",
    "describe_aws_error",
    "print_deployed",
    "put_targets",
]
