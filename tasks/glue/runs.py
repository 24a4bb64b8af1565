"""The job's runs as GetJobRuns lists them, and stopping them (BatchStopJobRun).

Shared by the runner (lookups by run key, the race check, stop on interruption) and by
stop hooks that run in another process than the one that started the runs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from tasks.glue.policy import pick_run_to_attach, runs_to_stop
from tasks.jobs import Logger

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient

log = logging.getLogger(__name__)


def list_runs(client: GlueClient, job_name: str, *, max_runs: int = 500) -> list[Mapping[str, Any]]:
    """The job's newest ``max_runs`` runs (GetJobRuns pages, newest first)."""
    runs: list[Mapping[str, Any]] = []
    for page in client.get_paginator("get_job_runs").paginate(
        JobName=job_name, PaginationConfig={"PageSize": 200}
    ):
        runs.extend(page.get("JobRuns", []))
        if len(runs) >= max_runs:
            break
    return runs


def find_run(
    client: GlueClient,
    job_name: str,
    run_key: str,
    *,
    max_runs: int = 500,
    reuse_succeeded: bool = True,
) -> Mapping[str, Any] | None:
    """The run to attach to for ``run_key`` among the job's newest ``max_runs`` runs."""
    runs = list_runs(client, job_name, max_runs=max_runs)
    return pick_run_to_attach(runs, run_key, reuse_succeeded=reuse_succeeded)


def stop_runs_named(
    client: GlueClient,
    job_name: str,
    key_prefix: str,
    *,
    logger: Logger | None = None,
    max_runs: int = 200,
) -> list[str]:
    """Stop the job's active runs whose run key starts with ``key_prefix`` (one night's:
    ``tasks.jobs.night_prefix``); the ids asked to stop. Never raises, like ``stop_run``.

    For stop hooks that run in another process than the one that started the runs: the
    run key in the Arguments is the only state they share with it.
    """
    logger = logger or log
    try:
        runs = list_runs(client, job_name, max_runs=max_runs)
    except (ClientError, BotoCoreError) as exc:
        logger.warning("could not list Glue job %s runs to stop: %s", job_name, exc)
        return []
    stopped = [str(run["Id"]) for run in runs_to_stop(runs, key_prefix)]
    for run_id in stopped:
        stop_run(client, job_name, run_id, logger)
    return stopped


def stop_run(client: GlueClient, job_name: str, run_id: str, logger: Logger) -> bool:
    """Best effort BatchStopJobRun; never raises, because it runs while another error is
    already on its way out and must not replace it."""
    try:
        answer = client.batch_stop_job_run(JobName=job_name, JobRunIds=[run_id])
    except (ClientError, BotoCoreError) as exc:
        logger.error("Could not stop Glue job %s run %s: %s", job_name, run_id, exc)
        return False
    for error in answer.get("Errors", []):
        detail = error.get("ErrorDetail", {})
        logger.warning(
            "Glue job %s run %s was not stopped: %s %s",
            job_name,
            run_id,
            detail.get("ErrorCode"),
            detail.get("ErrorMessage"),
        )
        return False
    logger.warning("Stopped Glue job %s run %s (BatchStopJobRun)", job_name, run_id)
    return True
