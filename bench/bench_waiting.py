"""How fast and how cheaply a finished statement is noticed: this task vs the original loop.

The original Step Functions design submitted, then looped ``Wait 30 s -> DescribeStatement``.
This script runs ``pg_sleep(N)`` statements on the local Data API endpoint, all at once
(each strategy and duration on its own client and thread), and prints per statement the
DescribeStatement calls made and the delay between the statement ending (the endpoint's
UpdatedAt) and the caller knowing. Goal: notice within 1 s with at most N / 25 + 2 calls.

    uv run --locked python bench/bench_waiting.py [--durations 1 10 60] [--endpoint-url URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3
from botocore.config import Config
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from tasks.redshift_data import RedshiftTarget
from tasks.redshift_data.requests import build_submit_request
from tasks.redshift_data.submit import submit_statement
from tasks.redshift_data.waiting import wait_for_statement

TARGET = RedshiftTarget(database="dev", cluster_identifier="bench", db_user="awsuser")
ORIGINAL_WAIT_SECONDS = 30


@dataclass
class Row:
    strategy: str
    seconds: float
    describes: int
    delay: float

    @property
    def budget(self) -> float:
        return self.seconds / 25 + 2

    @property
    def ok(self) -> bool:
        return self.delay <= 1.0 and self.describes <= self.budget


def make_client(endpoint_url: str) -> tuple[RedshiftDataAPIServiceClient, list[int]]:
    client = boto3.client(
        "redshift-data",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="AKIDBENCH",
        aws_secret_access_key="bench-dummy",  # the local endpoint ignores it
        config=Config(read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}),
    )
    calls: list[int] = []
    client.meta.events.register(
        "before-send.redshift-data.DescribeStatement", lambda **_: calls.append(1)
    )
    return client, calls


def this_task(client: RedshiftDataAPIServiceClient, statement_id: str) -> dict[str, Any]:
    return dict(wait_for_statement(client, statement_id, on_change=lambda *_: None))


def original_loop(client: RedshiftDataAPIServiceClient, statement_id: str) -> dict[str, Any]:
    while True:
        time.sleep(ORIGINAL_WAIT_SECONDS)
        description = dict(client.describe_statement(Id=statement_id))
        if description["Status"] in ("FINISHED", "FAILED"):  # ABORTED looped on, as before
            return description


def measure(
    endpoint_url: str,
    strategy: str,
    wait: Callable[[RedshiftDataAPIServiceClient, str], dict[str, Any]],
    seconds: float,
) -> Row:
    client, calls = make_client(endpoint_url)
    operation, request = build_submit_request(
        TARGET,
        f"select pg_sleep({seconds})",
        client_token=f"bench-{strategy}-{seconds}-{time.time()}",
    )
    statement_id = submit_statement(client, operation, request)
    description = wait(client, statement_id)
    noticed = time.time()
    ended = description["UpdatedAt"].timestamp()
    return Row(strategy, seconds, len(calls), noticed - ended)


def run(endpoint_url: str, durations: list[float]) -> list[Row]:
    jobs = [
        (name, fn, seconds)
        for seconds in durations
        for name, fn in (("this task", this_task), ("fixed 30 s poll", original_loop))
    ]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [pool.submit(measure, endpoint_url, *job) for job in jobs]
        return [f.result() for f in futures]


def print_table(rows: list[Row]) -> None:
    header = f"{'statement':>9}  {'strategy':<16} {'describes':>9} {'budget':>6} {'notice delay':>12}  goal"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.seconds:>7g} s  {row.strategy:<16} {row.describes:>9} {row.budget:>6.1f} "
            f"{row.delay:>10.3f} s  {'met' if row.ok else 'missed'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--durations", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("--endpoint-url", help="an endpoint already running (default: start one)")
    args = parser.parse_args()
    started = time.monotonic()
    if args.endpoint_url:
        rows = run(args.endpoint_url, args.durations)
    else:
        from local.stack import LocalStack

        with (
            tempfile.TemporaryDirectory() as data_dir,
            LocalStack.start(Path(data_dir), with_glue=False) as stack,
        ):
            rows = run(stack.endpoint_url, args.durations)
    print_table(rows)
    print(f"\n(wall time {time.monotonic() - started:.0f} s; statements ran concurrently)")


if __name__ == "__main__":
    main()
