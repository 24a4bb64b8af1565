"""The warehouse settings: all ``python -m migrations`` validates, and the base of the flows'."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from flows.settings import Settings
from migrations.settings import WarehouseSettings, data_api_endpoint


@pytest.fixture(autouse=True)
def _no_mystore_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("MYSTORE_"):
            monkeypatch.delenv(key)


def test_a_workgroup_is_enough_for_migrations_but_not_for_a_night() -> None:
    warehouse = WarehouseSettings(target="aws", workgroup_name="mystore-wg")
    assert warehouse.warehouse_target().request_fields() == {
        "Database": "dev",
        "WorkgroupName": "mystore-wg",
    }
    with pytest.raises(ValidationError, match="MYSTORE_RAW_PATH, MYSTORE_CLEAN_PATH"):
        Settings(target="aws", workgroup_name="mystore-wg")


def test_the_local_target_names_the_embedded_warehouse() -> None:
    assert WarehouseSettings().warehouse_target().request_fields() == {
        "Database": "dev",
        "ClusterIdentifier": "local",
        "DbUser": "awsuser",
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"target": "aws"}, "exactly one of MYSTORE_CLUSTER_IDENTIFIER or MYSTORE_WORKGROUP_NAME"),
        ({"target": "aws", "cluster_identifier": "c"}, "MYSTORE_DB_USER or MYSTORE_SECRET_ARN"),
        ({"secret_arn": "not-an-arn"}, "'not-an-arn' is not a Secrets Manager ARN"),
    ],
)
def test_bad_warehouse_settings_name_the_value(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WarehouseSettings(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("environ", "endpoint"),
    [
        ({}, None),
        ({"AWS_ENDPOINT_URL_REDSHIFT_DATA": "  "}, None),
        ({"AWS_ENDPOINT_URL_REDSHIFT_DATA": "http://127.0.0.1:4566"}, "http://127.0.0.1:4566"),
        ({"AWS_ENDPOINT_URL_GLUE": "http://127.0.0.1:4566"}, None),
    ],
)
def test_the_endpoint_comes_from_the_standard_variable(
    environ: dict[str, str], endpoint: str | None
) -> None:
    assert data_api_endpoint(environ) == endpoint
