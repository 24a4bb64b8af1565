"""The rig the suspend benches share (bench_suspend.py, bench_resume_delay.py).

A throwaway data dir; a Prefect server of its own; the local Data API endpoint in its own
process, knowing that server (so it honours ``WithEvent``) and holding the test procedures
(``SETUP``); a runner serving the suspend test deployment (tests/integration/suspend_app.py)
at a given ``PREFECT_RUNNER_POLL_FREQUENCY``; the resume automation installed. Plus what
both measure with: one deployed night to its end, and the ``resume-waiting`` poller in a
thread. tests/integration/test_suspend.py builds the same pieces from pytest fixtures.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from local.prefect_database import DATABASE_FILE, database_url  # noqa: E402  (after the path)
from tests.conftest import (  # noqa: E402
    TEST_ACCESS_KEY,
    TEST_SECRET_KEY,
    PrefectApi,
    _free_port,
    data_api_client,
    serve_endpoint,
    stop_process_group,
    throwaway_data_dir,
)
from tests.tasks.redshift_data.test_data_api_reliability import SETUP, TARGET  # noqa: E402

APP = REPO / "tests" / "integration" / "suspend_app.py"
DEPLOYMENT = "suspend-test-night/suspend-test"
NIGHT = dt.date(2026, 11, 25)
REGION = "us-east-1"
START_SECONDS = 180


@dataclass
class Rig:
    """What a bench talks to; ``client`` is a Data API client on ``endpoint``."""

    api: PrefectApi
    endpoint: str
    client: Any
    runner: subprocess.Popen[bytes]
    deployment_id: Any


@dataclass
class Night:
    """One deployed night run to its end: the run, its states in time order, and when its
    one statement ended (the endpoint's UpdatedAt)."""

    run: Any
    pipeline: str
    states: list[Any]
    statement_ended: dt.datetime

    @property
    def completed(self) -> bool:
        return bool(self.run.state.is_completed())


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], PrefectApi]:
    api = PrefectApi(f"http://127.0.0.1:{_free_port()}/api", home, home / "storage")
    port = api.api_url.rsplit(":", 1)[1].split("/")[0]
    env = api.env(
        PREFECT_SERVER_DATABASE_CONNECTION_URL=database_url(home / DATABASE_FILE),
        PREFECT_SERVER_UI_ENABLED="false",
    )
    with (home / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", port],
            cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{api.api_url}/health", timeout=2):
                return proc, api
        except OSError:
            time.sleep(0.5)
    stop_process_group(proc)
    raise SystemExit(f"prefect server did not start; see {home / 'server.log'}")


def runner_env(api: PrefectApi, endpoint: str, poll: str) -> dict[str, str]:
    """The environment of the runner and so of its flow-run processes.

    With bytecode caching, as a user's worker has it (Python writes ``__pycache__`` on
    first import; the image compiles at build time): a shell with
    ``PYTHONDONTWRITEBYTECODE`` set (CI, this project's sandboxes) would make every flow
    process compile every module it imports from source, about 1.8 s of CPU each here,
    which no deployment pays. The cache lives in the throwaway dir (``PYTHONPYCACHEPREFIX``);
    the runner's own imports fill it before the first flow run.
    """
    env = api.runner_env(
        endpoint, endpoint, poll_seconds=poll, PYTHONPYCACHEPREFIX=str(api.home / "pycache")
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def start_runner(api: PrefectApi, endpoint: str, poll: str, log: Path) -> subprocess.Popen[bytes]:
    env = runner_env(api, endpoint, poll)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, str(APP)], cwd=REPO, env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def wait_for_deployment(api_url: str, runner: subprocess.Popen[bytes], log: Path) -> Any:
    from prefect.client.orchestration import SyncPrefectClient

    deadline = time.monotonic() + START_SECONDS
    with SyncPrefectClient(api=api_url) as prefect:
        while True:
            try:
                return prefect.read_deployment_by_name(DEPLOYMENT).id
            except Exception:
                if runner.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the runner did not serve {DEPLOYMENT}; see {log}") from None
                time.sleep(0.5)


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def suspend_rig(name: str, runner_poll: str = "10") -> Iterator[Rig]:
    """Everything above, up and ready, torn down (process groups, data dir) at the end,
    also when the bench is sent SIGTERM (``timeout``, a CI step's end): Python's default
    action ends the process without unwinding, which left the rig's Prefect server and
    PostgreSQL running."""
    from prefect.client.orchestration import SyncPrefectClient

    from flows.resume_events import install_automation
    from tasks.redshift_data.submit import execute_and_wait

    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        with throwaway_data_dir(name) as data_dir:
            home = data_dir / "prefect"
            home.mkdir()
            server, api = start_server(home)
            try:
                with serve_endpoint(data_dir / "warehouse", env=api.env()) as (_, endpoint):
                    client = data_api_client(endpoint)
                    execute_and_wait(client, TARGET, SETUP)
                    log = home / "runner.log"
                    runner = start_runner(api, endpoint, runner_poll, log)
                    try:
                        deployment_id = wait_for_deployment(api.api_url, runner, log)
                        with SyncPrefectClient(api=api.api_url) as prefect:
                            install_automation(prefect)
                        yield Rig(api, endpoint, client, runner, deployment_id)
                    finally:
                        stop_process_group(runner)
            finally:
                stop_process_group(server)
    finally:
        signal.signal(signal.SIGTERM, previous)


def pause_automation(api_url: str) -> None:
    """Take the event path out: from here only the poller resumes runs."""
    from prefect.client.orchestration import SyncPrefectClient

    from flows.resume_events import AUTOMATION_NAME

    with SyncPrefectClient(api=api_url) as prefect:
        (automation,) = prefect.read_automations_by_name(AUTOMATION_NAME)
        prefect.pause_automation(automation.id)


def run_night(rig: Rig, seconds: float, **parameters: Any) -> Night:
    """One deployed night whose statement sleeps ``seconds``, waited for to its end."""
    from prefect.client.orchestration import SyncPrefectClient

    from tasks.jobs import RunKey

    pipeline = f"b{uuid.uuid4().hex[:8]}"
    with SyncPrefectClient(api=rig.api.api_url) as api:
        run = api.create_flow_run_from_deployment(
            rig.deployment_id,
            parameters={
                "pipeline": pipeline,
                "logical_date": NIGHT.isoformat(),
                "tag": uuid.uuid4().hex,
                "seconds": seconds,
                **parameters,
            },
        )
        deadline = time.monotonic() + seconds + 900
        while True:
            run = api.read_flow_run(run.id)
            if run.state is not None and run.state.is_final():
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"run {run.id} did not finish: {run.state}")
            time.sleep(0.5)
        states = sorted(api.read_flow_run_states(run.id), key=lambda s: s.timestamp)
    prefix = RunKey(pipeline, NIGHT, "slow").step_prefix
    (statement,) = rig.client.list_statements(StatementName=prefix, Status="ALL")["Statements"]
    ended = rig.client.describe_statement(Id=statement["Id"])["UpdatedAt"]
    return Night(run, pipeline, states, ended)


def poller_loop(api_url: str, endpoint: str, interval: float, stop: threading.Event) -> None:
    """``flows.resume_waiting.one_pass`` every ``interval`` s until ``stop`` (the deployed
    ``resume-waiting``, in a thread)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.resume_waiting import one_pass

    runtime = poller_runtime(endpoint)
    while not stop.wait(interval):
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            one_pass(runtime, logging.getLogger("bench-poller"))


def poller_runtime(endpoint: str) -> Any:
    """The poller's runtime on the rig's endpoint, as the runner's identity."""
    from flows.runtime import Runtime, target_from_settings
    from flows.settings import Settings
    from tasks.aws import aws_client

    os.environ.update(
        AWS_ENDPOINT_URL_REDSHIFT_DATA=endpoint,
        AWS_ENDPOINT_URL_GLUE=endpoint,
        AWS_ACCESS_KEY_ID=TEST_ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=TEST_SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
    )
    settings = Settings(target="local", cluster_identifier="local-test")
    return Runtime.with_clients(
        settings, target_from_settings(settings), aws_client("glue", region=REGION)
    )


@contextmanager
def poller(rig: Rig, interval: float) -> Iterator[None]:
    """The poller running in a thread while the block runs."""
    stop = threading.Event()
    thread = threading.Thread(
        target=poller_loop, args=(rig.api.api_url, rig.endpoint, interval, stop), daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
