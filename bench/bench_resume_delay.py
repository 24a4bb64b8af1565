"""Delay from a statement's end to the suspended flow run continuing: event path vs poller.

Starts a Prefect server, the local Data API endpoint (knowing that server, so it honours
``WithEvent``) and a runner serving the suspend test deployment
(tests/integration/suspend_app.py, ``PREFECT_RUNNER_POLL_FREQUENCY`` as given), then for
each path runs deployed nights whose one statement sleeps ``--seconds`` and prints, per run:
statement end (the endpoint's UpdatedAt) to Resuming (the server's state time), and to
Running again (the resumed flow's engine started: "the flow continuing").

* event: the automation installed (``flows.resume_events``), no poller;
* poller: the automation paused, ``flows.resume_waiting.one_pass`` every ``--interval`` s
  (prefect.yaml's default: 60), at whatever phase the statement ends.

Goal (issue 10): event path <= 15 s on this machine, most of it process start.

    uv run --locked python bench/bench_resume_delay.py [--runs 3] [--poller-runs 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import (  # noqa: E402  (after the path)
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
REGION = "us-east-1"


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], PrefectApi]:
    import urllib.request

    api = PrefectApi(f"http://127.0.0.1:{_free_port()}/api", home, home / "storage")
    port = api.api_url.rsplit(":", 1)[1].split("/")[0]
    env = api.env(
        PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        PREFECT_SERVER_UI_ENABLED="false",
    )
    with (home / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", port],
            cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{api.api_url}/health", timeout=2):
                return proc, api
        except OSError:
            time.sleep(0.5)
    stop_process_group(proc)
    raise SystemExit(f"prefect server did not start; see {home / 'server.log'}")


def runner(api: PrefectApi, endpoint: str, poll: str, log: Path) -> subprocess.Popen[bytes]:
    env = api.env(
        AWS_ENDPOINT_URL_REDSHIFT_DATA=endpoint,
        AWS_ENDPOINT_URL_GLUE=endpoint,
        AWS_ACCESS_KEY_ID=TEST_ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=TEST_SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
        MYSTORE_CLUSTER_IDENTIFIER="local-test",
        PREFECT_RUNNER_POLL_FREQUENCY=poll,
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, str(APP)], cwd=REPO, env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def one_run(client: Any, api_url: str, deployment_id: Any, seconds: float) -> dict[str, float]:
    from prefect.client.orchestration import SyncPrefectClient

    from tasks.jobs import RunKey

    pipeline = f"b{uuid.uuid4().hex[:8]}"
    night = dt.date(2026, 11, 25)
    with SyncPrefectClient(api=api_url) as api:
        run = api.create_flow_run_from_deployment(
            deployment_id,
            parameters={
                "pipeline": pipeline,
                "logical_date": night.isoformat(),
                "tag": uuid.uuid4().hex,
                "seconds": seconds,
            },
        )
        deadline = time.monotonic() + 600
        while True:
            current = api.read_flow_run(run.id)
            if current.state is not None and current.state.is_final():
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"run {run.id} did not finish: {current.state}")
            time.sleep(0.5)
        states = sorted(api.read_flow_run_states(run.id), key=lambda s: s.timestamp)
    prefix = RunKey(pipeline, night, "slow").step_prefix
    (statement,) = client.list_statements(StatementName=prefix, Status="ALL")["Statements"]
    ended = client.describe_statement(Id=statement["Id"])["UpdatedAt"]
    suspended_at = max(s.timestamp for s in states if s.name == "Suspended")
    after = [s for s in states if s.timestamp > suspended_at]
    resuming = min(s.timestamp for s in after if s.name == "Resuming")
    running = min(s.timestamp for s in after if s.is_running())
    return {
        "to_resuming": (resuming - ended).total_seconds(),
        "to_running": (running - ended).total_seconds(),
        "completed": float(current.state.is_completed()),
    }


def poller_loop(api_url: str, endpoint: str, interval: float, stop: threading.Event) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.resume_waiting import one_pass
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
    runtime = Runtime.with_clients(
        settings, target_from_settings(settings), aws_client("glue", region=REGION)
    )
    while not stop.wait(interval):
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            one_pass(runtime, logging.getLogger("bench-poller"))


def report(path: str, rows: list[dict[str, float]]) -> None:
    for key in ("to_resuming", "to_running"):
        values = [r[key] for r in rows]
        print(
            f"{path:7} {key:12} runs={len(values)} "
            f"median={statistics.median(values):6.1f}s max={max(values):6.1f}s "
            f"all={[round(v, 1) for v in values]}",
            flush=True,
        )
    print(f"{path:7} completed {int(sum(r['completed'] for r in rows))}/{len(rows)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="event-path runs (%(default)s)")
    parser.add_argument("--poller-runs", type=int, default=2, help="poller runs (%(default)s)")
    parser.add_argument("--interval", type=float, default=60.0, help="poller interval, s")
    parser.add_argument("--seconds", type=float, default=5.0, help="statement's pg_sleep, s")
    parser.add_argument("--runner-poll", default="10", help="PREFECT_RUNNER_POLL_FREQUENCY")
    args = parser.parse_args()

    from prefect.client.orchestration import SyncPrefectClient

    from flows.resume_events import AUTOMATION_NAME, install_automation
    from tasks.redshift_data.submit import execute_and_wait

    with throwaway_data_dir("bench-resume") as data_dir:
        home = data_dir / "prefect"
        home.mkdir()
        server, api = start_server(home)
        try:
            with serve_endpoint(data_dir / "warehouse", env=api.env()) as (_, endpoint):
                client = data_api_client(endpoint)
                execute_and_wait(client, TARGET, SETUP)
                serving = runner(api, endpoint, args.runner_poll, home / "runner.log")
                try:
                    with SyncPrefectClient(api=api.api_url) as prefect:
                        while True:
                            try:
                                deployment = prefect.read_deployment_by_name(DEPLOYMENT)
                                break
                            except Exception:
                                time.sleep(0.5)
                        install_automation(prefect)
                    print(
                        f"# statement {args.seconds}s, runner poll {args.runner_poll}s, "
                        f"poller interval {args.interval}s",
                        flush=True,
                    )
                    rows = [
                        one_run(client, api.api_url, deployment.id, args.seconds)
                        for _ in range(args.runs)
                    ]
                    report("event", rows)
                    if args.poller_runs:
                        with SyncPrefectClient(api=api.api_url) as prefect:
                            (auto,) = prefect.read_automations_by_name(AUTOMATION_NAME)
                            prefect.pause_automation(auto.id)
                        stop = threading.Event()
                        thread = threading.Thread(
                            target=poller_loop,
                            args=(api.api_url, endpoint, args.interval, stop),
                            daemon=True,
                        )
                        thread.start()
                        rows = [
                            one_run(client, api.api_url, deployment.id, args.seconds)
                            for _ in range(args.poller_runs)
                        ]
                        stop.set()
                        report("poller", rows)
                finally:
                    stop_process_group(serving)
        finally:
            stop_process_group(server)


if __name__ == "__main__":
    main()
