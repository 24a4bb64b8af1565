"""The Step Functions export: the flow's pipeline definition as a state machine and its kin.

``python -m deployments.stepfunctions --out DIR`` writes, byte-stable (sorted keys):

* ``<name>.asl.json``: the machine (``export_definition``); layers of the pipeline in
  order, a layer of several steps as one Parallel state;
* ``<name>-canceller.asl.json``, ``<name>-cancel-rule.json``: cancel what an execution
  left running when it was stopped, timed out or failed;
* ``<name>-schedule.json``: the EventBridge Scheduler schedule;
* ``<name>-policy.json``: the least-privilege policy of the machines' role (``sfn_iam``);
* ``<name>-invoke-policy.json``: the schedule's and the rule's role, which starts them.

``--deploy`` also creates or updates them with boto3 (roles, policies, machines, rule,
schedule), for the account of the credentials (``aws_calls.caller_account``, asked before
a file is written). Where the export cannot express a pipeline faithfully it raises
``AslBuildError`` naming what and why, and writes nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deployments.asl import AslBuildError, Branch, choice, fail, jsonata_pass, parallel, to_json
from deployments.eventbridge import (
    CANCELLER_SUFFIX,
    cancel_rule,
    canceller_definition,
    logical_date_expression,
    schedule,
)
from deployments.sfn_config import PLACEHOLDER_ACCOUNT_ID, ExportConfig, ExportSettingError
from deployments.sfn_iam import iam_policy, invoker_role, start_policy
from deployments.sfn_steps import add_step, step_timeout_seconds
from flows.pipeline import Pipeline, Step

START = "Resolve logical date"
CHECK_DATE = "Check logical date"
BAD_DATE = "Invalid logical date"
DONE = "Night succeeded"
MAX_EXECUTION_SECONDS = 365 * 24 * 3600  # Standard workflows run at most one year


def _layer_branch(step: Step, pipeline: Pipeline, config: ExportConfig) -> Branch:
    end = f"{step.name}: succeeded"
    branch = Branch("")
    branch.start_at = add_step(branch, step, pipeline.name, config, end)
    branch.add(end, {"Type": "Succeed"})
    return branch


def execution_timeout_seconds(pipeline: Pipeline, config: ExportConfig) -> int:
    """The longest path through the layers, each layer bounded by its slowest step."""
    total = sum(max(step_timeout_seconds(s, config) for s in layer) for layer in pipeline.layers())
    # a step's wait starts after its submit and retries: give each layer ten minutes more
    total += 600 * len(pipeline.layers())
    if total > MAX_EXECUTION_SECONDS:
        raise AslBuildError(
            f"pipeline {pipeline.name!r} may run {total} s, longer than a Standard workflow "
            f"may ({MAX_EXECUTION_SECONDS} s); lower the steps' wait.timeout_seconds"
        )
    return total


def export_definition(pipeline: Pipeline, config: ExportConfig) -> dict[str, Any]:
    """The state machine for ``pipeline``, as a plain dict."""
    layers = pipeline.layers()
    if not layers:
        raise AslBuildError(f"pipeline {pipeline.name!r} has no steps: nothing to export")
    main = Branch(START)
    main.add(
        START,
        jsonata_pass(
            f"{{'logical_date': {logical_date_expression('$states.input')}}}",
            CHECK_DATE,
            comment="input {logical_date: YYYY-MM-DD}, or {scheduled_time} (the day before)",
        ),
    )
    first = [f"layer {i + 1}" if len(layer) > 1 else "" for i, layer in enumerate(layers)]
    # Build from the last layer backwards so each knows where it goes next.
    following = DONE
    for index in range(len(layers) - 1, -1, -1):
        layer = layers[index]
        if len(layer) == 1:
            following = add_step(main, layer[0], pipeline.name, config, following)
            continue
        name = f"{first[index]}: {len(layer)} steps in parallel"
        main.add(
            name,
            parallel(
                [_layer_branch(s, pipeline, config) for s in layer],
                following,
                comment=", ".join(s.name for s in layer),
            ),
        )
        following = name
    main.add(
        CHECK_DATE,
        choice(
            [
                {"Variable": "$.logical_date", "IsPresent": False, "Next": BAD_DATE},
                {
                    "And": [
                        {"Variable": "$.logical_date", "IsString": True},
                        {"Variable": "$.logical_date", "StringMatches": "*-*-*"},
                    ],
                    "Next": following,
                },
            ],
            BAD_DATE,
        ),
    )
    main.add(
        BAD_DATE,
        fail(
            error="Input.InvalidLogicalDate",
            cause='start the execution with {"logical_date": "YYYY-MM-DD"} or '
            '{"scheduled_time": "<ISO timestamp>"}',
        ),
    )
    main.add(DONE, {"Type": "Succeed"})
    return {
        "Comment": f"{pipeline.name}: exported from flows/pipeline.py by deployments.stepfunctions",
        "QueryLanguage": "JSONPath",
        "TimeoutSeconds": execution_timeout_seconds(pipeline, config),
        **main.to_asl(),
    }


def export_documents(pipeline: Pipeline, config: ExportConfig) -> dict[str, dict[str, Any]]:
    """File name -> document: everything ``--out`` writes."""
    name = config.machine_name(pipeline.name)
    invoker = invoker_role(config, pipeline)
    return {
        f"{name}.asl.json": export_definition(pipeline, config),
        f"{name}{CANCELLER_SUFFIX}.asl.json": canceller_definition(
            pipeline.name, config.target.statement_filter()
        ),
        f"{name}-policy.json": iam_policy(pipeline, config),
        f"{name}-invoke-policy.json": start_policy(
            [config.machine_arn(pipeline.name), config.machine_arn(pipeline.name, CANCELLER_SUFFIX)]
        ),
        f"{name}-schedule.json": schedule(pipeline.name, config, invoker),
        f"{name}-cancel-rule.json": cancel_rule(pipeline.name, config, invoker),
    }


def write_documents(documents: Mapping[str, Mapping[str, Any]], out: Path) -> list[Path]:
    """Each file whole or not at all (written beside, then renamed over the old one)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, document in sorted(documents.items()):
        path = out / file_name
        partial = path.with_name(f".{file_name}.partial")
        try:
            partial.write_text(to_json(document), encoding="utf-8")
        except OSError:  # a full disk: no half file left beside the whole ones
            partial.unlink(missing_ok=True)
            raise
        partial.replace(path)
        written.append(path)
    return written


def write_and_list(documents: Mapping[str, Mapping[str, Any]], out: Path) -> int:
    """Write the documents and print each path: 0, or 1 with one line naming the folder that
    cannot take them (a command's exit status)."""
    try:
        written = write_documents(documents, out)
    except OSError as exc:
        print(f"error: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deployments.stepfunctions",
        description=(
            "Export the nightly pipeline (flows/pipeline.py) as an AWS Step Functions state "
            "machine, with its canceller, IAM policies, EventBridge Scheduler schedule and "
            "cancel rule. The warehouse and Glue settings come from the same MYSTORE_* "
            "variables the flow reads (MYSTORE_WORKGROUP_NAME or MYSTORE_CLUSTER_IDENTIFIER "
            "with MYSTORE_DB_USER / MYSTORE_SECRET_ARN, MYSTORE_DATABASE, MYSTORE_*_PATH, ...)."
        ),
        epilog=(
            'Start an execution with {"logical_date": "YYYY-MM-DD"}; the schedule passes '
            '{"scheduled_time": ...} and the machine loads the day before. Exit status: 0 '
            "written (and deployed), 1 when AWS refused the deploy or the files cannot be "
            "written, 2 when the pipeline or settings cannot be exported."
        ),
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="where to write the documents"
    )
    parser.add_argument(
        "--account-id",
        help="AWS account of the ARNs, 12 digits (default: with --deploy the credentials' "
        f"account, else the placeholder {PLACEHOLDER_ACCOUNT_ID})",
    )
    parser.add_argument("--region", help="AWS region (default: MYSTORE_REGION, else us-east-1)")
    parser.add_argument(
        "--role-arn", help="the machines' IAM role (default: <name>-sfn in the account)"
    )
    parser.add_argument(
        "--name", help="state machine name (default: the pipeline's, mystore-nightly)"
    )
    parser.add_argument(
        "--schedule",
        default="cron(0 3 * * ? *)",
        help="EventBridge Scheduler expression, UTC (default: %(default)s, as prefect.yaml)",
    )
    parser.add_argument(
        "--max-poll-seconds",
        type=int,
        default=None,
        help="longest wait between DescribeStatement calls (default 300; the wait grows as a "
        "tenth of the time already waited, from 2 s)",
    )
    parser.add_argument(
        "--deploy",
        action="store_true",
        help="also create or update roles, machines, rule and schedule with boto3 (AWS credentials)",
    )
    return parser


# Where the command line takes each setting the export may refuse (ExportSettingError).
OPTIONS = {
    "account_id": "--account-id",
    "region": "--region",
    "role_arn": "--role-arn",
    "state_machine_name": "--name",
    "schedule_expression": "--schedule",
    "max_poll_seconds": "--max-poll-seconds",
    "submit_retry_seconds": "MYSTORE_SUBMIT_RETRY_SECONDS",
}


def config_from_args(args: argparse.Namespace) -> ExportConfig:
    from flows.settings import Settings

    overrides: dict[str, object] = {"schedule_expression": args.schedule}
    for key, value in (
        ("account_id", args.account_id),
        ("region", args.region),
        ("role_arn", args.role_arn),
        ("state_machine_name", args.name),
        ("max_poll_seconds", args.max_poll_seconds),
    ):
        if value is not None:
            overrides[key] = value
    return ExportConfig.from_settings(Settings(), **overrides)


def _refusal(exc: AslBuildError | ValueError, args: argparse.Namespace) -> str:
    if not isinstance(exc, ExportSettingError):
        return str(exc)
    option = OPTIONS.get(exc.setting, exc.setting)
    if exc.setting == "region" and args.region is None:
        option = "MYSTORE_REGION"
    return exc.named(option)


def _deployable(config: ExportConfig, args: argparse.Namespace) -> tuple[ExportConfig, Any]:
    """The config for the credentials' account, and the session to deploy with."""
    import boto3

    from deployments.aws_calls import caller_account

    session = boto3.session.Session(region_name=config.region)
    account = caller_account(session, args.account_id)
    return dataclasses.replace(config, account_id=account), session


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pydantic import ValidationError

    from deployments.aws_calls import AccountMismatchError, DeployError, print_deployed
    from deployments.sfn_deploy import deploy
    from flows.pipeline import nightly_pipeline
    from flows.settings import Settings
    from migrations.settings import describe_validation_error

    session = None
    try:
        config = config_from_args(args)
        if args.deploy:  # before a file is written: the ARNs name the credentials' account
            config, session = _deployable(config, args)
        pipeline = nightly_pipeline(Settings().glue_job_name)
        documents = export_documents(pipeline, config)
    except ValidationError as exc:
        print(f"error: cannot export: {describe_validation_error(exc)}", file=sys.stderr)
        return 2
    except (AslBuildError, ValueError) as exc:
        print(f"error: cannot export: {_refusal(exc, args)}", file=sys.stderr)
        return 2
    except DeployError as exc:
        print(f"error: cannot deploy, nothing written: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, AccountMismatchError) else 1
    if write_and_list(documents, args.out):
        return 1
    if args.account_id is None and not args.deploy:
        print(
            f"note: the ARNs name the placeholder account {PLACEHOLDER_ACCOUNT_ID}; pass "
            "--account-id (or --deploy, which takes the credentials' account)",
            file=sys.stderr,
        )
    if not args.deploy:
        return 0
    return print_deployed(deploy(pipeline, config, documents, session=session))


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["export_definition", "export_documents", "iam_policy", "main"]
