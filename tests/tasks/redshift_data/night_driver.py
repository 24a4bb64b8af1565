"""A stand-in orchestrator process for the reliability tests (not a test module).

Runs one Prefect flow that calls ``rsd_test.sp_slow(tag, seconds)`` through
``call_procedure`` for one (pipeline, logical date), against the endpoint named by
``AWS_ENDPOINT_URL_REDSHIFT_DATA``, and prints ``RESULT <statement id> <status>``. With
``--serve`` it serves the flow as deployment ``rsd-test-night/rsd-test`` (a Prefect runner).
A stop cancels the night's statements by name, as the flows' stop path does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from prefect import flow

from tasks.jobs import RunKey, night_prefix
from tasks.redshift_data import RedshiftTarget, call_procedure
from tasks.redshift_data.cancel import cancel_statements_named

TARGET = RedshiftTarget(
    database="dev", cluster_identifier="local-test", db_user="awsuser", region_name="us-east-1"
)


@flow(name="rsd-test-night")
def night(pipeline: str, logical_date: str, tag: str, seconds: float, submit: bool = False) -> str:
    key = RunKey(pipeline, logical_date, "slow")  # type: ignore[arg-type]
    args = ("rsd_test.sp_slow", [tag, seconds])
    try:
        if submit:  # in the task runner's thread pool, as flows that fan out do
            result = call_procedure.submit(*args, target=TARGET, run_key=key).result()
        else:
            result = call_procedure(*args, target=TARGET, run_key=key)
    except BaseException as exc:
        # A stop (SIGTERM, cancellation) reaches this thread only; worker threads keep
        # waiting, so cancel what the night runs by name (a flow's stop path,
        # flows.hooks.stop_run_work, stops its own run's tagged work instead).
        if not isinstance(exc, Exception) or isinstance(exc, TimeoutError):
            cancel_statements_named(
                TARGET.data_api_client(),
                night_prefix(pipeline, logical_date),
                reason=f"flow stopped: {type(exc).__name__}",
            )
        raise
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
