"""Glue job runs from Prefect: ``run_glue_job`` (plain, client injected) and ``glue_job_run``
(the Prefect task). See docs/glue-local.md."""

from tasks.glue.policy import (
    RUN_KEY_ARGUMENT,
    STATE_OUTCOMES,
    Backoff,
    build_start_request,
    classify_state,
    make_run_key,
    pick_run_to_attach,
    pick_winner_of_race,
    run_links,
)
from tasks.glue.runner import (
    GlueConcurrencyError,
    GlueJobError,
    GlueJobFailedError,
    GluePollError,
    GlueRunResult,
    find_run,
    list_runs,
    run_glue_job,
    stop_run,
)
from tasks.glue.task import glue_job_run

__all__ = [
    "RUN_KEY_ARGUMENT",
    "STATE_OUTCOMES",
    "Backoff",
    "GlueConcurrencyError",
    "GlueJobError",
    "GlueJobFailedError",
    "GluePollError",
    "GlueRunResult",
    "build_start_request",
    "classify_state",
    "find_run",
    "glue_job_run",
    "list_runs",
    "make_run_key",
    "pick_run_to_attach",
    "pick_winner_of_race",
    "run_glue_job",
    "run_links",
    "stop_run",
]
