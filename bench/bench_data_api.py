"""Benchmark of the local Data API endpoint: latency of ``select 1`` and concurrent throughput.

Run: ``uv run --locked python bench/bench_data_api.py [--rounds N] [--endpoint-url URL]``.
Without ``--endpoint-url`` it starts a throw-away local stack. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local.stack import LocalStack

TARGET: dict[str, Any] = {"ClusterIdentifier": "bench", "Database": "dev"}
TERMINAL = {"FINISHED", "FAILED", "ABORTED"}


def make_client(url: str, pool: int = 10) -> RedshiftDataAPIServiceClient:
    return boto3.client(
        "redshift-data",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIDBENCH",
        aws_secret_access_key="bench",
        config=Config(max_pool_connections=pool, retries={"total_max_attempts": 1}),
    )


def poll_without_wait(client: RedshiftDataAPIServiceClient) -> float:
    """Submit, then DescribeStatement every 10 ms until the statement ends."""
    started = time.perf_counter()
    statement_id = client.execute_statement(Sql="select 1", **TARGET)["Id"]
    while client.describe_statement(Id=statement_id)["Status"] not in TERMINAL:
        time.sleep(0.01)
    return time.perf_counter() - started


def describe_with_wait(client: RedshiftDataAPIServiceClient) -> float:
    """Submit, then one long-polling DescribeStatement (WaitTimeSeconds=30)."""
    started = time.perf_counter()
    statement_id = client.execute_statement(Sql="select 1", **TARGET)["Id"]
    status = client.describe_statement(Id=statement_id, WaitTimeSeconds=30)["Status"]
    assert status == "FINISHED", status
    return time.perf_counter() - started


def execute_with_wait(client: RedshiftDataAPIServiceClient) -> float:
    """One ExecuteStatement with WaitTimeSeconds=30 (returns when the statement ends)."""
    started = time.perf_counter()
    status = client.execute_statement(Sql="select 1", WaitTimeSeconds=30, **TARGET)["Status"]
    assert status == "FINISHED", status
    return time.perf_counter() - started


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {p50 * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   (n={len(ordered)})"


def latency(
    client: RedshiftDataAPIServiceClient,
    label: str,
    measure: Callable[[RedshiftDataAPIServiceClient], float],
    rounds: int,
) -> None:
    measure(client)  # warm-up
    print(f"{label:<48} {percentiles([measure(client) for _ in range(rounds)])}", flush=True)


def throughput(url: str, concurrency: int, batches: int) -> None:
    client = make_client(url, pool=concurrency)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(lambda _: describe_with_wait(client), range(concurrency)))  # warm-up
        started = time.perf_counter()
        durations = list(
            pool.map(lambda _: describe_with_wait(client), range(concurrency * batches))
        )
        elapsed = time.perf_counter() - started
    total = concurrency * batches
    print(
        f"throughput, {concurrency} concurrent (submit + wait), {total} statements: "
        f"{total / elapsed:6.1f} statements/s; per-statement {percentiles(durations)}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=100, help="latency samples per mode")
    parser.add_argument("--batches", type=int, default=4, help="rounds of 50 concurrent statements")
    parser.add_argument(
        "--endpoint-url", help="benchmark a running endpoint instead of a fresh stack"
    )
    args = parser.parse_args()

    data_dir: Path | None = None
    stack: LocalStack | None = None
    if args.endpoint_url:
        url = args.endpoint_url
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="mystore-bench-"))
        stack = LocalStack.start(data_dir, with_glue=False)
        url = stack.endpoint_url
    try:
        client = make_client(url)
        print(f"local Data API endpoint {url}: submit-to-FINISHED of 'select 1'", flush=True)
        latency(
            client, "no WaitTimeSeconds (poll Describe every 10 ms)", poll_without_wait, args.rounds
        )
        latency(client, "DescribeStatement WaitTimeSeconds=30", describe_with_wait, args.rounds)
        latency(client, "ExecuteStatement WaitTimeSeconds=30", execute_with_wait, args.rounds)
        throughput(url, 50, args.batches)
    finally:
        if stack is not None:
            stack.stop()
        if data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
