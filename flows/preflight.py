"""Before a night on AWS starts: is there a region, are there credentials, do they work?

Without this a missing region or a bad key surfaced only mid-run, as botocore's
``NoRegionError`` or an ``UnrecognizedClientException`` from whichever step called AWS
first. Here it is found before any step, named by what to set. Two checks without a
network call (region, credentials found at all), then one cheap call through the very
client the Data API tasks use (same credentials block, region and endpoint): ListStatements
with ``MaxResults=1``, which the deployed IAM policy already allows. STS GetCallerIdentity
would prove less (it needs no permission) and need a route to STS that a private subnet
with only Redshift Data API and Glue endpoints may not have.

The local target skips it: the embedded default has its own endpoint and needs neither.
Messages never carry key material: only the error code AWS answered and the setting names.

Before either target starts anything, ``check_prefect_api`` asks the Prefect server the
user configured (PREFECT_API_URL, from the environment or the active profile) for its
health. Without it, a server that is gone (most often a ``python -m local up`` stack's,
still exported after ``local down``) surfaced only after the sample data and the
migrations, as Prefect's ``RuntimeError: Failed to reach API`` under a 100-line traceback.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from tasks.aws import aws_session
from tasks.jobs import error_code, is_transient

if TYPE_CHECKING:
    from flows.settings import Settings
    from tasks.jobs import Logger
    from tasks.redshift_data import RedshiftTarget

# What AWS answers for a key it does not know, a bad signature, or an expired session.
REJECTED_CREDENTIALS = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "ExpiredTokenException",
        "ExpiredToken",
        "AuthFailure",
    }
)
_CREDENTIAL_SOURCES = (
    "MYSTORE_AWS_CREDENTIALS_BLOCK (a prefect-aws AwsCredentials block), or boto3's default "
    "chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/credentials, an "
    "instance or task role"
)


class AwsAccessError(RuntimeError):
    """The AWS target cannot be reached as configured; the message says what to set."""


# Long enough for Prefect Cloud across an ocean (its /health answers in well under a second).
HEALTH_CHECK_SECONDS = 20.0
# A busy answer (a load balancer's 502 while a server restarts, Cloud's 429) is asked again
# this long after, within the same bound: one such answer is not a server that is gone.
BUSY_RETRY_SECONDS = 2.0
_BUSY_STATUSES = frozenset({429, 500, 502, 503, 504})


class PrefectApiError(RuntimeError):
    """The Prefect API the user configured does not answer; the message says what to do."""


UNSET_PREFECT_API_URL = (
    ", or unset PREFECT_API_URL (and `prefect config unset PREFECT_API_URL` if a profile "
    "sets it) so the run uses a local Prefect server of its own"
)


def check_prefect_api(otherwise: str = UNSET_PREFECT_API_URL) -> None:
    """One ``GET /health`` of the configured Prefect API; raises when it does not answer.

    ``otherwise`` ends the message with what else the user can do (a command that needs a
    server of the user's, as the resumer, has nothing to offer but starting it).

    Nothing to check when no API is configured: Prefect then starts a temporary server of
    its own, and the embedded default passes its local server's URL explicitly (the stack
    waited for that server's health already). A refused connection fails at once: Prefect's
    client retries a ConnectError only after a first successful connection. The URL is
    shown without any user:password part, and an HTTP error by its status alone (httpx's
    message repeats the URL).
    """
    import httpx
    from prefect._internal.urls import strip_auth_from_url, strip_auth_from_urls_in_text
    from prefect.client.orchestration import get_client
    from prefect.settings import (
        PREFECT_API_REQUEST_TIMEOUT,
        PREFECT_API_URL,
        PREFECT_CLIENT_MAX_RETRIES,
        temporary_settings,
    )

    url = PREFECT_API_URL.value()
    if not url:
        return
    # Bounded: with the client's own settings (a 60 s read timeout, 5 retries with back-off)
    # a server that accepts connections but never answers (hung, or a port something else
    # holds) kept a night silent for over 6 minutes before anything started. Only a busy
    # answer is asked again, within the same bound.
    deadline = time.monotonic() + HEALTH_CHECK_SECONDS
    tries = 0
    while True:
        left = max(deadline - time.monotonic(), 1.0)
        bounded = {PREFECT_API_REQUEST_TIMEOUT: left, PREFECT_CLIENT_MAX_RETRIES: 0}
        with temporary_settings(updates=bounded), get_client(sync_client=True) as client:
            failure = client.api_healthcheck()  # (Prefect 3.9 sleeps ~2 s after a 5xx itself)
        tries += 1
        busy = (
            isinstance(failure, httpx.HTTPStatusError)
            and failure.response.status_code in _BUSY_STATUSES
        )
        if not busy or time.monotonic() + BUSY_RETRY_SECONDS >= deadline:
            break
        time.sleep(BUSY_RETRY_SECONDS)
    if failure is None:
        return
    if isinstance(failure, httpx.TimeoutException):
        reason = f"no answer within {HEALTH_CHECK_SECONDS:g} s to GET /health"
    elif isinstance(failure, httpx.HTTPStatusError):
        status = failure.response.status_code
        reason = f"it answered HTTP {status}"
        if status in (401, 403):
            reason += " (for Prefect Cloud, check PREFECT_API_KEY)"
        elif tries > 1:
            reason += f" to each of {tries} tries in {HEALTH_CHECK_SECONDS:g} s"
    else:
        reason = f"{type(failure).__name__}: {failure}" if str(failure) else type(failure).__name__
    shown = strip_auth_from_url(url)
    error = PrefectApiError(
        f"the Prefect API at PREFECT_API_URL={shown} does not answer "
        f"({strip_auth_from_urls_in_text(reason)}). Start that server (a local stack's: "
        f"`python -m local up`){otherwise}"
    )
    # httpx's errors may repeat the URL with its user:password part: then the cause is
    # left off, so that no traceback of this error can print it.
    raise error from (failure if shown == url else None)


def check_region_and_credentials(settings: Settings, credentials: Any = None) -> str:
    """The region the clients will use; raises when there is none or no credentials at all.

    No network call: boto3 resolves both locally (credentials from a role are fetched
    lazily, so an unreachable role endpoint shows up in ``check_data_api_access``).
    """
    session = aws_session(credentials, settings.region)
    region = settings.region or session.region_name
    if not region:
        raise AwsAccessError(
            "target 'aws' has no AWS region: set MYSTORE_REGION (e.g. eu-west-1), or "
            "AWS_DEFAULT_REGION, or region_name in the AwsCredentials block named by "
            "MYSTORE_AWS_CREDENTIALS_BLOCK"
        )
    try:
        found = session.get_credentials()
    except BotoCoreError as exc:  # a broken profile or credential process
        raise AwsAccessError(f"target 'aws': AWS credentials could not be loaded: {exc}") from exc
    if found is None:
        raise AwsAccessError(
            f"target 'aws' found no AWS credentials; provide them through {_CREDENTIAL_SOURCES}"
        )
    return region


def check_data_api_access(target: RedshiftTarget, logger: Logger) -> None:
    """One ListStatements (``MaxResults=1``) as the tasks' identity; a refusal raises.

    A transient failure (throttling, 5xx, a dropped connection) is only logged: the
    credentials may well be fine, and every step rides out transient errors itself.
    """
    client = target.data_api_client()
    region = client.meta.region_name
    try:
        client.list_statements(MaxResults=1)
    except NoCredentialsError as exc:
        raise AwsAccessError(
            f"target 'aws' found no AWS credentials; provide them through {_CREDENTIAL_SOURCES}"
        ) from exc
    except ClientError as exc:
        code = error_code(exc)
        if is_transient(exc):
            logger.warning("AWS access check inconclusive (%s); going on", code)
            return
        if code in REJECTED_CREDENTIALS:
            raise AwsAccessError(
                f"target 'aws': AWS rejected the credentials ({code}) in region {region}; "
                "check the key pair or session token, or the AwsCredentials block named "
                "by MYSTORE_AWS_CREDENTIALS_BLOCK"
            ) from exc
        raise AwsAccessError(
            f"target 'aws': the Redshift Data API refused ListStatements in region {region} "
            f"({code}: {exc.response.get('Error', {}).get('Message', '')}); the identity "
            "needs the permissions in the deployment's IAM policy (docs/deployment.md)"
        ) from exc
    except BotoCoreError as exc:
        if is_transient(exc):
            logger.warning("AWS access check inconclusive (%s); going on", type(exc).__name__)
            return
        raise AwsAccessError(f"target 'aws': the AWS access check failed: {exc}") from exc
