"""The clean job's IAM role: Glue's trust and a least-privilege policy built from the
job's S3 paths, account and region (``GlueJobConfig``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deployments.glue_config import GlueJobConfig, split_s3


def _object_arns(uri: str) -> str:
    bucket, prefix = split_s3(uri, "path")
    return f"arn:aws:s3:::{bucket}/{prefix + '/' if prefix else ''}*"


def _list_statement(sid: str, uris: Sequence[str]) -> list[dict[str, Any]]:
    """ListBucket per bucket, limited to the prefixes the job uses."""
    prefixes: dict[str, list[str]] = {}
    for uri in uris:
        bucket, prefix = split_s3(uri, "path")
        prefixes.setdefault(bucket, []).extend([prefix, f"{prefix}/*"] if prefix else ["*"])
    return [
        {
            "Sid": f"{sid}{index}",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{bucket}",
            "Condition": {"StringLike": {"s3:prefix": sorted(set(values))}},
        }
        for index, (bucket, values) in enumerate(sorted(prefixes.items()))
    ]


def trust_policy() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "glue.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def job_policy(config: GlueJobConfig) -> dict[str, Any]:
    """Least privilege: read the artifacts and raw zone, write the clean, quarantine and
    report zones, sync one catalog database, write the job's own logs and metrics."""
    catalog = f"arn:aws:glue:{config.region}:{config.account_id}"
    database = config.catalog_database
    writable = [config.clean_path, config.quarantine_path, config.report_path]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadArtifactsAndRaw",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": [_object_arns(config.artifacts_s3), _object_arns(config.raw_path)],
            },
            {
                "Sid": "WriteCleanQuarantineReports",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": [_object_arns(uri) for uri in writable],
            },
            *_list_statement("ListJobPrefixes", [config.raw_path, *writable]),
            {
                "Sid": "HudiCatalogSync",
                "Effect": "Allow",
                "Action": [
                    "glue:GetDatabase",
                    "glue:CreateDatabase",
                    "glue:GetTable",
                    "glue:CreateTable",
                    "glue:UpdateTable",
                    "glue:GetPartition",
                    "glue:GetPartitions",
                    "glue:BatchGetPartition",
                    "glue:BatchCreatePartition",
                    "glue:BatchUpdatePartition",
                    "glue:BatchDeletePartition",
                ],
                "Resource": [
                    f"{catalog}:catalog",
                    f"{catalog}:database/{database}",
                    f"{catalog}:table/{database}/*",
                ],
            },
            {
                "Sid": "JobLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"arn:aws:logs:{config.region}:{config.account_id}:log-group:/aws-glue/*",
            },
            {
                "Sid": "JobMetrics",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": "Glue"}},
            },
        ],
    }
