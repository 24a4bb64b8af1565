"""The laptop deploy path of docs/deployment.md, for a test: on a running ``local up`` stack's
own Prefect server, the ``mystore-local`` process pool, ``prefect deploy -n
mystore-nightly-local -n resume-waiting-local`` and a real process worker.

The end-to-end module (test_nightly_e2e.py) runs it on the data dir its nights already
loaded, so the deployed night is one more night of the same warehouse, checked against the
same truth file, and costs no stack and no cold Spark driver of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from tests.conftest import PrefectApi, stop_process_group, wait_for_flow_run
from tests.local.stack_processes import REPO

NIGHTLY_LOCAL = "mystore-nightly/mystore-nightly-local"
RESUME_LOCAL = "resume-waiting/resume-waiting-local"
DEPLOY_NAMES = ("-n", "mystore-nightly-local", "-n", "resume-waiting-local")
WORK_POOL = "mystore-local"


@dataclass
class LaptopDeployment:
    api: PrefectApi
    worker: subprocess.Popen[bytes]
    worker_log: Path
    nightly_id: UUID
    resumer_id: UUID


@contextmanager
def laptop_deployment(
    api: PrefectApi, data_dir: Path, logs: Path, **worker_env: str
) -> Iterator[LaptopDeployment]:
    """The work pool, both local deployments and a worker on ``api``, for the stack of
    ``data_dir``; all removed again on exit (the worker stopped first)."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker

    deployment_ids: list[UUID] = []
    worker: subprocess.Popen[bytes] | None = None
    try:
        with SyncPrefectClient(api=api.api_url) as client:
            client.create_work_pool(
                WorkPoolCreate(
                    name=WORK_POOL,
                    type="process",
                    base_job_template=ProcessWorker.get_default_base_job_template(),
                ),
                overwrite=True,
            )
        deploy = subprocess.run(
            [sys.executable, "-m", "prefect", "--no-prompt", "deploy", *DEPLOY_NAMES],
            cwd=REPO,
            env=api.env(PREFECT_CLI_PROMPT="false"),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        with SyncPrefectClient(api=api.api_url) as client:
            for name in (NIGHTLY_LOCAL, RESUME_LOCAL):
                deployment_ids.append(client.read_deployment_by_name(name).id)
            # As a user can in the UI: the poller's schedule (every 30 s, prefect.yaml's)
            # paused, and the poller run by hand whenever the night is suspended
            # (``wait_for_run``). Each wait for it costs seconds instead of up to half a
            # minute, and no poller process starts while there is nothing to resume.
            schedules = client.read_deployment_schedules(deployment_ids[1])
            assert [getattr(s.schedule, "interval", None) for s in schedules] == [
                timedelta(seconds=30)
            ]
            client.update_deployment_schedule(deployment_ids[1], schedules[0].id, active=False)
        worker_log = logs / "worker.log"
        env = api.env(
            MYSTORE_LOCAL_DATA_DIR=str(data_dir), PREFECT_WORKER_QUERY_SECONDS="2", **worker_env
        )
        with worker_log.open("ab") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "prefect", "worker", "start", "--pool", WORK_POOL],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        yield LaptopDeployment(api, worker, worker_log, *deployment_ids)
    finally:
        if worker is not None:
            _stop_worker(worker)
        with SyncPrefectClient(api=api.api_url) as client:
            for deployment_id in deployment_ids:
                client.delete_deployment(deployment_id)
            client.delete_work_pool(WORK_POOL)


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """A Prefect worker ignores its first SIGTERM for a while; SIGINT stops it."""
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGINT)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stop_process_group(worker, grace_seconds=10)


def wait_for_run(
    laptop: LaptopDeployment,
    run_id: UUID,
    done: Callable[[Any], bool],
    timeout: float,
    *,
    resume: bool = False,
) -> Any:
    """Wait until ``done(run)``; with ``resume``, run the deployed poller whenever the run
    is suspended and no poller run is under way (what its schedule would do, sooner)."""
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

    def start_the_poller_when_suspended(client: Any, run: Any) -> None:
        if (
            run.state is not None
            and run.state.name == "Suspended"
            and not client.read_flow_runs(flow_run_filter=under_way, deployment_filter=poller)
        ):
            client.create_flow_run_from_deployment(laptop.resumer_id, parameters={})

    return wait_for_flow_run(
        laptop.api.api_url,
        run_id,
        done,
        timeout,
        laptop.worker_log,
        between=start_the_poller_when_suspended if resume else None,
        interval=0.5,
    )
