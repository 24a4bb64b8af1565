"""Run a Glue job to its end with an injected boto3 client: start or reattach, wait, stop.

The rules live in ``policy.py``; starting (lookups by run key, StartJobRun without blind
resends, the optional start lock) in ``starting.py``; this module waits. What it adds:

* FAILED, STOPPED, TIMEOUT, ERROR and EXPIRED raise ``GlueJobFailedError`` with Glue's
  ErrorMessage; transient API errors while waiting are tolerated up to a budget;
* if the wait is interrupted (flow cancellation, task timeout, SIGTERM turned into an
  exception, Ctrl-C) the run is stopped with BatchStopJobRun before the exception goes on.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from tasks.glue.policy import RUN_KEY_ARGUMENT, RunLinks, run_links
from tasks.glue.runs import list_runs, stop_run
from tasks.glue.starting import (
    DEFAULT_CONCURRENCY_WAIT,
    GlueConcurrencyError,
    StartLock,
    start_glue_run,
)
from tasks.jobs import (
    GLUE_RUN_STATES,
    JobError,
    Logger,
    RunKey,
    StatusUnknownError,
    WaitPolicy,
    is_transient,
)
from tasks.stopping import WorkStoppedError, left_running, stoppable_sleep, undone_if_abandoned

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient

log = logging.getLogger(__name__)

# GetJobRun costs nothing and Glue has no long poll: a short cap keeps the delay between a
# run ending and the flow noticing under 5 s (a 30 s cap cost a night ~15 s per layer).
# No timeout: the run's own Timeout (minutes, set at start) and the task's bound the wait.
DEFAULT_POLL = WaitPolicy(
    initial_interval=1.0,
    max_interval=5.0,
    multiplier=1.5,
    timeout_seconds=None,
    long_poll_seconds=0,
)


class GlueJobFailedError(JobError):
    """The run ended in a failed state; carries Glue's own ErrorMessage."""

    def __init__(self, job_name: str, run_id: str, state: str, error_message: str | None) -> None:
        self.job_name = job_name
        self.run_id = run_id
        self.state = state
        self.error_message = error_message
        detail = error_message or "(Glue gave no ErrorMessage)"
        super().__init__(f"Glue job {job_name} run {run_id} ended {state}: {detail}")


class GluePollError(StatusUnknownError):
    """The service stayed unreachable while waiting; the run itself may still be fine."""


@dataclass(frozen=True)
class GlueRunResult:
    job_name: str
    run_id: str
    state: str
    reattached: bool
    execution_time: int | None
    console_url: str | None
    log_url: str | None
    run: Mapping[str, Any] = field(repr=False, default_factory=dict)


@dataclass
class _Waiting:
    """Knobs for the wait loop; defaults suit real Glue, tests shrink them."""

    poll: WaitPolicy
    sleep: Callable[[float], None]
    rand: Callable[[], float]


def _wait(
    client: GlueClient,
    job_name: str,
    run_id: str,
    knobs: _Waiting,
    logger: Logger,
    announce: Callable[[Mapping[str, Any]], None],
) -> Mapping[str, Any]:
    """Poll until the run ends; ``announce`` gets the first answer (for the links)."""
    attempt = 0
    errors = 0
    last_state = None
    while True:
        try:
            run = client.get_job_run(JobName=job_name, RunId=run_id)["JobRun"]
            errors = 0
        except (ClientError, BotoCoreError) as err:
            if not is_transient(err) or errors >= knobs.poll.transient_error_budget:
                raise GluePollError(
                    f"Could not read Glue job {job_name} run {run_id}; it may still be running "
                    f"and a retry will reattach to it: {err}"
                ) from err
            errors += 1
            logger.info("Glue job %s run %s: transient error (%s), retrying", job_name, run_id, err)
        else:
            if last_state is None:
                announce(run)
            state = run.get("JobRunState", "")
            if state != last_state:
                logger.info("Glue job %s run %s is %s", job_name, run_id, state)
                last_state = state
            if GLUE_RUN_STATES.outcome(state) != "running":
                return run
        knobs.sleep(knobs.poll.delay(attempt, knobs.rand()))
        attempt += 1


STOP_CONFIRM_SECONDS = 30.0  # how long a stopped flow waits for its run to say STOPPED


def _confirm_stopped(client: GlueClient, job_name: str, run_id: str, logger: Logger) -> None:
    """Wait (bounded, unstoppable: the stop is under way) for a stopped run's final state."""
    deadline = time.monotonic() + STOP_CONFIRM_SECONDS
    state = "unknown"
    while time.monotonic() < deadline:
        try:
            state = client.get_job_run(JobName=job_name, RunId=run_id)["JobRun"]["JobRunState"]
        except (ClientError, BotoCoreError) as err:
            logger.warning(
                "Glue job %s run %s: could not read its state: %s", job_name, run_id, err
            )
            return
        if GLUE_RUN_STATES.outcome(state) != "running":
            logger.warning("Glue job %s run %s is %s (flow run stopped)", job_name, run_id, state)
            return
        time.sleep(0.5)
    logger.warning(
        "Glue job %s run %s still %s %.0f s after it was asked to stop",
        job_name, run_id, state, STOP_CONFIRM_SECONDS,
    )  # fmt: skip


def run_glue_job(
    client: GlueClient,
    job_name: str,
    arguments: Mapping[str, str] | None = None,
    *,
    run_key: RunKey,
    worker_type: str | None = None,
    number_of_workers: int | None = None,
    timeout_minutes: int | None = None,
    force: bool = False,
    reattach_to: Collection[str] = (),
    poll: WaitPolicy = DEFAULT_POLL,
    concurrency: WaitPolicy = DEFAULT_CONCURRENCY_WAIT,
    max_runs_scanned: int = 500,
    start_lock: StartLock | None = None,
    logger: Logger | None = None,
    sleep: Callable[[float], None] = stoppable_sleep,
    rand: Callable[[], float] = random.random,
    on_start: Callable[[str], None] | None = None,
) -> GlueRunResult:
    """Start (or reattach to) the run for ``run_key`` and wait for it to end.

    The run carries ``run_key.glue_argument`` in its Arguments (``--orchestrator_run_key``).
    ``force`` starts a new run without looking for one to reuse (a deliberate re-run of a
    night that already succeeded); only if the job is at its concurrency limit does it attach
    to a run of the key that is still active. ``reattach_to`` and ``start_lock`` (held around
    each lookup + StartJobRun, never while waiting): see ``start_glue_run``.
    Raises ``GlueJobFailedError`` for a failed run, ``GlueConcurrencyError`` when no slot
    frees up in time, ``GluePollError`` when Glue stays unreachable, ``WorkStoppedError``
    when its flow run is being stopped (``tasks.stopping``: nothing started, or the run
    stopped). ``on_start`` gets the run id before the wait (the Prefect task records it on
    the flow run).
    """
    logger = logger or log
    key = run_key.glue_argument
    knobs = _Waiting(poll, sleep, rand)
    run_id, reattached = start_glue_run(
        client,
        job_name,
        arguments,
        run_key=run_key,
        worker_type=worker_type,
        number_of_workers=number_of_workers,
        timeout_minutes=timeout_minutes,
        force=force,
        reattach_to=reattach_to,
        concurrency=concurrency,
        max_runs_scanned=max_runs_scanned,
        start_lock=start_lock,
        logger=logger,
        sleep=sleep,
        rand=rand,
    )
    if on_start is not None:  # a call to a server (tagging the flow run): see starting.py
        with undone_if_abandoned(lambda: stop_run(client, job_name, run_id, logger)):
            on_start(run_id)
    links = RunLinks(console=None, logs=None)

    def announce(first: Mapping[str, Any]) -> None:
        nonlocal links
        links = run_links(
            job_name,
            run_id,
            region=client.meta.region_name,
            endpoint_url=client.meta.endpoint_url,
            log_group=first.get("LogGroupName"),
        )
        logger.info(
            "%s Glue job %s run %s (%s=%s); console: %s; logs: %s",
            "Reattached to" if reattached else "Started",
            job_name,
            run_id,
            RUN_KEY_ARGUMENT,
            key,
            links.console or "-",
            links.logs or "-",
        )

    try:
        final = _wait(client, job_name, run_id, knobs, logger, announce)
    except GluePollError:
        raise  # Glue is unreachable: a stop would fail too, and the next attempt reattaches
    except WorkStoppedError:
        # The flow run is ending: stop the run and stay until Glue says it stopped, so the
        # last word of the run's log (and of a local stack, which ends with this process)
        # is its final state, not STOPPING; unless the stop path's fence left it running
        # for another live run that waits on it too (flows.hooks.stop_run_work).
        if not left_running(run_id):
            stop_run(client, job_name, run_id, logger)
            _confirm_stopped(client, job_name, run_id, logger)
        raise
    except BaseException:
        # Cancellation, a task timeout, SIGTERM or Ctrl-C: the run must not outlive its flow.
        stop_run(client, job_name, run_id, logger)
        raise
    state = final.get("JobRunState", "")
    if GLUE_RUN_STATES.outcome(state) != "succeeded":
        raise GlueJobFailedError(job_name, run_id, state, final.get("ErrorMessage"))
    logger.info("Glue job %s run %s SUCCEEDED in %ss", job_name, run_id, final.get("ExecutionTime"))
    return GlueRunResult(
        job_name=job_name,
        run_id=run_id,
        state=state,
        reattached=reattached,
        execution_time=final.get("ExecutionTime"),
        console_url=links.console,
        log_url=links.logs,
        run=final,
    )


__all__ = [
    "DEFAULT_CONCURRENCY_WAIT",
    "DEFAULT_POLL",
    "GlueConcurrencyError",
    "GlueJobFailedError",
    "GluePollError",
    "GlueRunResult",
    "StartLock",
    "list_runs",
    "run_glue_job",
    "start_glue_run",
    "stop_run",
]
