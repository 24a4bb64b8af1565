"""One invocation of a night's Glue step in its own process, for the concurrency tests.

``invoke`` runs in a child process (multiprocessing, forkserver: a clean process, not a
fork of the test process and its endpoint threads). It builds a real boto3 Glue client
with botocore retries on (as ``tasks.aws`` builds it), reports ready, waits for the go
signal so two processes call at the same moment, runs ``run_glue_job`` for
``RunKey("p", 2026-11-25, step)`` and puts ``(run id, "started" or "reattached")`` or
``("error", why)`` on ``results``.

With ``prefect_api_url`` it runs the Prefect task ``glue_job_run`` instead, inside a flow
against that server, as a deployed night does: the task holds the Prefect start lease.
"""

from __future__ import annotations

import datetime as dt
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

import boto3
from botocore.config import Config
from mypy_boto3_glue import GlueClient

from tasks.glue import GlueRunResult, glue_job_run, run_glue_job
from tasks.jobs import RunKey, WaitPolicy

NIGHT = dt.date(2026, 11, 25)
# The local endpoint answers GetJobRun at once: poll often, so each process notices the
# 1-second run's end within 0.2 s (Glue's 1 s growing to 5 s is only waiting here).
POLL = WaitPolicy(initial_interval=0.05, max_interval=0.2, timeout_seconds=None)


class NoGoSignal(Exception):
    """The test did not say go in time."""


def _wait_for_go(ready: Queue[str], go: Event) -> None:
    ready.put("ready")
    if not go.wait(timeout=60):
        raise NoGoSignal("no go signal within 60 s")


def _in_a_flow(
    client: GlueClient, step: str, prefect_api_url: str, ready: Queue[str], go: Event
) -> GlueRunResult:
    """``glue_job_run`` inside a flow run on the server at ``prefect_api_url``; the go
    signal is awaited inside the flow run, so both processes' flow runs exist already and
    their tasks start at the same moment."""
    from prefect import flow
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    @flow(name="glue-invocation")
    def night() -> GlueRunResult:
        _wait_for_go(ready, go)
        return glue_job_run(
            "standin", {"--sleep": "1"}, run_key=RunKey("p", NIGHT, step), client=client, poll=POLL
        )

    with temporary_settings(
        updates={PREFECT_API_URL: prefect_api_url, PREFECT_CLIENT_MAX_RETRIES: 8}
    ):
        try:
            return night()
        finally:  # a multiprocessing child skips atexit: send the logs now
            APILogWorker.drain_all(timeout=10)
            EventsWorker.drain_all(timeout=10)


def invoke(
    endpoint_url: str,
    step: str,
    ready: Queue[str],
    go: Event,
    results: Queue[tuple[str, str]],
    prefect_api_url: str | None = None,
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
    try:
        if prefect_api_url is not None:
            result = _in_a_flow(client, step, prefect_api_url, ready, go)
        else:
            _wait_for_go(ready, go)
            result = run_glue_job(
                client,
                "standin",
                {"--sleep": "1"},
                run_key=RunKey("p", NIGHT, step),
                poll=POLL,
                concurrency=WaitPolicy(initial_interval=0.1, max_interval=0.3, timeout_seconds=30),
            )
    except Exception as exc:  # reported to the test, which fails naming it
        results.put(("error", repr(exc)))
        return
    results.put((result.run_id, "reattached" if result.reattached else "started"))
