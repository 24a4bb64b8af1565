"""One invocation of the warehouse part of a night, in this process or as a child process.

The chaos run keeps Spark out: the clean tables are seeded directly (as a successful clean
run would have left them) and only the non-Glue steps of ``flows.pipeline.nightly_pipeline``
run, through ``flows.runner.run_pipeline`` inside a Prefect flow, as the Step Functions
parity tests do. A child process (``python tests/chaos/night_flow.py --endpoint URL
--pipeline NAME --night D``) runs the same flow, so it can be killed with SIGKILL or run
next to another invocation of the same night; it prints one ``RESULT {json}`` line.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import boto3
from prefect import flow
from prefect_aws import AwsCredentials
from prefect_aws.client_parameters import AwsClientParameters

from flows.pipeline import GlueStep, Pipeline, RetryPolicy, nightly_pipeline
from flows.runner import NightFailedError, run_pipeline
from flows.runtime import Runtime
from flows.settings import Settings
from tasks.redshift_data import RedshiftTarget

# The signing key of the tests' clients (tests/conftest.py); every invocation signs with it,
# so the Data API's identity scoping shows each one the others' statements.
ACCESS_KEY = "AKIDLOCALTEST"
SECRET_KEY = "local-test-secret"
REGION = "us-east-1"
# The nightly's retry shape with short delays: a chaos night retries within seconds.
FAST_RETRY = RetryPolicy(attempts=3, delay_seconds=0.2, backoff_rate=2.0, jitter=False)


def warehouse_pipeline(name: str) -> Pipeline:
    """The nightly without its Glue steps: the load and the three checks, fast retries."""
    steps = tuple(
        replace(
            step,
            depends_on=tuple(d for d in step.depends_on if not d.startswith("clean_")),
            retry=FAST_RETRY,
        )
        for step in nightly_pipeline().steps
        if not isinstance(step, GlueStep)
    )
    return Pipeline(name=name, steps=steps)


def runtime_for(endpoint_url: str) -> Runtime:
    """A target block whose credentials block points at the local endpoint; the Glue client
    is never called (the pipeline has no Glue step)."""
    credentials = AwsCredentials(
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        aws_client_parameters=AwsClientParameters(endpoint_url=endpoint_url),
    )
    target = RedshiftTarget(
        database="dev", cluster_identifier="local", db_user="awsuser", aws_credentials=credentials
    )
    glue = boto3.client(
        "glue",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    return Runtime.with_clients(Settings(target="local"), target, glue)


def run_night(pipeline_name: str, endpoint_url: str, night: date) -> dict[str, Any]:
    """Run the night's flow; its outcome as plain data (never raises for a failed night)."""

    @flow(name="chaos-night")
    def chaos_night() -> dict[str, Any]:
        pipeline = warehouse_pipeline(pipeline_name)
        return run_pipeline(pipeline, runtime_for(endpoint_url), night, force=False).as_dict()

    try:
        summary = chaos_night()
    except NightFailedError as exc:
        failed = [s["name"] for s in exc.summary["steps"] if s["status"] == "failed"]
        return {"status": "FAILED", "failed": failed, "error": str(exc.summary["error"])[:300]}
    except Exception as exc:  # a crash of the flow itself is an outcome to report too
        return {"status": "CRASHED", "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": "SUCCEEDED", "steps": [s["status"] for s in summary["steps"]]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--pipeline", required=True)
    parser.add_argument("--night", required=True, type=date.fromisoformat)
    args = parser.parse_args()
    print("READY", flush=True)  # imported: the parent times kills and overlaps from here
    outcome = run_night(args.pipeline, args.endpoint, args.night)
    print("RESULT " + json.dumps(outcome), flush=True)
