"""One invocation of a night's Glue step in its own process, for the concurrency tests.

``invoke`` runs in a child process (multiprocessing, forkserver: a clean process, not a
fork of the test process and its endpoint threads). It builds a real boto3 Glue client
with botocore retries on (as ``tasks.aws`` builds it), reports ready, waits for the go
signal so two processes call at the same moment, runs ``run_glue_job`` for
``RunKey("p", 2026-11-25, step)`` and puts ``(run id, reattached)`` or the error on
``results``.
"""

from __future__ import annotations

import datetime as dt
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

import boto3
from botocore.config import Config

from tasks.glue import run_glue_job
from tasks.jobs import RunKey, WaitPolicy


def invoke(
    endpoint_url: str, step: str, ready: Queue[str], go: Event, results: Queue[tuple[str, str]]
) -> None:
    client = boto3.client(
        "glue",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="AKIDLOCALTEST",
        aws_secret_access_key="local-test-secret",
        config=Config(retries={"max_attempts": 3, "mode": "standard"}),
    )
    client.get_job_runs(JobName="standin", MaxResults=1)  # connected before the go signal
    ready.put("ready")
    if not go.wait(timeout=30):
        results.put(("error", "no go signal within 30 s"))
        return
    try:
        result = run_glue_job(
            client,
            "standin",
            {"--sleep": "1"},
            run_key=RunKey("p", dt.date(2026, 11, 25), step),
            poll=WaitPolicy(initial_interval=0.05, max_interval=0.2, timeout_seconds=None),
            concurrency=WaitPolicy(initial_interval=0.1, max_interval=0.3, timeout_seconds=30),
        )
    except Exception as exc:  # reported to the test, which fails naming it
        results.put(("error", repr(exc)))
        return
    results.put((result.run_id, "reattached" if result.reattached else "started"))
