"""The export's IAM policies: least privilege for the machines' role, and the role that
starts them (the Scheduler's and the cancel rule's).

Built from the same pipeline and ``ExportConfig`` as the machine, so a step added to
``flows/pipeline.py`` gets its permissions with it (a Glue step its job's run actions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deployments.sfn_config import ExportConfig
from flows.pipeline import GlueStep, Pipeline


def iam_policy(pipeline: Pipeline, config: ExportConfig) -> dict[str, Any]:
    """The machines' role: only the Data API calls, credentials and Glue jobs they use."""
    region, account, target = config.region, config.account_id, config.target
    statements: list[dict[str, Any]] = []
    if target.cluster_identifier:
        warehouse = f"arn:aws:redshift:{region}:{account}:cluster:{target.cluster_identifier}"
    else:
        # ExecuteStatement takes the workgroup's ARN, which holds its id, not its name.
        warehouse = f"arn:aws:redshift-serverless:{region}:{account}:workgroup/*"
    statements.append(
        {
            "Sid": "SubmitToTheWarehouse",
            "Effect": "Allow",
            "Action": ["redshift-data:ExecuteStatement"],
            "Resource": [warehouse],
        }
    )
    # Any statement, not only the caller's: a statement's owner is the IAM session that
    # submitted it (for a role, aws:userid is "ROLEID:session-name"), and the canceller and a
    # second execution of the night (which reattaches to attempt N by name) run under other
    # sessions of this role. The Redshift Management Guide: to reach statements of others
    # in the same role, write the policy without the statement-owner-iam-userid condition.
    # Resource "*" is all these actions support. The machines never fetch rows (a check
    # reads DescribeStatement's ResultRows), so GetStatementResult is not granted.
    statements.append(
        {
            "Sid": "DescribeOrCancelAnyStatement",
            "Effect": "Allow",
            "Action": ["redshift-data:CancelStatement", "redshift-data:DescribeStatement"],
            "Resource": ["*"],
        }
    )
    statements.append(
        {
            "Sid": "FindAttempts",
            "Effect": "Allow",
            "Action": ["redshift-data:ListStatements"],
            "Resource": ["*"],
        }
    )
    if target.db_user:
        assert target.cluster_identifier is not None
        base = f"arn:aws:redshift:{region}:{account}"
        statements.append(
            {
                "Sid": "TemporaryCredentials",
                "Effect": "Allow",
                "Action": ["redshift:GetClusterCredentials"],
                "Resource": [
                    f"{base}:dbuser:{target.cluster_identifier}/{target.db_user}",
                    f"{base}:dbname:{target.cluster_identifier}/{target.database}",
                ],
            }
        )
    elif target.secret_arn:
        statements.append(
            {
                "Sid": "WarehouseSecret",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": [target.secret_arn],
            }
        )
    else:
        statements.append(
            {
                "Sid": "ServerlessCredentials",
                "Effect": "Allow",
                "Action": ["redshift-serverless:GetCredentials"],
                "Resource": [warehouse],
            }
        )
    jobs = sorted({s.job_name for s in pipeline.steps if isinstance(s, GlueStep)})
    if jobs:
        statements.append(
            {
                "Sid": "CleanJobRuns",
                "Effect": "Allow",
                "Action": [
                    "glue:BatchStopJobRun",
                    "glue:GetJobRun",
                    "glue:GetJobRuns",
                    "glue:StartJobRun",
                ],
                "Resource": [f"arn:aws:glue:{region}:{account}:job/{job}" for job in jobs],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def start_policy(arns: Sequence[str]) -> dict[str, Any]:
    """The Scheduler's / the rule's role: start exactly these machines."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["states:StartExecution"], "Resource": list(arns)}
        ],
    }


def invoker_role(config: ExportConfig, pipeline: Pipeline) -> str:
    return f"arn:aws:iam::{config.account_id}:role/{config.machine_name(pipeline.name)}-invoke"
