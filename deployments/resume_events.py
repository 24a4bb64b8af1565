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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deployments.asl import to_json
from deployments.eventbridge import resume_rules
from flows.pipeline import GlueStep, nightly_pipeline

PIPELINES = ("mystore-nightly", "mystore-history")
_FUNCTION_ARN_RE = re.compile(r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[\w-]{1,64}")


class ResumeRulesError(ValueError):
    """Arguments the rules cannot be built from; the message says what is allowed."""


def resume_documents(name: str, function_arn: str) -> dict[str, dict[str, Any]]:
    if not _FUNCTION_ARN_RE.fullmatch(function_arn):
        raise ResumeRulesError(
            f"function ARN {function_arn!r} is invalid; expected "
            "arn:aws:lambda:<region>:<account>:function:<name>"
        )
    glue_jobs = [s.job_name for s in nightly_pipeline().steps if isinstance(s, GlueStep)]
    return {f"{name}-resume-rules.json": resume_rules(name, PIPELINES, glue_jobs, function_arn)}


def deploy(documents: dict[str, Any], events: Any, lambda_client: Any) -> list[str]:
    """Put every rule and its target; grant the invoke permission (kept if it exists)."""
    names = []
    for rule in documents["Rules"]:
        events.put_rule(**rule["Rule"])
        events.put_targets(Rule=rule["Rule"]["Name"], Targets=rule["Targets"])
        # a ResourceConflictException: granted by an earlier deploy
        with contextlib.suppress(lambda_client.exceptions.ResourceConflictException):
            lambda_client.add_permission(**rule["LambdaPermission"])
        names.append(rule["Rule"]["Name"])
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deployments.resume_events",
        description=(
            "Write (and with --deploy, put) the EventBridge rules that resume suspended "
            "Prefect runs when their statements and Glue runs end."
        ),
    )
    parser.add_argument("--function-arn", required=True, help="the bridge Lambda's ARN")
    parser.add_argument("--name", default="mystore", help="rule name prefix (%(default)s)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    parser.add_argument("--deploy", action="store_true", help="also put them with boto3")
    args = parser.parse_args(argv)
    try:
        documents = resume_documents(args.name, args.function_arn)
    except ResumeRulesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for file_name, document in sorted(documents.items()):
        (args.out / file_name).write_text(to_json(document), encoding="utf-8")
        print(args.out / file_name)
    if args.deploy:
        import boto3

        region = args.function_arn.split(":")[3]
        for document in documents.values():
            deploy(
                document,
                boto3.client("events", region_name=region),
                boto3.client("lambda", region_name=region),
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
