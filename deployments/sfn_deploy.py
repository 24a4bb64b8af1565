"""``--deploy``: create or update the exported documents in an AWS account with boto3.

Idempotent: run it again after a pipeline change and every piece is updated in place
(roles' inline policies replaced, machines' definitions updated, rule and schedule put).
So a deploy that fails half-way is finished by running it again; ``deploy`` yields each
resource as it is done, for the command to show how far it got. The command asks
``aws_calls.caller_account`` first: the ARNs must name the credentials' account (documents
made for another would deploy roles whose policies grant nothing, then fail at the first
machine).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import boto3

from deployments.asl import to_json
from deployments.aws_calls import deploy_errors, put_targets
from deployments.eventbridge import CANCELLER_SUFFIX
from deployments.sfn_config import ExportConfig
from flows.pipeline import Pipeline

STATES_SERVICE = "states.amazonaws.com"
INVOKER_SERVICES = ["scheduler.amazonaws.com", "events.amazonaws.com"]


def _trust(service: str | list[str]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
            ],
        },
        sort_keys=True,
    )


def _ensure_role(iam: Any, arn: str, trust: str, policy: Mapping[str, Any]) -> str:
    name = arn.rsplit("/", 1)[-1]
    try:
        iam.get_role(RoleName=name)
    except iam.exceptions.NoSuchEntityException:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
    iam.put_role_policy(RoleName=name, PolicyName=f"{name}-policy", PolicyDocument=to_json(policy))
    return f"role {name}: policy put"


def _ensure_machine(sfn: Any, name: str, definition: Mapping[str, Any], role_arn: str) -> str:
    body = to_json(definition)
    arn = next(
        (
            m["stateMachineArn"]
            for page in sfn.get_paginator("list_state_machines").paginate()
            for m in page["stateMachines"]
            if m["name"] == name
        ),
        None,
    )
    if arn is None:
        arn = sfn.create_state_machine(
            name=name, definition=body, roleArn=role_arn, type="STANDARD"
        )["stateMachineArn"]
        return f"state machine {name}: created ({arn})"
    sfn.update_state_machine(stateMachineArn=arn, definition=body, roleArn=role_arn)
    return f"state machine {name}: updated ({arn})"


def deploy(
    pipeline: Pipeline,
    config: ExportConfig,
    documents: Mapping[str, Mapping[str, Any]],
    *,
    session: boto3.session.Session | None = None,
) -> Iterator[str]:
    """Create or update everything, yielding one line per resource as it is done; an AWS
    call that fails raises ``DeployError`` naming it (the resources yielded before it stay)."""
    session = session or boto3.session.Session(region_name=config.region)
    with deploy_errors():
        yield from _deploy(session, pipeline, config, documents)


def _deploy(
    session: boto3.session.Session,
    pipeline: Pipeline,
    config: ExportConfig,
    documents: Mapping[str, Mapping[str, Any]],
) -> Iterator[str]:
    iam, sfn = session.client("iam"), session.client("stepfunctions")
    events, scheduler = session.client("events"), session.client("scheduler")
    name = config.machine_name(pipeline.name)
    machine_role = config.machine_role(pipeline.name)
    schedule_doc = dict(documents[f"{name}-schedule.json"])
    rule_doc = documents[f"{name}-cancel-rule.json"]
    yield _ensure_role(iam, machine_role, _trust(STATES_SERVICE), documents[f"{name}-policy.json"])
    yield _ensure_role(
        iam,
        schedule_doc["Target"]["RoleArn"],
        _trust(INVOKER_SERVICES),
        documents[f"{name}-invoke-policy.json"],
    )
    yield _ensure_machine(sfn, name, documents[f"{name}.asl.json"], machine_role)
    yield _ensure_machine(
        sfn,
        name + CANCELLER_SUFFIX,
        documents[f"{name}{CANCELLER_SUFFIX}.asl.json"],
        machine_role,  # same identity: the Data API lets only the submitter cancel
    )
    events.put_rule(**rule_doc["Rule"])
    put_targets(events, rule_doc["Rule"]["Name"], rule_doc["Targets"])
    yield f"rule {rule_doc['Rule']['Name']}: put"
    try:
        scheduler.get_schedule(Name=schedule_doc["Name"])
    except scheduler.exceptions.ResourceNotFoundException:
        scheduler.create_schedule(**schedule_doc)
        yield f"schedule {schedule_doc['Name']}: created"
    else:
        scheduler.update_schedule(**schedule_doc)
        yield f"schedule {schedule_doc['Name']}: updated"
