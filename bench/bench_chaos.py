"""The randomized chaos run, longer: faults injected, nights run, lost and duplicate rows,
duplicate executions, hangs and wall time (goal: 500 faults, all four zero).

The same machinery as ``tests/chaos`` (``tests/chaos/machinery.py``, ``plan.py``), on a
throw-away local stack with its own Prefect server: each night's clean rows are seeded
directly (no Spark), a fault-free load of the same nights is the truth, then the nights run
through the flow under the seeded faults, and the warehouse and the statement records are
compared with the truth. The seed and the fault plan are printed first; ``--seed`` replays
the plan.

Run: ``uv run --locked python bench/bench_chaos.py --faults 500 [--nights N] [--seed N]``.
Prints numbers; asserts nothing (exit status 1 when a number that should be zero is not).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")  # numbers, not every log line
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3
import psycopg
from prefect.settings import PREFECT_API_URL, PREFECT_LOCAL_STORAGE_PATH, temporary_settings

from local.embedded import LOCAL_TARGET
from local.stack import LOCAL_REGION, LocalStack
from local.warehouse.dialect import LOCAL_MIGRATION_PARAMETERS
from local.warehouse.redshift_compat import preflight
from migrations import migrate
from tests.chaos.machinery import ChaosEnvironment, run_chaos
from tests.chaos.night_flow import ACCESS_KEY, SECRET_KEY
from tests.chaos.plan import plan_faults
from tests.sql.staging import Warehouse

FAULTS_PER_NIGHT = 20


def child_environment(api_url: str, storage: Path, home: Path) -> dict[str, str]:
    """A child flow process's environment: this run's Prefect server and result storage,
    nothing of the caller's AWS, Prefect or MYSTORE settings."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AWS_", "MYSTORE_"))
    }
    env.update(
        PREFECT_API_URL=api_url,
        PREFECT_LOCAL_STORAGE_PATH=str(storage),
        PREFECT_HOME=str(home),
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults", type=int, default=500, help="faults to plan (default 500)")
    parser.add_argument(
        "--nights", type=int, help=f"nights to run (default: faults / {FAULTS_PER_NIGHT})"
    )
    parser.add_argument("--seed", type=int, help="replay a run's plan (default: a new seed)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    nights = args.nights or max(1, -(-args.faults // FAULTS_PER_NIGHT))
    plans = plan_faults(seed, nights, args.faults)
    data_dir = Path(tempfile.mkdtemp(prefix="mystore-bench-chaos-"))
    try:
        with LocalStack.start(data_dir, with_glue=False, with_prefect=True) as stack:
            stack.wait_ready()
            assert stack.prefect is not None
            client = boto3.client(
                "redshift-data",
                endpoint_url=stack.endpoint_url,
                region_name=LOCAL_REGION,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
            )
            migrate(
                client,
                LOCAL_TARGET,
                parameters=LOCAL_MIGRATION_PARAMETERS,
                check=preflight,
                log=lambda _: None,
            )
            storage = data_dir / "prefect-storage"
            settings = {PREFECT_API_URL: stack.prefect.api_url, PREFECT_LOCAL_STORAGE_PATH: storage}
            with (
                temporary_settings(updates=settings),
                psycopg.connect(stack.pg_dsn, autocommit=True) as conn,
            ):
                env = ChaosEnvironment(
                    faults=stack.endpoint.faults,
                    endpoint_url=stack.endpoint_url,
                    wh=Warehouse(client, conn),
                    pg_dsn=stack.pg_dsn,
                    child_env=child_environment(
                        stack.prefect.api_url, storage, data_dir / "child-home"
                    ),
                    log=lambda line: print(line, flush=True),
                )
                report = run_chaos(env, seed, plans)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print()
    print("\n".join(report.lines()))
    for name in report.duplicate_executions:
        print(f"  executed twice: {name}")
    for night in report.hangs:
        print(f"  hang: {night}")
    bad = report.lost_rows + report.extra_rows + report.duplicate_rows
    bad += len(report.duplicate_executions) + len(report.hangs) + len(report.failed_nights)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
