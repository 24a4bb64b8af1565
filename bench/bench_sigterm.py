"""Time from SIGTERM to the flow process's exit during a night (goal <= the grace period).

A scheduler stops a flow process with SIGTERM and, after its grace period, SIGKILL: a
Prefect process worker waits 30 s (its kill grace), ECS 30 s (a container's default
``stopTimeout``). What the flow does in that window (stop the statement it waits on, end
the flow run Crashed, drain its logs) must fit in it, or the SIGKILL leaves the statement
running and the run's state unwritten.

Each round runs a one-step night in a child process (``--child``): the flow, shaped like
the nightly (``run_pipeline`` in poll mode, the same stop hooks), CALLs a procedure that
sleeps 300 s on a throw-away local stack (no Spark: the Glue steps' stop path is
``tests/integration/test_nightly_sigterm.py``'s). When the statement is STARTED the bench
sends SIGTERM and measures until the process has exited, then reads the statement's
status (ABORTED when the flow cancelled it).

Run: ``uv run --locked python bench/bench_sigterm.py [--rounds N]``. Prints numbers;
asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import boto3
import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GRACE_SECONDS = 30.0  # Prefect's process-worker kill grace; ECS's default stopTimeout
PIPELINE_NAME = "bench-sigterm"
FIRST_NIGHT = date(2026, 1, 1)
SLEEP_PROCEDURE = """
create schema if not exists bench;
create or replace procedure bench.sp_sleep() language plpgsql as $$
begin
    perform pg_sleep(300);
end
$$;
"""


def child(night: date) -> int:
    """The flow process: one night whose only step CALLs bench.sp_sleep()."""
    from prefect import flow

    from flows.hooks import night_of, stop_hook
    from flows.pipeline import Pipeline, ProcedureStep
    from flows.runner import run_pipeline
    from flows.runtime import Runtime
    from flows.settings import Settings

    pipeline = Pipeline(name=PIPELINE_NAME, steps=(ProcedureStep("sleep", "bench", "sp_sleep"),))

    def pipeline_of(flow_run: Any) -> tuple[Pipeline, date]:
        return pipeline, night_of(flow_run)

    @flow(
        name="bench-sigterm-night",
        on_crashed=[stop_hook(pipeline_of)],
        on_cancellation=[stop_hook(pipeline_of)],
    )
    def night_flow(logical_date: date) -> dict[str, Any]:
        runtime = Runtime.from_settings(Settings())
        return run_pipeline(pipeline, runtime, logical_date, force=True, wait_mode="poll").as_dict()

    night_flow(logical_date=night)
    return 0


def started_statement(client: Any, name: str, proc: subprocess.Popen[bytes]) -> str:
    """The round's statement id once it is STARTED (the flow is then waiting on it)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the flow process exited ({proc.returncode}) before its CALL")
        listed = client.list_statements(StatementName=name, Status="STARTED")["Statements"]
        if listed:
            return str(listed[0]["Id"])
        time.sleep(0.1)
    raise RuntimeError(f"no STARTED statement named {name}* within 180 s")


def trial(client: Any, env: dict[str, str], night: date, log: Path) -> dict[str, Any]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", night.isoformat()],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        statement_id = started_statement(client, f"{PIPELINE_NAME}/{night.isoformat()}/", proc)
        time.sleep(2.0)  # the flow is now in its wait loop, as a night would be
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            returncode: int | None = proc.wait(timeout=GRACE_SECONDS * 4)
        except subprocess.TimeoutExpired:
            returncode = None  # a hang: the process outlived four grace periods
        exit_seconds = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    status = client.describe_statement(Id=statement_id, WaitTimeSeconds=10)["Status"]
    return {"seconds": exit_seconds, "returncode": returncode, "statement": status}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", metavar="DATE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(date.fromisoformat(args.child))

    from local.prefect_server import start_prefect_server
    from local.processes import this_process
    from local.stack import LocalStack

    data_dir = Path(tempfile.mkdtemp(prefix="mystore-bench-sigterm-"))
    try:
        with LocalStack.start(data_dir, with_glue=False) as stack:
            with psycopg.connect(stack.pg_dsn, autocommit=True) as conn:
                conn.execute(SLEEP_PROCEDURE)
            server = start_prefect_server(data_dir, this_process())
            try:
                server.wait_healthy()
                env = {
                    **os.environ,
                    **stack.client_env(),
                    "MYSTORE_TARGET": "local",
                    "MYSTORE_LOCAL_DATA_DIR": str(data_dir),
                    "PREFECT_API_URL": server.api_url,
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                }
                client = boto3.client("redshift-data", **_client_args(stack.client_env()))
                log = data_dir.parent / f"{data_dir.name}.log"
                results = [
                    trial(client, env, FIRST_NIGHT + timedelta(days=n), log)
                    for n in range(args.rounds)
                ]
            finally:
                server.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    for n, r in enumerate(results, 1):
        print(
            f"round {n}: SIGTERM -> exit in {r['seconds']:.2f} s "
            f"(exit status {r['returncode']}); statement {r['statement']}"
        )
    seconds = [r["seconds"] for r in results]
    hangs = sum(r["returncode"] is None for r in results)
    print(
        f"SIGTERM -> flow process exit: median {statistics.median(seconds):.2f} s, "
        f"max {max(seconds):.2f} s (n={len(seconds)}, hangs {hangs}) vs grace period "
        f"{GRACE_SECONDS:.0f} s: {'within' if max(seconds) <= GRACE_SECONDS else 'OVER'}; "
        f"log {log}"
    )
    return 0


def _client_args(env: dict[str, str]) -> dict[str, Any]:
    return {
        "endpoint_url": env["AWS_ENDPOINT_URL_REDSHIFT_DATA"],
        "region_name": env.get("AWS_DEFAULT_REGION", "us-east-1"),
        "aws_access_key_id": env.get("AWS_ACCESS_KEY_ID", "AKIDBENCH"),
        "aws_secret_access_key": env.get("AWS_SECRET_ACCESS_KEY", "bench"),
    }


if __name__ == "__main__":
    raise SystemExit(main())
