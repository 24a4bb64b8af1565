"""What starts the nightly machine and what cleans up after an execution that did not end.

* An EventBridge Scheduler schedule starts the machine with ``scheduled_time``; the machine
  turns it into the logical date (the day before, as the flow's ``default_logical_date``).
* An EventBridge rule on "Step Functions Execution Status Change" (ABORTED, TIMED_OUT,
  FAILED) starts a small canceller machine: a stopped execution runs no Catch, and a failed
  Parallel branch stops its siblings mid-wait, so their statements would run on. The
  canceller lists the night's statements by name prefix and cancels those still running,
  with no fence for another live execution of the same night that reattached to one of
  them (the flow's stop path has one); docs/deployment.md lists this among the limits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from deployments.asl import Branch, Retrier, catch_all, jsonata_pass, succeed, task
from deployments.sfn_config import ExportConfig
from deployments.sfn_errors import THROTTLING, TRANSIENT
from deployments.sfn_steps import SDK
from tasks.jobs import night_prefix

SCHEDULE_INPUT = {"scheduled_time": "<aws.scheduler.scheduled-time>"}
ORPHAN_STATUSES = ("ABORTED", "TIMED_OUT", "FAILED")
CANCELLER_SUFFIX = "-canceller"

# The one expression both machines use to find the night; JSONPath cannot subtract a day.
LOGICAL_DATE_JSONATA = """
    $exists({inp}.logical_date) ? {inp}.logical_date
    : $fromMillis($toMillis({inp}.scheduled_time) - 86400000, '[Y0001]-[M01]-[D01]')
"""


def logical_date_expression(input_expression: str) -> str:
    return LOGICAL_DATE_JSONATA.format(inp=input_expression)


def canceller_definition(pipeline: str, where: Mapping[str, str]) -> dict[str, Any]:
    """ASL of the canceller: the execution's input -> night prefix -> cancel live statements
    on the warehouse ``where`` names (``RedshiftTarget.statement_filter()``)."""
    prefix = night_prefix(pipeline, "1970-01-01").replace("1970-01-01", "{}")
    branch = Branch("Find night")
    night = logical_date_expression("$parse($states.input.detail.input)")
    branch.add(
        "Find night",
        jsonata_pass(f"{{'logical_date': {night}}}", "List statements"),
    )
    branch.add(
        "List statements",
        task(
            SDK + "listStatements",
            parameters={
                **where,
                "StatementName.$": f"States.Format('{prefix}', $.logical_date)",
                "Status": "ALL",
            },
            result_selector={"Statements.$": "$.Statements"},
            result_path="$.listed",
            retry=[Retrier(THROTTLING + TRANSIENT, 2, 8, 2.0, 60)],
            next_state="Pick running",
        ),
    )
    branch.add(
        "Pick running",
        jsonata_pass(
            "{'ids': [$states.input.listed.Statements"
            "[Status in ['SUBMITTED', 'PICKED', 'STARTED']].Id]}",
            "Cancel each",
        ),
    )
    item = Branch("Cancel")
    item.add(
        "Cancel",
        task(
            SDK + "cancelStatement",
            parameters={"Id.$": "$"},
            result_path=None,
            retry=[Retrier(THROTTLING + TRANSIENT, 2, 8, 2.0, 60)],
            # it may have ended meanwhile: nothing left to cancel is success
            catch=[catch_all("Gone")],
            next_state=None,
        ),
    )
    item.add("Gone", succeed())
    processor = item.to_asl() | {"ProcessorConfig": {"Mode": "INLINE"}}
    branch.add(
        "Cancel each",
        {
            "Type": "Map",
            "ItemsPath": "$.ids",
            "MaxConcurrency": 5,
            "ItemProcessor": processor,
            "ResultPath": None,
            "End": True,
        },
    )
    return {
        "Comment": f"Cancel statements of a {pipeline} night whose execution stopped early",
        "QueryLanguage": "JSONPath",
        "TimeoutSeconds": 900,
        **branch.to_asl(),
    }


def schedule(pipeline: str, config: ExportConfig, role_arn: str) -> dict[str, Any]:
    """EventBridge Scheduler ``CreateSchedule`` request for the nightly execution."""
    return {
        "Name": config.machine_name(pipeline),
        "ScheduleExpression": config.schedule_expression,
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Description": f"start {pipeline}; the machine loads the day before scheduled_time",
        "Target": {
            "Arn": config.machine_arn(pipeline),
            "RoleArn": role_arn,
            "Input": json.dumps(SCHEDULE_INPUT, sort_keys=True),
            "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 3},
        },
    }


def cancel_rule(pipeline: str, config: ExportConfig, role_arn: str) -> dict[str, Any]:
    """EventBridge ``PutRule`` + ``PutTargets`` for the canceller."""
    name = config.machine_name(pipeline) + CANCELLER_SUFFIX
    return {
        "Rule": {
            "Name": name,
            "Description": f"cancel running statements of a {pipeline} execution that ended early",
            "State": "ENABLED",
            "EventPattern": json.dumps(
                {
                    "source": ["aws.states"],
                    "detail-type": ["Step Functions Execution Status Change"],
                    "detail": {
                        "status": list(ORPHAN_STATUSES),
                        "stateMachineArn": [config.machine_arn(pipeline)],
                    },
                },
                sort_keys=True,
            ),
        },
        "Targets": [
            {
                "Id": "canceller",
                "Arn": config.machine_arn(pipeline, CANCELLER_SUFFIX),
                "RoleArn": role_arn,
            }
        ],
    }


# --------------------------------------------------------------------------------------
# Suspend mode on AWS: the end of a statement or Glue run wakes the suspended Prefect run
# --------------------------------------------------------------------------------------

RESUME_HANDLER = "flows.resume_events.eventbridge_handler"
STATEMENT_END_STATES = ("ABORTED", "FAILED", "FINISHED")
GLUE_END_STATES = ("FAILED", "STOPPED", "SUCCEEDED", "TIMEOUT")


def resume_rules(
    name: str, pipelines: Sequence[str], glue_jobs: Sequence[str], function_arn: str
) -> dict[str, Any]:
    """EventBridge ``PutRule`` + ``PutTargets`` requests (and the Lambda permission) that send
    the end of each statement (submitted ``WithEvent``, as suspend mode does) and each Glue
    run of ``glue_jobs`` to the bridge ``flows.resume_events.eventbridge_handler``.

    Why a function and not an API destination straight to Prefect: the Data API event names
    the statement only, and the flow run waiting on it is found by its tag with a query to
    the Prefect API; an input transformer cannot do that lookup, and Prefect's
    ResumeFlowRun needs the flow run in the event. The function (the project image, or a
    package with ``prefect``) needs PREFECT_API_URL and PREFECT_API_KEY in its environment.
    """
    statement_names = [{"prefix": f"{pipeline}/"} for pipeline in sorted(pipelines)]
    rules = [
        (
            f"{name}-statement-ended",
            "resume the suspended Prefect run waiting on a statement that ended",
            {
                "source": ["aws.redshift-data"],
                "detail-type": ["Redshift Data Statement Status Change"],
                "detail": {"state": list(STATEMENT_END_STATES), "statementName": statement_names},
            },
        ),
        (
            f"{name}-glue-run-ended",
            "resume the suspended Prefect run waiting on a Glue job run that ended",
            {
                "source": ["aws.glue"],
                "detail-type": ["Glue Job State Change"],
                "detail": {"state": list(GLUE_END_STATES), "jobName": sorted(set(glue_jobs))},
            },
        ),
    ]
    documents: dict[str, Any] = {"Handler": RESUME_HANDLER, "Rules": []}
    for rule_name, description, pattern in rules:
        documents["Rules"].append(
            {
                "Rule": {
                    "Name": rule_name,
                    "Description": description,
                    "State": "ENABLED",
                    "EventPattern": json.dumps(pattern, sort_keys=True),
                },
                "Targets": [
                    {
                        "Id": "resume-events",
                        "Arn": function_arn,
                        "RetryPolicy": {
                            "MaximumEventAgeInSeconds": 3600,
                            "MaximumRetryAttempts": 10,
                        },
                    }
                ],
                "LambdaPermission": {
                    "FunctionName": function_arn,
                    "StatementId": f"{rule_name}-invoke",
                    "Action": "lambda:InvokeFunction",
                    "Principal": "events.amazonaws.com",
                    "SourceArn": function_arn.split(":function:")[0].replace(":lambda:", ":events:")
                    + f":rule/{rule_name}",
                },
            }
        )
    return documents
