"""The target block: validated fields, its request fields, its client, saved and loaded."""

from __future__ import annotations

import uuid

import pytest
from prefect_aws import AwsCredentials

from tasks.redshift_data import RedshiftTarget
from tests.conftest import PrefectApi


def test_provisioned_with_db_user_fields() -> None:
    target = RedshiftTarget(database="dev", cluster_identifier="my-cluster", db_user="etl")
    assert target.request_fields() == {
        "Database": "dev",
        "ClusterIdentifier": "my-cluster",
        "DbUser": "etl",
    }


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
    with pytest.raises(ValueError, match=message):
        RedshiftTarget(database="dev", **kwargs)


def test_empty_database_rejected() -> None:
    with pytest.raises(ValueError, match="database"):
        RedshiftTarget(database="", workgroup_name="wg1")


def test_the_client_honours_the_standard_endpoint_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """How the embedded default reaches the local endpoint: no ``if local`` anywhere."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_REDSHIFT_DATA", "http://127.0.0.1:9")
    target = RedshiftTarget(database="dev", workgroup_name="etl-wg", region_name="eu-west-1")
    client = target.data_api_client()
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert client.meta.region_name == "eu-west-1"
    assert target.data_api_client() is client  # one client (one identity) per target


def test_the_credentials_block_supplies_the_identity() -> None:
    creds = AwsCredentials(
        aws_access_key_id="AKIDBLOCK",
        aws_secret_access_key="block-secret-value",
        region_name="eu-west-3",
    )
    target = RedshiftTarget(database="dev", workgroup_name="etl-wg", aws_credentials=creds)
    client = target.data_api_client()
    assert client.meta.region_name == "eu-west-3"
    assert client._request_signer._credentials.access_key == "AKIDBLOCK"  # type: ignore[attr-defined]
    assert "block-secret-value" not in repr(target)


def test_a_target_is_saved_and_loaded_by_name(prefect_settings: PrefectApi) -> None:
    name = f"warehouse-{uuid.uuid4().hex[:8]}"
    creds = AwsCredentials(aws_access_key_id="AKIDBLOCK", aws_secret_access_key="s3cr3t")
    RedshiftTarget(
        database="dev",
        cluster_identifier="mystore-dw",
        db_user="etl",
        region_name="eu-west-1",
        aws_credentials=creds,
    ).save(name)
    loaded = RedshiftTarget.load(name)
    assert loaded.request_fields() == {
        "Database": "dev",
        "ClusterIdentifier": "mystore-dw",
        "DbUser": "etl",
    }
    assert loaded.region_name == "eu-west-1"
    assert loaded.aws_credentials is not None
    assert loaded.aws_credentials.aws_secret_access_key is not None
    assert loaded.aws_credentials.aws_secret_access_key.get_secret_value() == "s3cr3t"
