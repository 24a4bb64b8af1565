"""The laptop deploy path as docs/deployment.md walks it, with no AWS: ``python -m local up``,
``prefect deploy -n mystore-nightly-local -n resume-waiting-local``, a real process worker
on ``mystore-local``, and a run started with no parameters, as from the UI.

The run attaches to the stack, loads the first night of fresh sample data (the CLI's rule),
suspends while the local Glue runs work (its flow process exits), is resumed by the
deployed ``resume-waiting-local`` poller, and completes with one statement per step. The
stack runs against the session's Prefect server (``PREFECT_API_URL`` set, so ``up`` starts
none of its own); the full night runs on local Spark, so this takes minutes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psutil
import pytest

from local.lease import read_state
from local.stack import DUMMY_ACCESS_KEY_ID
from tests.conftest import PrefectApi, data_api_client, stop_process_group, throwaway_data_dir
from tests.local.stack_processes import REPO, kill_leftovers, local_cli

pytestmark = [pytest.mark.slow, pytest.mark.spark]

NIGHTLY_LOCAL = "mystore-nightly/mystore-nightly-local"
RESUME_LOCAL = "resume-waiting/resume-waiting-local"
FIRST_NIGHT = date(2026, 11, 1)  # the sample data's first day (local.sample_data)
DEPLOY_NAMES = ("-n", "mystore-nightly-local", "-n", "resume-waiting-local")
SAMPLE = {"MYSTORE_LOCAL_CUSTOMERS": "300", "MYSTORE_LOCAL_SALES_PER_DAY": "600"}


@dataclass
class LaptopDeployment:
    api: PrefectApi
    data_dir: Path
    endpoint_url: str
    worker: subprocess.Popen[bytes]
    worker_log: Path
    nightly_id: UUID
    resumer_id: UUID


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """A Prefect worker ignores its first SIGTERM for a while; SIGINT stops it."""
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGINT)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stop_process_group(worker, grace_seconds=10)


@pytest.fixture(scope="module")
def laptop(
    prefect_api: PrefectApi, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LaptopDeployment]:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker

    logs = tmp_path_factory.mktemp("laptop")
    with throwaway_data_dir("laptop") as data_dir:
        up = local_cli("up", "--data-dir", str(data_dir), PREFECT_API_URL=prefect_api.api_url)
        assert up.returncode == 0, up.stdout + up.stderr
        info = read_state(data_dir)
        assert info is not None and info.endpoint_url
        deployment_ids: list[UUID] = []
        worker: subprocess.Popen[bytes] | None = None
        try:
            with SyncPrefectClient(api=prefect_api.api_url) as client:
                client.create_work_pool(
                    WorkPoolCreate(
                        name="mystore-local",
                        type="process",
                        base_job_template=ProcessWorker.get_default_base_job_template(),
                    ),
                    overwrite=True,
                )
            deploy = subprocess.run(
                [sys.executable, "-m", "prefect", "--no-prompt", "deploy", *DEPLOY_NAMES],
                cwd=REPO,
                env=prefect_api.env(PREFECT_CLI_PROMPT="false"),
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert deploy.returncode == 0, deploy.stdout + deploy.stderr
            with SyncPrefectClient(api=prefect_api.api_url) as client:
                for name in (NIGHTLY_LOCAL, RESUME_LOCAL):
                    deployment_ids.append(client.read_deployment_by_name(name).id)
                # As a user can in the UI: the poller's schedule (every 30 s, prefect.yaml's)
                # paused, and the poller run by hand whenever the night is suspended
                # (``_wait``). Each night's wait for it costs seconds instead of up to half
                # a minute, and no poller process starts while there is nothing to resume
                # (with a run every 4 s the test took 167 CPU-s alone, now 136).
                schedules = client.read_deployment_schedules(deployment_ids[1])
                assert [getattr(s.schedule, "interval", None) for s in schedules] == [
                    timedelta(seconds=30)
                ]
                client.update_deployment_schedule(deployment_ids[1], schedules[0].id, active=False)
            worker_log = logs / "worker.log"
            env = prefect_api.env(
                MYSTORE_LOCAL_DATA_DIR=str(data_dir), PREFECT_WORKER_QUERY_SECONDS="2", **SAMPLE
            )
            with worker_log.open("ab") as out:
                worker = subprocess.Popen(
                    [sys.executable, "-m", "prefect", "worker", "start", "--pool", "mystore-local"],
                    cwd=REPO,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            yield LaptopDeployment(
                prefect_api, data_dir, info.endpoint_url, worker, worker_log, *deployment_ids
            )
        finally:
            if worker is not None:
                _stop_worker(worker)
            with SyncPrefectClient(api=prefect_api.api_url) as client:
                for deployment_id in deployment_ids:
                    client.delete_deployment(deployment_id)
                client.delete_work_pool("mystore-local")
            local_cli("down", "--data-dir", str(data_dir), timeout=180)
            kill_leftovers(data_dir)


def _wait(
    laptop: LaptopDeployment, run_id: UUID, done: Any, timeout: float, *, resume: bool = False
) -> Any:
    """Wait until ``done(run)``; with ``resume``, run the deployed poller whenever the run
    is suspended and no poller run is under way (what its schedule would do, sooner)."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    under_way = FlowRunFilter(
        state=FlowRunFilterState(
            type=FlowRunFilterStateType(
                any_=[StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING]
            )
        )
    )
    poller = DeploymentFilter(id=DeploymentFilterId(any_=[laptop.resumer_id]))
    deadline = time.monotonic() + timeout
    with SyncPrefectClient(api=laptop.api.api_url) as client:
        while True:
            run = client.read_flow_run(run_id)
            if run.state is not None and done(run):
                return run
            if (
                resume
                and run.state is not None
                and run.state.name == "Suspended"
                and not client.read_flow_runs(flow_run_filter=under_way, deployment_filter=poller)
            ):
                client.create_flow_run_from_deployment(laptop.resumer_id, parameters={})
            if time.monotonic() > deadline:
                pytest.fail(f"flow run is {run.state}:\n{laptop.worker_log.read_text()[-6000:]}")
            time.sleep(0.5)


def _flow_processes(laptop: LaptopDeployment) -> list[str]:
    """The worker's flow-run processes (Python's resource tracker aside)."""
    found = []
    for process in psutil.Process(laptop.worker.pid).children(recursive=True):
        try:
            command = " ".join(process.cmdline())
        except psutil.Error:
            continue
        if "resource_tracker" not in command:
            found.append(command)
    return found


def test_a_run_from_the_ui_loads_the_next_night_suspends_and_completes(
    laptop: LaptopDeployment,
) -> None:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with SyncPrefectClient(api=laptop.api.api_url) as client:
        run_id = client.create_flow_run_from_deployment(laptop.nightly_id, parameters={}).id

    run = _wait(
        laptop,
        run_id,
        lambda r: r.state.is_final() or (r.state.is_paused() and r.state.name == "Suspended"),
        timeout=900,
    )
    assert run.state.name == "Suspended", run.state
    assert run.state.message.startswith("waiting on 3: "), run.state.message  # the clean runs
    assert "mystore-waiting" in run.tags
    deadline = time.monotonic() + 60
    while (held := _flow_processes(laptop)) and time.monotonic() < deadline:
        # the suspended run's process may still be exiting
        time.sleep(0.5)
    assert held == [], f"a process holds the suspended run: {held}"

    run = _wait(laptop, run_id, lambda r: r.state.is_final(), timeout=1200, resume=True)
    assert run.state.is_completed(), f"{run.state}:\n{laptop.worker_log.read_text()[-6000:]}"
    assert "mystore-waiting" not in run.tags
    assert json.loads((laptop.data_dir / "nights.json").read_text()) == [FIRST_NIGHT.isoformat()], (
        "the run did not load (and record) the next night, as the CLI would"
    )

    # the identity the deployed run signed with (no AWS keys in the worker's environment)
    data_api = data_api_client(laptop.endpoint_url, DUMMY_ACCESS_KEY_ID)
    prefix = f"mystore-nightly/{FIRST_NIGHT.isoformat()}/"
    names = [
        s["StatementName"]
        for s in data_api.list_statements(StatementName=prefix, Status="ALL")["Statements"]
    ]
    assert names and all(n.endswith("/attempt-1") for n in names), names
    assert len(names) == len(set(names)), f"a statement was submitted twice: {sorted(names)}"

    with SyncPrefectClient(api=laptop.api.api_url) as api:
        pollers = api.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[laptop.resumer_id]))
        )
    assert any(r.state and r.state.is_completed() for r in pollers), (
        "resume-waiting-local never ran to completion"
    )
