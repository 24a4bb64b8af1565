"""Suspend mode's wake-up on AWS, as code: the EventBridge rules that send the end of every
statement and Glue run of the pipelines to the bridge function (``flows.resume_events``).

``python -m deployments.resume_events --function-arn ARN --out DIR`` writes
``<name>-resume-rules.json`` (byte-stable); ``--deploy`` also puts the rules and targets and
grants EventBridge the right to invoke the function, with boto3. The function itself (the
project's code with ``prefect``, handler ``flows.resume_events.eventbridge_handler``,
environment PREFECT_API_URL and PREFECT_API_KEY) is yours to create; nothing secret is
written here. Then install the automation once:
``python -m flows.resume_waiting --install-automation``.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3

from deployments.aws_calls import (
    DeployError,
    caller_account,
    deploy_errors,
    print_deployed,
    put_targets,
)
from deployments.eventbridge import resume_rules
from deployments.stepfunctions import write_and_list
from flows.pipeline import GlueStep, nightly_pipeline

PIPELINES = ("mystore-nightly", "mystore-history")
_FUNCTION_ARN_RE = re.compile(r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[\w-]{1,64}")
# A rule's name is the prefix plus "-statement-ended" (16), at most 64 characters; the
# Lambda permission's statement id adds "-invoke" and takes no dots.
_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,48}")


class ResumeRulesError(ValueError):
    """Arguments the rules cannot be built from; the message says what is allowed."""


def resume_documents(name: str, function_arn: str) -> dict[str, dict[str, Any]]:
    if not _NAME_RE.fullmatch(name):
        raise ResumeRulesError(
            f"--name {name!r} is invalid; allowed: 1-48 letters, digits, '_' and '-' (it "
            "begins each rule's name)"
        )
    if not _FUNCTION_ARN_RE.fullmatch(function_arn):
        raise ResumeRulesError(
            f"function ARN {function_arn!r} is invalid; expected "
            "arn:aws:lambda:<region>:<account>:function:<name>"
        )
    glue_jobs = [s.job_name for s in nightly_pipeline().steps if isinstance(s, GlueStep)]
    return {f"{name}-resume-rules.json": resume_rules(name, PIPELINES, glue_jobs, function_arn)}


def deploy(documents: dict[str, Any], events: Any, lambda_client: Any) -> Iterator[str]:
    """Put every rule and its target; grant the invoke permission (kept if it exists).
    Yields each rule's name as it is done; a refusal raises ``DeployError``."""
    for rule in documents["Rules"]:
        name = rule["Rule"]["Name"]
        with deploy_errors():
            events.put_rule(**rule["Rule"])
            put_targets(events, name, rule["Targets"])
            # a ResourceConflictException: granted by an earlier deploy
            with contextlib.suppress(lambda_client.exceptions.ResourceConflictException):
                lambda_client.add_permission(**rule["LambdaPermission"])
        yield name


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deployments.resume_events",
        description=(
            "Write (and with --deploy, put) the EventBridge rules that resume suspended "
            "Prefect runs when their statements and Glue runs end."
        ),
        epilog="Exit status: 0 written (and deployed), 1 when AWS refused the deploy or the "
        "file cannot be written, 2 for a bad argument.",
    )
    parser.add_argument("--function-arn", required=True, help="the bridge Lambda's ARN")
    parser.add_argument("--name", default="mystore", help="rule name prefix (%(default)s)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    parser.add_argument(
        "--deploy",
        action="store_true",
        help="also put them with boto3, in the function's region (AWS credentials)",
    )
    args = parser.parse_args(argv)
    try:
        documents = resume_documents(args.name, args.function_arn)
    except ResumeRulesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    session = boto3.session.Session(region_name=args.function_arn.split(":")[3])
    try:
        if args.deploy:  # credentials that do not work are named before a file is written
            caller_account(session)
    except DeployError as exc:
        print(f"error: cannot deploy, nothing written: {exc}", file=sys.stderr)
        return 1
    if (failed := write_and_list(documents, args.out)) or not args.deploy:
        return failed
    events, lambda_client = session.client("events"), session.client("lambda")
    return print_deployed(
        f"rule {rule}: put"
        for document in documents.values()
        for rule in deploy(document, events, lambda_client)
    )


if __name__ == "__main__":
    sys.exit(main())
