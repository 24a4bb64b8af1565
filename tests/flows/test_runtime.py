"""Clients and target from settings: the credentials block, the local defaults, the date."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from flows.runtime import Runtime, default_logical_date
from flows.settings import Settings
from local.stack import LocalStack
from tests.conftest import PrefectApi

AWS = {
    "target": "aws",
    "workgroup_name": "mystore-wg",
    "raw_path": "s3://bkt/raw",
    "clean_path": "s3://bkt/clean",
}


def test_a_credentials_block_supplies_keys_and_region(prefect_settings: PrefectApi) -> None:
    from prefect_aws import AwsCredentials

    AwsCredentials(
        aws_access_key_id="AKIDBLOCKTEST",
        aws_secret_access_key="block-secret-value",
        region_name="eu-west-3",
    ).save("mystore-test-creds", overwrite=True)
    runtime = Runtime.from_settings(Settings(**AWS, aws_credentials_block="mystore-test-creds"))
    assert runtime.redshift_data.meta.region_name == "eu-west-3"
    assert runtime.glue.meta.region_name == "eu-west-3"
    creds = runtime.redshift_data._request_signer._credentials  # type: ignore[attr-defined]
    assert creds.access_key == "AKIDBLOCKTEST"
    assert runtime.target.request_fields() == {"Database": "dev", "WorkgroupName": "mystore-wg"}
    assert "block-secret-value" not in repr(runtime.settings)
    assert "block-secret-value" not in repr(runtime.target)


def test_local_target_defaults_to_the_local_cluster() -> None:
    runtime = Runtime.from_settings(Settings(target="local", region="us-east-1"))
    assert runtime.target.region_name == "us-east-1"
    assert runtime.redshift_data is runtime.target.data_api_client()  # what the tasks use
    assert runtime.target.request_fields() == {
        "Database": "dev",
        "ClusterIdentifier": "local",
        "DbUser": "awsuser",
    }


def test_every_call_is_counted_by_operation(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in local_stack.client_env().items():
        monkeypatch.setenv(name, value)
    runtime = Runtime.from_settings(Settings(target="local"))
    runtime.redshift_data.list_statements(Status="ALL")
    runtime.redshift_data.list_statements(Status="ALL")
    runtime.glue.get_job(JobName="raw2clean")
    assert runtime.api_calls == {"ListStatements": 2, "GetJob": 1}


def test_the_logical_date_is_the_day_before_the_scheduled_start() -> None:
    assert default_logical_date(datetime(2026, 11, 26, 3, 0, tzinfo=UTC)) == date(2026, 11, 25)
    # 01:30 in UTC+2 is still the 25th in UTC: the night is the 24th
    plus_two = timezone(timedelta(hours=2))
    assert default_logical_date(datetime(2026, 11, 26, 1, 30, tzinfo=plus_two)) == date(
        2026, 11, 24
    )


def test_glue_polling_is_capped_by_the_settings_and_keeps_the_task_default_otherwise() -> None:
    from tasks.glue.runner import DEFAULT_POLL

    default = Runtime.from_settings(Settings(**AWS, region="us-east-1")).glue_poll_policy()
    assert default == DEFAULT_POLL  # real Glue: 1 s growing to 5 s
    local = Runtime.from_settings(
        Settings(target="local", region="us-east-1", glue_poll_max_seconds=0.5)
    ).glue_poll_policy()
    assert (local.initial_interval, local.max_interval) == (0.5, 0.5)
    assert local.timeout_seconds is None and local.long_poll_seconds == 0  # as the default
    assert local.transient_error_budget == DEFAULT_POLL.transient_error_budget


def test_a_glue_poll_cap_out_of_range_is_refused_naming_it() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="glue_poll_max_seconds"):
        Settings(target="local", glue_poll_max_seconds=0)


def test_the_submit_retry_pause_comes_from_the_settings() -> None:
    runtime = Runtime.from_settings(
        Settings(target="local", region="us-east-1", submit_retry_seconds=0.2)
    )
    assert runtime.wait_policy(60).submit_interval == 0.2
    default = Runtime.from_settings(Settings(target="local", region="us-east-1"))
    assert default.wait_policy(60).submit_interval == 1.0


def test_a_submit_retry_pause_out_of_range_is_refused_naming_it() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="submit_retry_seconds"):
        Settings(target="local", submit_retry_seconds=0)
    with pytest.raises(ValidationError, match="less than or equal to 30"):
        Settings(target="local", submit_retry_seconds=45)
