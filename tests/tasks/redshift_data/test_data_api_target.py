from __future__ import annotations

import pytest

from tasks.redshift_data import InvalidRequestError, RedshiftTarget


def test_provisioned_with_db_user_fields() -> None:
    target = RedshiftTarget(database="dev", cluster_identifier="my-cluster", db_user="etl")
    assert target.request_fields() == {
        "Database": "dev",
        "ClusterIdentifier": "my-cluster",
        "DbUser": "etl",
    }
    assert not target.serverless


def test_serverless_with_and_without_secret() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:etl-AbCdEf"
    with_secret = RedshiftTarget(database="dev", workgroup_name="etl-wg", secret_arn=arn)
    assert with_secret.request_fields() == {
        "Database": "dev",
        "WorkgroupName": "etl-wg",
        "SecretArn": arn,
    }
    iam = RedshiftTarget(database="dev", workgroup_name="etl-wg")
    assert iam.request_fields() == {"Database": "dev", "WorkgroupName": "etl-wg"}
    assert iam.serverless


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cluster_identifier": "c1", "workgroup_name": "wg1", "db_user": "u"}, "exactly one"),
        ({}, "exactly one"),
        ({"cluster_identifier": "c1"}, "exactly one of db_user"),
        ({"cluster_identifier": "c1", "db_user": "u", "secret_arn": "s"}, "exactly one of db_user"),
        ({"workgroup_name": "wg1", "db_user": "u"}, "db_user is not accepted"),
        ({"cluster_identifier": "My_Cluster", "db_user": "u"}, "'My_Cluster' is invalid"),
        ({"workgroup_name": "w", "secret_arn": "s"}, "workgroup_name 'w' is invalid"),
        ({"cluster_identifier": "c1", "db_user": "  "}, "db_user must be a non-empty"),
    ],
)
def test_bad_targets_are_named(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        RedshiftTarget(database="dev", **kwargs)


def test_empty_database_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="database"):
        RedshiftTarget(database="", workgroup_name="wg1")
