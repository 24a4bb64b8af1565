"""Glue job runs from Prefect: ``glue_job_run`` (the task) and ``run_glue_job`` (plain,
client injected); start or reattach by run key, wait, stop. See docs/glue-local.md.

The building blocks (request building, run matching, links) stay importable from
``tasks.glue.policy`` and ``tasks.glue.runner``; run keys, states, waiting and errors are
shared with the Data API in ``tasks.jobs``.
"""

from tasks.glue.lease import GlueStartLeaseError, prefect_start_lock
from tasks.glue.policy import RUN_KEY_ARGUMENT
from tasks.glue.runner import (
    GlueConcurrencyError,
    GlueJobFailedError,
    GluePollError,
    GlueRunResult,
    StartLock,
    run_glue_job,
    start_glue_run,
)
from tasks.glue.runs import stop_runs_named
from tasks.glue.start_guard import GlueStartAmbiguousError, refuse_blind_resend
from tasks.glue.task import glue_job_run, start_glue_job_run

__all__ = [
    "RUN_KEY_ARGUMENT",
    "GlueConcurrencyError",
    "GlueJobFailedError",
    "GluePollError",
    "GlueRunResult",
    "GlueStartAmbiguousError",
    "GlueStartLeaseError",
    "StartLock",
    "glue_job_run",
    "prefect_start_lock",
    "refuse_blind_resend",
    "run_glue_job",
    "start_glue_job_run",
    "start_glue_run",
    "stop_runs_named",
]
