"""Running exported ASL in moto 5.2.5's Step Functions interpreter: every shim in one place.

Each patch names the moto gap it covers; none changes what the exported ASL means. The
Data API calls of the machine go over real HTTP to the local endpoint (moto's decorator
mode builds a plain boto3 client per task, which honours AWS_ENDPOINT_URL_REDSHIFT_DATA);
Glue calls stay in moto's Glue backend (see ``GLUE_FAILING_JOB``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import boto3
import pytest

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/mystore-nightly-sfn"
GLUE_FAILING_JOB = "raw2clean-failing"  # runs of this job end FAILED (a seam, see below)
MOTO_ACCESS_KEY = "ak"  # moto signs the machine's SDK calls with this key: its Data API identity
REPO = Path(__file__).resolve().parents[2]
VALIDATOR_DIR = REPO / "tools" / "asl-validator"


def aws_export_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The MYSTORE_* settings of an AWS deployment the export reads (no others)."""
    for key in list(os.environ):
        if key.startswith("MYSTORE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MYSTORE_TARGET", "aws")
    monkeypatch.setenv("MYSTORE_WORKGROUP_NAME", "mystore")
    monkeypatch.setenv("MYSTORE_RAW_PATH", "s3://mystore-raw/raw")
    monkeypatch.setenv("MYSTORE_CLEAN_PATH", "s3://mystore-clean/clean")


def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine where botocore's credential chain finds nothing, without asking the network
    (no instance metadata)."""
    for key in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _json_safe(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


class _SleeplessTime:
    """The ``time`` module as moto's Retry back-off sees it under ``fast``: no sleeping."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        return None


_SLEEPLESS_TIME = _SleeplessTime()


def _eval_jsonata(expression: str) -> Any:
    import jsonata
    from moto.stepfunctions.parser.asl.jsonata.jsonata import JSONataException

    try:
        result = jsonata.Jsonata(expression).evaluate(None)
    except Exception as exc:
        raise JSONataException("UNKNOWN", str(exc)) from exc
    return json.loads(json.dumps(result)) if result is not None else None


@contextmanager
def moto_sfn_shims(*, fast: bool = True) -> Iterator[None]:
    """Active across create_state_machine AND the execution (moto re-parses in its worker)."""
    from moto.glue import models as glue_models
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import (
        Timeout,
        TimeoutSeconds,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as aws_sdk,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_glue as glue_task,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
        ResourceCondition,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
        StateTaskService,
    )
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.seconds import (
        Seconds,
        SecondsJSONata,
    )
    from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    original_after = StateTaskService._after_eval_execution

    def after_eval_json_safe(self: Any, env: Any, *args: Any, **kwargs: Any) -> Any:
        env.stack[-1] = _json_safe(env.stack[-1])
        return original_after(self, env, *args, **kwargs)

    original_timeout_eval = Timeout.eval

    def timeout_eval_always_pushes(self: Any, env: Any) -> None:
        if env.is_running():
            original_timeout_eval(self, env)
        else:
            env.stack.append(
                getattr(self, "timeout_seconds", TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS)
            )

    original_start = glue_models.FakeJob.start_job_run

    def start_job_run(self: Any, *args: Any, **kwargs: Any) -> str:
        run_id: str = original_start(self, *args, **kwargs)
        if self.name == GLUE_FAILING_JOB:
            run = self.job_runs[-1]
            run._transitions = [("STARTING", "RUNNING"), ("RUNNING", "FAILED")]
        return run_id

    # moto gap: a definition that failed to parse inside a JSONata scope leaves the
    # class-level scope stack dirty, and every later create_state_machine then fails.
    Preprocessor._query_language_per_scope.clear()
    patches = [
        # moto gap: no boto3 name for the SFN service "redshiftdata" ("Unknown service").
        mock.patch.dict(
            StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES, {"redshiftdata": "redshift-data"}
        ),
        # moto gap: errors would be named "redshiftdata.X"; AWS names them "RedshiftData.X",
        # which is what the Retry and Catch rules match.
        mock.patch.dict(aws_sdk._SERVICE_ERROR_NAMES, {"redshiftdata": "RedshiftData"}),
        # moto gap: glue:startJobRun.sync crashes in a finally block (no callback endpoint
        # unless WaitForTaskToken is a supported pattern of the service).
        mock.patch.object(
            glue_task,
            "_SUPPORTED_INTEGRATION_PATTERNS",
            {ResourceCondition.Sync, ResourceCondition.WaitForTaskToken},
        ),
        # moto gap: its JSONata evaluator is a stub (needs a JVM); jsonata-python instead.
        mock.patch.object(moto_jsonata, "_eval_jsonata", _eval_jsonata),
        # moto gap: datetimes of SDK results stay in the state data and break
        # DescribeExecution / history serialisation; AWS hands ISO strings to the next state.
        mock.patch.object(StateTaskService, "_after_eval_execution", after_eval_json_safe),
        # moto race: when one Parallel branch fails, the others stop "running" mid-state;
        # a Task then skips evaluating its TimeoutSeconds but still pops the stack, takes
        # the state's input as the timeout, and GetExecutionHistory fails to serialise that
        # event (seen once in the suite: "int() argument must be ... not 'dict'").
        mock.patch.object(Timeout, "eval", timeout_eval_always_pushes),
        # Not a gap, a seam: moto's Glue runs always succeed; runs of GLUE_FAILING_JOB fail.
        mock.patch.object(glue_models.FakeJob, "start_job_run", start_job_run),
    ]
    if fast:
        # Test speed only: Wait states and Retry back-off sleep for real in moto.
        patches.append(mock.patch.object(Seconds, "_get_wait_seconds", lambda self, env: 0))
        patches.append(mock.patch.object(SecondsJSONata, "_get_wait_seconds", lambda self, env: 0))
        # Only the retrier's module sees a sleepless ``time``: patching ``time.sleep`` itself
        # would reach every thread of the process (Prefect's flow-run heartbeat loop then
        # spun, sending the test server hundreds of thousands of events per test).
        patches.append(mock.patch.object(retrier_decl, "time", _SLEEPLESS_TIME))
    with ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        yield


@contextmanager
def refused_machine_calls(operation: str, code: str, message: str, times: int) -> Iterator[None]:
    """Not a gap, a seam: the machine's next ``times`` Data API calls of ``operation`` (e.g.
    "DescribeStatement") are answered 400 ``code``/``message`` as AWS would answer them,
    before they reach the local endpoint (whose faults inject only ThrottlingException);
    botocore raises the modeled error, which moto names ``RedshiftData.<code>``."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as aws_sdk,
    )

    original = aws_sdk.boto_client_for
    left = [times]

    def refuse(**_: Any) -> tuple[Any, dict[str, Any]] | None:
        if left[0] <= 0:
            return None
        left[0] -= 1
        metadata = {"HTTPStatusCode": 400, "RequestId": "refused-by-test"}
        error = {"Code": code, "Message": message}
        return SimpleNamespace(status_code=400), {"Error": error, "ResponseMetadata": metadata}

    def client_for(*args: Any, **kwargs: Any) -> Any:
        client = original(*args, **kwargs)
        client.meta.events.register(f"before-call.redshift-data.{operation}", refuse)
        return client

    with mock.patch.object(aws_sdk, "boto_client_for", client_for):
        yield


@contextmanager
def moto_sfn(data_api_url: str | None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A moto account whose Step Functions executes machines; Data API calls go to
    ``data_api_url`` (the local endpoint), Glue calls to moto's Glue backend."""
    from moto import mock_aws

    if data_api_url is not None:
        monkeypatch.setenv("AWS_ENDPOINT_URL_REDSHIFT_DATA", data_api_url)
    monkeypatch.delenv("AWS_ENDPOINT_URL_GLUE", raising=False)
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), moto_sfn_shims():
        glue = boto3.client("glue", region_name=REGION)
        for job in ("raw2clean", GLUE_FAILING_JOB):
            glue.create_job(
                Name=job,
                Role=ROLE,
                Command={"Name": "glueetl", "ScriptLocation": "s3://scripts/raw2clean.py"},
                ExecutionProperty={"MaxConcurrentRuns": 3},
            )
        yield boto3.client("stepfunctions", region_name=REGION)


def run_execution(
    sfn: Any, definition: dict[str, Any], name: str, execution_input: dict[str, Any]
) -> dict[str, Any]:
    """Create (or reuse) the machine, run one execution to its end, return DescribeExecution
    plus the history's state names under ``entered``."""
    body = json.dumps(definition)
    machines = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    arn = (
        machines.get(name)
        or sfn.create_state_machine(name=name, definition=body, roleArn=ROLE)["stateMachineArn"]
    )
    execution = sfn.start_execution(
        stateMachineArn=arn, name=f"run-{uuid.uuid4().hex[:12]}", input=json.dumps(execution_input)
    )
    deadline = time.monotonic() + 120
    while True:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"execution still RUNNING after 120 s: {described}")
        time.sleep(0.05)
    events = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)
    described["entered"] = [
        e["stateEnteredEventDetails"]["name"]
        for e in events["events"]
        if "stateEnteredEventDetails" in e
    ]
    described["events"] = events["events"]
    return described


@pytest.fixture(scope="session")
def asl_validator() -> Path:
    """The pinned asl-validator CLI, installed with ``npm ci`` into the ignored
    node_modules on first use (so a fresh clone's test command needs no extra step)."""
    binary = VALIDATOR_DIR / "node_modules" / ".bin" / "asl-validator"
    if not binary.exists():
        try:
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"],
                cwd=VALIDATOR_DIR,
                check=True,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except FileNotFoundError:
            pytest.skip("npm is not installed: asl-validator (tools/asl-validator) needs Node")
    return binary
