"""Fixtures for the task tests: a real boto3 client whose HTTP layer is a botocore Stubber."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient


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


# --------------------------------------------------------------------------------------
# A real Prefect server for the Prefect-layer tests (own PREFECT_HOME and SQLite file)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrefectApi:
    api_url: str
    home: Path
    storage: Path

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a subprocess that runs flows against this server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AWS_"))}
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_API_URL=self.api_url,
            PREFECT_LOCAL_STORAGE_PATH=str(self.storage),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_LOGGING_LEVEL="INFO",
        )
        env.update(extra)
        return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _drain_prefect_workers() -> None:
    """Send buffered logs and events before the server goes, instead of retrying at exit."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectApi]:
    """``prefect server start`` in its own process group, stopped at the end of the session."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    api = PrefectApi(f"http://127.0.0.1:{port}/api", home, home / "storage")
    env = api.env(
        PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        PREFECT_SERVER_UI_ENABLED="false",
    )
    log_path = home / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=home,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"prefect server exited:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{api.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server did not start:\n{log_path.read_text()}")
            time.sleep(0.3)
        yield api
    finally:
        _drain_prefect_workers()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture
def prefect_settings(prefect_api: PrefectApi) -> Iterator[PrefectApi]:
    """Run flows in this process against the test server."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_LOCAL_STORAGE_PATH,
        temporary_settings,
    )

    with temporary_settings(
        updates={
            PREFECT_API_URL: prefect_api.api_url,
            PREFECT_LOCAL_STORAGE_PATH: prefect_api.storage,
        }
    ):
        yield prefect_api
