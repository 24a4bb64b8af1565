"""Time from a PostgreSQL backend's death to its statement's FAILED status (goal <= 5 s).

Two faults, each ``--rounds`` times on a throw-away local stack: the backend terminated
(``pg_terminate_backend`` from another connection) and the backend killed (SIGKILL, which
makes PostgreSQL restart every backend and replay its WAL). The clock starts when the fault
is injected and stops when DescribeStatement (long-polling, as the flows do) first answers
FAILED. Also prints how long the first new statement after a crash took to finish.

Run: ``uv run --locked python bench/bench_backend_crash.py [--rounds N]``. Prints numbers;
asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import psycopg
from botocore.config import Config
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local.stack import LocalStack

TARGET: dict[str, Any] = {"ClusterIdentifier": "bench", "Database": "dev"}
TERMINAL = {"FINISHED", "FAILED", "ABORTED"}


def make_client(url: str) -> RedshiftDataAPIServiceClient:
    return boto3.client(
        "redshift-data",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIDBENCH",
        aws_secret_access_key="bench",
        config=Config(retries={"total_max_attempts": 10, "mode": "standard"}),
    )


def running_statement(client: RedshiftDataAPIServiceClient) -> tuple[str, int]:
    statement_id = client.execute_statement(Sql="select pg_sleep(300)", **TARGET)["Id"]
    while True:
        described = client.describe_statement(Id=statement_id)
        if described["Status"] == "STARTED":
            return statement_id, described["RedshiftPid"]
        time.sleep(0.02)


def seconds_to_end(client: RedshiftDataAPIServiceClient, statement_id: str) -> tuple[float, str]:
    began = time.monotonic()
    while True:
        described = client.describe_statement(Id=statement_id, WaitTimeSeconds=30)
        if described["Status"] in TERMINAL:
            return time.monotonic() - began, described["Status"]


def seconds_until_accepting(dsn: str, began: float, out: list[float]) -> None:
    """When the server accepts connections again after the fault (its restart time)."""
    while True:
        try:
            with psycopg.connect(dsn, connect_timeout=2):
                out.append(time.monotonic() - began)
                return
        except psycopg.OperationalError:
            time.sleep(0.02)


def trial(
    stack: LocalStack, client: RedshiftDataAPIServiceClient, fault: str
) -> tuple[float, str, float, float]:
    statement_id, pid = running_statement(client)
    began = time.monotonic()
    if fault == "terminate":
        with psycopg.connect(stack.pg_dsn, autocommit=True) as conn:
            conn.execute("select pg_terminate_backend(%s)", [pid])
    else:
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)  # let the postmaster notice before probing
    restart: list[float] = []
    probe = threading.Thread(target=seconds_until_accepting, args=(stack.pg_dsn, began, restart))
    probe.start()
    elapsed, status = seconds_to_end(client, statement_id)
    probe.join()
    began = time.monotonic()
    after = client.execute_statement(Sql="select 1", WaitTimeSeconds=30, **TARGET)
    next_ok = time.monotonic() - began if after["Status"] == "FINISHED" else -1.0
    return elapsed, status, next_ok, restart[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="mystore-bench-crash-"))
    try:
        with LocalStack.start(data_dir) as stack:
            client = make_client(stack.endpoint_url)
            for fault in ("terminate", "kill -9"):
                results = [trial(stack, client, fault) for _ in range(args.rounds)]
                to_failed = [r[0] for r in results]
                statuses = sorted({r[1] for r in results})
                next_ok = [r[2] for r in results]
                accepting = [r[3] for r in results]
                print(
                    f"backend {fault:9}: crash -> {'/'.join(statuses)}  "
                    f"median {statistics.median(to_failed):.2f} s  max {max(to_failed):.2f} s  "
                    f"(n={len(results)}); next statement FINISHED in "
                    f"median {statistics.median(next_ok):.2f} s; server accepting again after "
                    f"median {statistics.median(accepting):.2f} s"
                )
            incidents = stack.data_api.store.incidents()
            kinds: dict[str, int] = {}
            for row in incidents:
                kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
            print("incidents recorded: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
