"""The Prefect task around ``run_glue_job``: a run logger, a client, the shared retries.

No cache policy: whether the work is already done is decided by the run key against Glue's
own run history, not by Prefect's cache (which keys on source code and inputs, and would
start a second run after a code edit). Each lookup + StartJobRun is held under a Prefect
lease per Glue job (``lease.py``), so two invocations of one night start one run per step.
The run id is tagged on the flow run as soon as it is known (``tasks.flow_run_tags``), which
fences the flow's stop hooks. Retries are the Data API tasks' own
(``tasks.jobs.task_retry_options``): only failures that reattach are retried (a lease that
could not be taken is one: nothing was started).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.aws import aws_client
from tasks.flow_run_tags import glue_run_tag, record_work
from tasks.glue.lease import prefect_start_lock
from tasks.glue.runner import (
    DEFAULT_POLL,
    GlueRunResult,
    run_glue_job,
    start_glue_run,
    stop_run,
)
from tasks.jobs import Logger, RunKey, WaitPolicy, task_retry_options
from tasks.stopping import undone_if_abandoned

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient
    from prefect_aws import AwsCredentials


@task(
    name="glue-job-run",
    task_run_name="glue-{job_name}-{run_key}",
    cache_policy=NO_CACHE,
    **task_retry_options(),
)
def glue_job_run(
    job_name: str,
    arguments: Mapping[str, str] | None = None,
    *,
    run_key: RunKey,
    worker_type: str | None = None,
    number_of_workers: int | None = None,
    timeout_minutes: int | None = None,
    force: bool = False,
    reattach_to: Collection[str] = (),
    client: GlueClient | None = None,
    credentials: AwsCredentials | None = None,
    region: str | None = None,
    poll: WaitPolicy = DEFAULT_POLL,
) -> GlueRunResult:
    """Run a Glue job to its end (see ``run_glue_job``); retrying this task is safe: a retry
    (only after Glue's answers were lost, never after a failed run) waits on the run its
    earlier try started, also with ``force`` (``tasks.own_work``).

    The client is ``client`` when given, else built from ``credentials`` and ``region``
    (boto3's default chain and ``AWS_ENDPOINT_URL_GLUE`` otherwise). ``poll`` paces the
    GetJobRun calls while the run is awaited (default: 1 s growing to 5 s; a local endpoint
    answers at once and can be polled more often).
    """
    glue = client or aws_client("glue", credentials=credentials, region=region)
    logger = get_run_logger()
    return run_glue_job(
        glue,
        job_name,
        arguments,
        run_key=run_key,
        worker_type=worker_type,
        number_of_workers=number_of_workers,
        timeout_minutes=timeout_minutes,
        force=force,
        reattach_to=reattach_to,
        poll=poll,
        start_lock=prefect_start_lock(logger=logger),
        logger=logger,
        on_start=lambda run_id: record_work(glue_run_tag(job_name, run_id)),
    )


@task(
    name="glue-job-start",
    task_run_name="start-glue-{job_name}-{run_key}",
    cache_policy=NO_CACHE,
    **task_retry_options(),
)
def start_glue_job_run(
    job_name: str,
    arguments: Mapping[str, str] | None = None,
    *,
    run_key: RunKey,
    worker_type: str | None = None,
    number_of_workers: int | None = None,
    timeout_minutes: int | None = None,
    force: bool = False,
    reattach_to: Collection[str] = (),
    client: GlueClient | None = None,
    credentials: AwsCredentials | None = None,
    region: str | None = None,
) -> str:
    """Start (or reattach to) the run key's Glue run and return its id without waiting, for
    flows that suspend while it runs (``start_glue_run``). The client is built as
    ``glue_job_run`` builds it, so both tasks run as the same identity."""
    glue = client or aws_client("glue", credentials=credentials, region=region)
    run_id, _ = start_tagged_run(
        glue,
        job_name,
        arguments,
        run_key=run_key,
        worker_type=worker_type,
        number_of_workers=number_of_workers,
        timeout_minutes=timeout_minutes,
        force=force,
        reattach_to=reattach_to,
        logger=get_run_logger(),
    )
    return run_id


def start_tagged_run(
    client: GlueClient,
    job_name: str,
    arguments: Mapping[str, str] | None = None,
    *,
    logger: Logger,
    **start: Any,
) -> tuple[str, bool]:
    """``start_glue_run`` (``start`` holds its other keyword arguments) under the Prefect
    start lease, then the flow run tagged with the run: what its stop hooks and suspend
    mode's poller go by. For suspend mode, which waits on the run only after resuming.

    A task timeout or a signal landing while the tag is written (a call to the Prefect API,
    which can hang) stops the run instead of leaving it going untagged."""
    run_id, earlier = start_glue_run(
        client,
        job_name,
        arguments,
        start_lock=prefect_start_lock(logger=logger),
        logger=logger,
        **start,
    )
    with undone_if_abandoned(lambda: stop_run(client, job_name, run_id, logger)):
        record_work(glue_run_tag(job_name, run_id))
    return run_id, earlier
