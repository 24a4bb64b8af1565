"""Glue's job-run rules that botocore's model cannot express, on model-valid request bodies.

Types, lengths, WorkerType and ExecutionClass enums, MaxResults and JobRunIds bounds come
from the model first (``local.core.validation``). Left here: the job must exist here,
arguments must be ``--name`` (the script reads them so), Glue's 7-day Timeout quota, at
least one worker, and run queuing, which the local endpoint does not do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from local.glue_jobs.exceptions import entity_not_found, invalid_input
from local.glue_jobs.jobs import JobDefinition

MAX_TIMEOUT_MINUTES = 10080  # Glue rejects job-run timeouts of 7 days or more


@dataclass(frozen=True)
class StartRequest:
    """A validated StartJobRun request (arguments not yet merged with the defaults)."""

    job_name: str
    arguments: Mapping[str, str]
    timeout_minutes: int | None
    worker_type: str | None
    number_of_workers: int | None
    previous_run_id: str | None
    execution_class: str | None


def require_job(jobs: Mapping[str, JobDefinition], name: str) -> JobDefinition:
    """The job by name; EntityNotFoundException names the jobs that do exist."""
    try:
        return jobs[name]
    except KeyError:
        known = ", ".join(sorted(jobs)) or "(none)"
        raise entity_not_found(f"Job {name!r} not found; local jobs: {known}") from None


def validate_arguments(arguments: Mapping[str, str] | None) -> dict[str, str]:
    """Arguments reach the script as ``--key value``, so keys must carry the dashes."""
    for key in arguments or {}:
        if not key.startswith("--") or len(key) < 3:
            raise invalid_input(
                f"argument name {key!r} is not allowed: names start with '--' (e.g. '--table')"
            )
    return dict(arguments or {})


def validate_start_request(
    body: Mapping[str, Any], jobs: Mapping[str, JobDefinition]
) -> StartRequest:
    """Check a model-valid StartJobRun body against what Glue and this endpoint allow."""
    job = require_job(jobs, body["JobName"])
    if body.get("JobRunQueuingEnabled"):
        raise invalid_input(
            "JobRunQueuingEnabled=true is not supported by the local endpoint; "
            "retry on ConcurrentRunsExceededException instead"
        )
    timeout = body.get("Timeout")
    if timeout is not None and timeout >= MAX_TIMEOUT_MINUTES:
        raise invalid_input(
            f"Timeout must be between 1 and {MAX_TIMEOUT_MINUTES - 1}, got {timeout}"
        )
    workers = body.get("NumberOfWorkers")
    if workers is not None and workers < 1:
        raise invalid_input(f"NumberOfWorkers must be at least 1, got {workers}")
    return StartRequest(
        job_name=job.name,
        arguments=validate_arguments(body.get("Arguments")),
        timeout_minutes=timeout,
        worker_type=body.get("WorkerType"),
        number_of_workers=workers,
        previous_run_id=body.get("JobRunId"),
        execution_class=body.get("ExecutionClass"),
    )
