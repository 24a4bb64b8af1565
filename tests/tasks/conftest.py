"""Fixtures for the task tests: a real boto3 client whose HTTP layer is a botocore Stubber,
and the local endpoint serving Glue job runs of a stand-in script (no Spark).

The Prefect server fixtures (``prefect_api``, ``prefect_settings``) live in tests/conftest.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient
from prefect import flow

from local.endpoint import AwsEndpoint
from local.glue_jobs import GlueService, JobDefinition

STANDIN = Path(__file__).resolve().parents[1] / "local" / "glue_jobs" / "standin.py"


def outcomes_of(*futures: Any, timeout: float = 60) -> list[Any]:
    """Each Prefect future's result, or the exception it raised (in order)."""
    outcomes: list[Any] = []
    for future in futures:
        try:
            outcomes.append(future.result(timeout=timeout))
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


class HangingPrefectApi:
    """Stands in for a Prefect API call that does not answer for a minute. It hangs in short
    sleeps: the cancel a task timeout injects into a worker thread lands only between Python
    instructions. ``calls`` counts the calls that reached it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *_: object) -> None:
        self.calls += 1
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.05)


# Task timeouts for a test whose timeout must fire in a hang after the work started, tried
# in turn: one that fired before (a start slower than it, on a loaded machine) tested
# nothing, and one that fired inside Prefect's own client calls can be lost there.
TASK_TIMEOUTS = (3, 10, 30)


def timed_out_in_a_flow(call: Callable[[], object]) -> str:
    """Run ``call`` (a Prefect task with a timeout) in a flow: the TimeoutError's message,
    or what happened instead (a timeout lost in Prefect's calls lets the task run on)."""

    @flow(name="timed-out-task")
    def night() -> str:
        try:
            call()
        except TimeoutError as exc:
            return str(exc)
        except Exception as exc:
            return f"no timeout, but {type(exc).__name__}: {exc}"
        return "no timeout"

    return night()


class FakeClock:
    """Monotonic time that only moves when the code under test sleeps or a call 'takes' time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.call_durations: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def on_call(self, **_: object) -> None:
        if self.call_durations:
            self.now += self.call_durations.pop(0)


@pytest.fixture
def stubbed() -> Iterator[tuple[RedshiftDataAPIServiceClient, Stubber]]:
    client = boto3.client(
        "redshift-data",
        region_name="eu-west-1",
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="not-a-secret",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def clock(stubbed: tuple[RedshiftDataAPIServiceClient, Stubber]) -> FakeClock:
    """A FakeClock that advances by the next of ``call_durations`` on each DescribeStatement."""
    fake = FakeClock()
    stubbed[0].meta.events.register(
        "before-parameter-build.redshift-data.DescribeStatement", fake.on_call
    )
    return fake


@pytest.fixture
def calls(stubbed: tuple[RedshiftDataAPIServiceClient, Stubber]) -> list[str]:
    """The operations the stubbed client was asked to make, in order.

    Recorded before the Stubber answers, so a call the code under test makes and then
    swallows the error of (as ``cancel_statement`` does) is still seen and can be asserted.
    """
    seen: list[str] = []
    stubbed[0].meta.events.register(
        "before-parameter-build.redshift-data",
        lambda model, **_: seen.append(model.name),
    )
    return seen


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[AwsEndpoint]:
    jobs = {
        "standin": JobDefinition("standin", STANDIN, max_concurrent_runs=10),
        "single": JobDefinition("single", STANDIN, max_concurrent_runs=1),
    }
    server = AwsEndpoint().start()
    service = GlueService(jobs, log_dir=tmp_path / "logs", stop_grace_seconds=2)
    server.register("AWSGlue", service)
    try:
        yield server
    finally:
        service.close()
        server.stop()
