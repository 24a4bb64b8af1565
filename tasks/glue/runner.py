"""Run a Glue job to its end with an injected boto3 client: start or reattach, wait, stop.

The rules live in ``policy.py``; this module is the boto3 layer. What it guarantees:

* at most one live run per run key: before starting, GetJobRuns is searched for a run
  carrying the key (active, or SUCCEEDED) and that run is attached to instead; after
  starting, a racing twin is detected and the later run is stopped;
* no blind resend: the client is made to raise ``GlueStartAmbiguousError`` where botocore
  would resend a StartJobRun whose answer was lost or a 5xx (``start_guard``); the key is
  then looked up and its run attached to, and StartJobRun goes out again only after a
  lookup that succeeded found none;
* ConcurrentRunsExceededException attaches to the matching run if there is one, else backs
  off and tries again until the ``concurrency`` policy's timeout is used up;
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

from tasks.glue.policy import (
    RUN_KEY_ARGUMENT,
    RunLinks,
    build_start_request,
    pick_run_of_lost_start,
    pick_run_to_attach,
    pick_winner_of_race,
    run_key_of,
    run_links,
)
from tasks.glue.runs import find_run, list_runs, stop_run
from tasks.glue.start_guard import GlueStartAmbiguousError, refuse_blind_resend
from tasks.jobs import (
    GLUE_RUN_STATES,
    JobError,
    Logger,
    RunKey,
    StatusUnknownError,
    SubmitError,
    WaitPolicy,
    error_code,
    is_transient,
)

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
# How long to keep trying while MaxConcurrentRuns is used up by other runs.
DEFAULT_CONCURRENCY_WAIT = WaitPolicy(
    initial_interval=15.0, max_interval=120.0, timeout_seconds=1800.0, long_poll_seconds=0
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


class GlueConcurrencyError(SubmitError):
    """MaxConcurrentRuns stayed exhausted by other runs for longer than we were willing to wait."""


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
    """Knobs for the start and wait loops; defaults suit real Glue, tests shrink them."""

    poll: WaitPolicy
    concurrency: WaitPolicy
    max_runs_scanned: int
    sleep: Callable[[float], None]
    rand: Callable[[], float]


def _look_after_lost_start(
    client: GlueClient,
    job_name: str,
    run_key: str,
    knobs: _Waiting,
    lost: GlueStartAmbiguousError,
    deadline: float,
    known_before: Collection[str],
) -> tuple[Mapping[str, Any] | None, list[Mapping[str, Any]]]:
    """After an ambiguous StartJobRun: the key's run if it started, and the runs listed.

    Looks at once and, when nothing is there, once more after a backoff (a run may show up
    late); transient lookup errors are retried within the deadline. Nothing may be sent
    again before a lookup has succeeded, so running out of time raises.
    """
    looks = errors = 0
    while True:
        try:
            runs = list_runs(client, job_name, max_runs=knobs.max_runs_scanned)
            looks += 1
            existing = pick_run_of_lost_start(runs, run_key, known_before)
            if existing is not None or looks == 2:
                return existing, runs
        except (ClientError, BotoCoreError) as err:
            if not is_transient(err) or time.monotonic() >= deadline:
                raise GlueStartAmbiguousError(
                    f"{lost}; looking up run key {run_key} failed too ({err}), "
                    "so nothing was sent again: a retry looks it up first"
                ) from err
            errors += 1
        if time.monotonic() >= deadline and looks:
            return None, runs
        knobs.sleep(knobs.concurrency.delay(looks + errors, knobs.rand()))


def _start_or_attach(
    client: GlueClient,
    request: Mapping[str, Any],
    run_key: str,
    knobs: _Waiting,
    logger: Logger,
    known_before: Collection[str],
    forced: bool,
) -> tuple[str, bool]:
    """Start a run; on a concurrency error or a lost answer attach to the key's active run.

    ``known_before``: ids of the job's runs listed before the first attempt; unless
    ``forced``, the after-start check for a racing twin is on. After an ambiguous StartJobRun
    (``GlueStartAmbiguousError``: no answer, or a 5xx; the client never resends it, see
    ``start_guard``) the key is looked up and its run attached to; only a lookup that
    succeeded and found none lets StartJobRun go out again, within the ``concurrency``
    policy's timeout, and the race check then also covers the lost attempt's run.
    """
    job_name = request["JobName"]
    reuse = not forced
    race_check = not forced
    deadline = time.monotonic() + (knobs.concurrency.timeout_seconds or 0.0)
    attempt = 0
    while True:
        try:
            run_id = client.start_job_run(**request)["JobRunId"]
            break
        except GlueStartAmbiguousError as err:
            existing, runs = _look_after_lost_start(
                client, job_name, run_key, knobs, err, deadline, known_before
            )
            if existing is not None:
                logger.warning(
                    "Glue job %s: %s; run %s holds the key, attaching to it",
                    job_name, err, existing["Id"],
                )  # fmt: skip
                return str(existing["Id"]), True
            if time.monotonic() >= deadline:
                raise
            logger.info("Glue job %s: %s; no run holds the key, starting again", job_name, err)
            race_check = True  # the lost request's run may still show up late
        except ClientError as err:
            code = error_code(err)
            message = err.response.get("Error", {}).get("Message", "")
            if code != "ConcurrentRunsExceededException" and not is_transient(err):
                raise JobError(
                    f"StartJobRun for Glue job {job_name} failed: {code}: {message}"
                ) from err
            existing = find_run(
                client, job_name, run_key, max_runs=knobs.max_runs_scanned, reuse_succeeded=reuse
            )
            if existing is not None:
                return str(existing["Id"]), True
            if time.monotonic() >= deadline:
                raise GlueConcurrencyError(
                    f"Glue job {job_name} could not start within "
                    f"{knobs.concurrency.timeout_seconds or 0:.0f}s: {code}: {message}"
                ) from err
            delay = knobs.concurrency.delay(attempt, knobs.rand())
            logger.info("Glue job %s: %s; trying again in %.1fs", job_name, code, delay)
            knobs.sleep(delay)
            attempt += 1
        except BotoCoreError as err:
            # Never sent (no connection, after botocore's retries; the guard passes only
            # those), but a run of the key may exist all the same: look first.
            existing = find_run(
                client, job_name, run_key, max_runs=knobs.max_runs_scanned, reuse_succeeded=reuse
            )
            if existing is not None:
                return str(existing["Id"]), True
            raise JobError(f"StartJobRun for Glue job {job_name} failed: {err}") from err
    if not race_check:
        return run_id, False
    runs = list_runs(client, job_name, max_runs=knobs.max_runs_scanned)
    winner = pick_winner_of_race(runs, run_key, known_before)
    if winner is not None and winner["Id"] != run_id:
        logger.warning(
            "Glue job %s: run %s also holds run key %s and started first; stopping %s",
            job_name,
            winner["Id"],
            run_key,
            run_id,
        )
        stop_run(client, job_name, run_id, logger)
        return str(winner["Id"]), True
    return run_id, False


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


def start_glue_run(
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
    concurrency: WaitPolicy = DEFAULT_CONCURRENCY_WAIT,
    max_runs_scanned: int = 500,
    logger: Logger | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
) -> tuple[str, bool]:
    """The run id for ``run_key`` and whether it is an earlier run's (reattached); does not wait.

    ``reattach_to`` holds ids of runs this flow run already started (a suspended run that
    resumed): this key's run among them is used whatever its state, so a failed run is
    reported rather than started again.
    """
    logger = logger or log
    refuse_blind_resend(client)
    key = run_key.glue_argument
    request = build_start_request(
        job_name,
        arguments,
        key,
        worker_type=worker_type,
        number_of_workers=number_of_workers,
        timeout_minutes=timeout_minutes,
    )
    knobs = _Waiting(DEFAULT_POLL, concurrency, max_runs_scanned, sleep, rand)
    seen: list[Mapping[str, Any]] = []
    # Listed even when forced: after a lost StartJobRun answer, a run with the key that is
    # not among these is the one the lost request started.
    seen = list_runs(client, job_name, max_runs=max_runs_scanned)
    own = [r for r in seen if r.get("Id") in reattach_to and run_key_of(r) == key]
    if own:  # started by this flow run (before it suspended): not an earlier run's work
        return str(own[0]["Id"]), False
    existing = None if force else pick_run_to_attach(seen, key)
    if existing is not None:
        return str(existing["Id"]), True
    seen_ids = {str(r.get("Id")) for r in seen}
    return _start_or_attach(client, request, key, knobs, logger, seen_ids, forced=force)


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
    logger: Logger | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
    on_start: Callable[[str], None] | None = None,
) -> GlueRunResult:
    """Start (or reattach to) the run for ``run_key`` and wait for it to end.

    The run carries ``run_key.glue_argument`` in its Arguments (``--orchestrator_run_key``).
    ``force`` starts a new run without looking for one to reuse (a deliberate re-run of a
    night that already succeeded); only if the job is at its concurrency limit does it attach
    to a run of the key that is still active. ``reattach_to``: see ``start_glue_run``.
    Raises ``GlueJobFailedError`` for a failed run, ``GlueConcurrencyError`` when no slot
    frees up in time, ``GluePollError`` when Glue stays unreachable. ``on_start`` gets the
    run id before the wait (the Prefect task records it on the flow run).
    """
    logger = logger or log
    key = run_key.glue_argument
    knobs = _Waiting(poll, concurrency, max_runs_scanned, sleep, rand)
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
        logger=logger,
        sleep=sleep,
        rand=rand,
    )
    if on_start is not None:
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
