"""A stand-in orchestrator process for the reliability tests (not a test module).

Runs one Prefect flow that calls ``rsd_test.sp_slow(tag, seconds)`` through
``call_procedure`` for one (pipeline, logical date), against the endpoint named by
``AWS_ENDPOINT_URL_REDSHIFT_DATA``, and prints ``RESULT <statement id> <status>``. With
``--serve`` it serves the flow as deployment ``rsd-test-night/rsd-test`` (a Prefect runner).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from prefect import flow

from tasks.aws import aws_client
from tasks.redshift_data import RedshiftTarget, cancel_statements_on_stop
from tasks.redshift_data.prefect_tasks import call_procedure

TARGET = RedshiftTarget(database="dev", cluster_identifier="local-test", db_user="awsuser")


@flow(name="rsd-test-night")
def night(pipeline: str, logical_date: str, tag: str, seconds: float, submit: bool = False) -> str:
    client = aws_client("redshift-data", region="us-east-1")
    args = (client, TARGET, "rsd_test", "sp_slow", [tag, seconds])
    kwargs = {"pipeline": pipeline, "logical_date": logical_date, "step": "slow"}
    with cancel_statements_on_stop():
        if submit:  # in the task runner's thread pool, as flows that fan out do
            result = call_procedure.submit(*args, **kwargs).result()
        else:
            result = call_procedure(*args, **kwargs)
    print(f"RESULT {result.statement_id} {result.status}", flush=True)
    return result.statement_id


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", action="store_true", help="serve as deployment rsd-test")
    parser.add_argument("--pipeline")
    parser.add_argument("--date")
    parser.add_argument("--tag")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--submit", action="store_true", help="run the task in the thread pool")
    args = parser.parse_args()
    if args.serve:
        night.serve(name="rsd-test")
    else:
        night(args.pipeline, args.date, args.tag, args.seconds, args.submit)
