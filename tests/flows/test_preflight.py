"""The AWS target's start-up check: no region, no or rejected credentials fail before any step.

Region and "no credentials at all" are real boto3 behaviour (an environment without them);
the nightly flow is run for real against the local endpoint and the test Prefect server, so
"before any statement" is what the endpoint saw. A key AWS rejects is answered at the seam
the tasks use (the target's client), in AWS's own shape: the local endpoint, like the real
Data API's identity scoping, accepts any key, and moto answers this protocol in XML.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.stub import Stubber

from flows.nightly import nightly
from flows.preflight import AwsAccessError, check_data_api_access
from flows.runtime import Runtime, log
from flows.settings import Settings
from local.stack import LocalStack
from tasks.redshift_data import RedshiftTarget
from tests.conftest import PrefectApi

AWS = {
    "MYSTORE_TARGET": "aws",
    "MYSTORE_CLUSTER_IDENTIFIER": "local",
    "MYSTORE_DB_USER": "awsuser",
    "MYSTORE_RAW_PATH": "s3://bkt/raw",
    "MYSTORE_CLEAN_PATH": "s3://bkt/clean",
}
SECRET = "preflight-secret-value"


@pytest.fixture
def aws_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, local_stack: LocalStack
) -> Iterator[pytest.MonkeyPatch]:
    """Target 'aws' whose Data API and Glue endpoints are the local stack's, with no region
    and no credentials from anywhere (no env, no files, no instance metadata)."""
    for name in list(_aws_variables()):
        monkeypatch.delenv(name, raising=False)
    for name, value in AWS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_REDSHIFT_DATA", local_stack.endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", local_stack.endpoint_url)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield monkeypatch


def _aws_variables() -> Iterator[str]:
    import os

    for name in os.environ:
        if name.startswith(("AWS_", "MYSTORE_")):
            yield name


def statements_of_tonight(local_stack: LocalStack) -> list[str]:
    from tests.conftest import data_api_client

    client = data_api_client(local_stack.endpoint_url)
    listed = client.list_statements(StatementName="mystore-nightly/2026-03-04/", Status="ALL")
    return [s["StatementName"] for s in listed["Statements"]]


def test_no_region_fails_the_night_before_any_step(
    aws_env: pytest.MonkeyPatch, local_stack: LocalStack, prefect_settings: PrefectApi
) -> None:
    aws_env.setenv("AWS_ACCESS_KEY_ID", "AKIDPREFLIGHT")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    state = nightly(logical_date="2026-03-04", return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, AwsAccessError)
    assert "no AWS region" in str(error) and "MYSTORE_REGION" in str(error)
    assert statements_of_tonight(local_stack) == []


def test_no_credentials_are_named_before_any_call(aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("MYSTORE_REGION", "eu-west-1")
    with pytest.raises(AwsAccessError, match=r"found no AWS credentials.*AWS_ACCESS_KEY_ID"):
        Runtime.from_settings(Settings(), check_access=True)


def test_working_credentials_pass_with_one_cheap_call(aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("MYSTORE_REGION", "eu-west-1")
    aws_env.setenv("AWS_ACCESS_KEY_ID", "AKIDPREFLIGHT")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    runtime = Runtime.from_settings(Settings(), check_access=True)
    assert runtime.api_calls == {"ListStatements": 1}


def test_the_local_target_pays_nothing(aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("MYSTORE_TARGET", "local")
    aws_env.setenv("MYSTORE_REGION", "eu-west-1")  # no credentials at all: not looked for
    runtime = Runtime.from_settings(Settings(), check_access=True)
    assert runtime.api_calls == {}


def target_with_keys() -> RedshiftTarget:
    from prefect_aws import AwsCredentials

    return RedshiftTarget(
        database="dev",
        workgroup_name="mystore-wg",
        region_name="eu-west-1",
        aws_credentials=AwsCredentials(aws_access_key_id="AKIDBAD", aws_secret_access_key=SECRET),
    )


@pytest.mark.parametrize(
    ("code", "message", "status", "expected"),
    [
        (
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
            400,
            "AWS rejected the credentials (UnrecognizedClientException) in region eu-west-1",
        ),
        ("ExpiredTokenException", "The security token has expired.", 400, "rejected"),
        (
            "AccessDeniedException",
            "User is not authorized to perform: redshift-data:ListStatements",
            400,
            "refused ListStatements in region eu-west-1 (AccessDeniedException",
        ),
    ],
)
def test_a_refused_identity_is_a_clear_error_without_secrets(
    code: str, message: str, status: int, expected: str
) -> None:
    target = target_with_keys()
    with Stubber(target.data_api_client()) as stub:
        stub.add_client_error("list_statements", code, message, status, {"MaxResults": 1})
        with pytest.raises(AwsAccessError) as caught:
            check_data_api_access(target, log)
    assert expected in str(caught.value)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value.__cause__)


def test_throttling_leaves_the_check_inconclusive_not_failed() -> None:
    target = target_with_keys()
    with Stubber(target.data_api_client()) as stub:
        stub.add_client_error("list_statements", "ThrottlingException", "Rate exceeded", 400)
        check_data_api_access(target, log)  # logs and goes on
        stub.assert_no_pending_responses()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_prefect_api_stops_the_night_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Most often a `local up` stack's server, still exported after `local down`: it used to
    surface after the sample data and the migrations, as a 116-line traceback."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows import nightly as nightly_command

    never = tmp_path / "never-started"
    monkeypatch.setenv("MYSTORE_LOCAL_DATA_DIR", str(never))  # restored after the test
    url = f"http://someone:{SECRET}@127.0.0.1:{_closed_port()}/api"
    with temporary_settings(updates={PREFECT_API_URL: url}):
        assert nightly_command.main(["--data-dir", str(never)]) == 1
    out = " ".join(capsys.readouterr().out.split())  # rich wraps lines
    shown = url.replace(f"someone:{SECRET}@", "")
    assert f"Prefect: the Prefect API at PREFECT_API_URL={shown} does not answer (ConnectError" in (
        out
    )
    assert (
        "Start that server (a local stack's: `python -m local up`), or unset PREFECT_API_URL"
        in (out)
    )
    assert SECRET not in out and "Traceback" not in out
    assert not never.exists()  # no sample data, no warehouse, no migrations


def test_a_prefect_api_that_refuses_is_named_by_its_status_without_secrets() -> None:
    import pickle
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.preflight import PrefectApiError, check_prefect_api

    class Refuses(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.end_headers()
            self.wfile.write(b'{"detail": "Unauthorized"}')

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://someone:{SECRET}@127.0.0.1:{server.server_port}/api"
        with (
            temporary_settings(updates={PREFECT_API_URL: url}),
            pytest.raises(PrefectApiError) as caught,
        ):
            check_prefect_api()
    finally:
        server.shutdown()
        server.server_close()
    message = str(caught.value)
    assert "does not answer (it answered HTTP 401 (for Prefect Cloud, check PREFECT_API_KEY))" in (
        message
    )
    assert SECRET not in message and caught.value.__cause__ is None
    assert str(pickle.loads(pickle.dumps(caught.value))) == message


@pytest.mark.parametrize("busy_answers", [2, 99])
def test_a_busy_prefect_api_is_asked_again_within_the_bound(
    monkeypatch: pytest.MonkeyPatch, busy_answers: int
) -> None:
    """A 503 while a server (or the load balancer in front of Prefect Cloud) restarts is
    not a server that is gone: asked again, the night goes on; still busy at the bound,
    the night stops naming how often it asked."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows import preflight
    from flows.preflight import PrefectApiError, check_prefect_api

    monkeypatch.setattr(preflight, "HEALTH_CHECK_SECONDS", 2.0)
    monkeypatch.setattr(preflight, "BUSY_RETRY_SECONDS", 0.3)
    answered: list[int] = []

    class Busy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = 503 if len(answered) < busy_answers else 200
            answered.append(status)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            # without it, Prefect's client sleeps 2 s after each 503 even with no retries left
            self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(b"true" if status == 200 else b'{"detail": "busy"}')

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/api"
    try:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            if busy_answers == 2:
                check_prefect_api()
                assert answered == [503, 503, 200]
                return
            with pytest.raises(PrefectApiError) as caught:
                check_prefect_api()
    finally:
        server.shutdown()
        server.server_close()
    # asked again (every 0.3 s for 2 s); a loaded machine fits only two tries (seen once
    # beside two busy processes: each try's client and request took most of a second)
    assert 2 <= len(answered) <= 7, answered
    assert f"(it answered HTTP 503 to each of {len(answered)} tries in 2 s)" in str(caught.value)


@pytest.mark.timeout(60)
def test_a_prefect_api_that_accepts_but_never_answers_is_named_within_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hung server (or a port something else holds): with the client's own timeout and
    retries, a night sat silent for over 6 minutes before starting anything."""
    import socket

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows import preflight
    from flows.preflight import PrefectApiError, check_prefect_api

    monkeypatch.setattr(preflight, "HEALTH_CHECK_SECONDS", 1.0)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel accepts the connection; nobody ever reads or answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/api"
        with (
            temporary_settings(updates={PREFECT_API_URL: url}),
            pytest.raises(PrefectApiError) as caught,
        ):
            check_prefect_api()
    assert f"the Prefect API at PREFECT_API_URL={url} does not answer (no answer within 1 s" in (
        str(caught.value)
    )
