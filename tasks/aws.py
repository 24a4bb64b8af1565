"""The one place AWS clients are made (the Data API target block and the Glue task use it).

Deployed runs pass a prefect-aws ``AwsCredentials`` block (secrets stay in the block, never
in settings or logs). Everything else uses boto3's default chain, which also honours the
standard ``AWS_ENDPOINT_URL_<SERVICE>`` variables that point clients at the local endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient
    from prefect_aws import AwsCredentials

ServiceName = Literal["redshift-data", "glue"]

# Retries inside botocore are kept small: the tasks own the retry policy (and must decide
# whether a retried submit could run twice), so botocore only smooths over brief blips.
DEFAULT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10)


def aws_session(
    credentials: AwsCredentials | None = None, region: str | None = None
) -> boto3.Session:
    """A boto3 session from the block when given (its region wins), else the default chain."""
    if credentials is not None:
        return credentials.get_boto3_session()
    return boto3.Session(region_name=region)


@overload
def aws_client(
    service: Literal["redshift-data"],
    *,
    credentials: AwsCredentials | None = ...,
    region: str | None = ...,
    endpoint_url: str | None = ...,
    config: Config | None = ...,
) -> RedshiftDataAPIServiceClient: ...


@overload
def aws_client(
    service: Literal["glue"],
    *,
    credentials: AwsCredentials | None = ...,
    region: str | None = ...,
    endpoint_url: str | None = ...,
    config: Config | None = ...,
) -> GlueClient: ...


def aws_client(
    service: ServiceName,
    *,
    credentials: AwsCredentials | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    config: Config | None = None,
) -> RedshiftDataAPIServiceClient | GlueClient:
    """A typed client for one service.

    ``region`` wins over the block's; ``endpoint_url`` wins over the block's client
    parameters, which win over the ``AWS_ENDPOINT_URL_<SERVICE>`` variables boto3 reads.
    """
    session = aws_session(credentials, region)
    params: dict[str, Any] = {}
    if credentials is not None:
        params = credentials.aws_client_parameters.get_params_override()
    block_config = params.pop("config", None)
    merged = DEFAULT_CONFIG.merge(block_config) if block_config is not None else DEFAULT_CONFIG
    if config is not None:
        merged = merged.merge(config)
    if region is not None:
        params["region_name"] = region
    if endpoint_url is not None:
        params["endpoint_url"] = endpoint_url
    return session.client(service, config=merged, **params)
