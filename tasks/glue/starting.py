"""Start the run key's Glue run or find it: lookups and StartJobRun attempts, one at a time.

What ``start_glue_run`` guarantees:

* before starting, GetJobRuns is searched for a run carrying the key (active, or SUCCEEDED)
  and that run is attached to instead; after starting, a racing twin is detected and the
  later run is stopped;
* no blind resend: the client is made to raise ``GlueStartAmbiguousError`` where botocore
  would resend a StartJobRun whose answer was lost or a 5xx (``start_guard``); the key is
  then looked up and its run attached to, and StartJobRun goes out again only after two
  lookups that succeeded found none;
* ConcurrentRunsExceededException attaches to the matching run if there is one, else backs
  off and tries again (looking the key up first) until the ``concurrency`` policy's
  timeout is used up.

The work is cut into *holds*: the pre-start lookup with the first StartJobRun attempt, and
each later lookup with its retry. An optional ``start_lock`` (a lease, see ``lease.py``) is
held around each hold and never while sleeping between them, so two invocations of one
night cannot both look, find nothing and start: the second one looks after the first one's
StartJobRun was answered. Without a lock, only the after-start check stands between them
(a twin may be started and stopped within milliseconds).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from botocore.exceptions import BotoCoreError, ClientError

from tasks.glue.policy import (
    build_start_request,
    pick_run_of_lost_start,
    pick_run_to_attach,
    pick_winner_of_race,
    run_key_of,
)
from tasks.glue.runs import find_run, list_runs, stop_run
from tasks.glue.start_guard import GlueStartAmbiguousError, refuse_blind_resend
from tasks.jobs import JobError, Logger, RunKey, SubmitError, WaitPolicy, error_code, is_transient
from tasks.own_work import started_since_first_look
from tasks.stopping import raise_if_stopping, stoppable_sleep, undone_if_abandoned

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient

log = logging.getLogger(__name__)

# Given the Glue job's name, a context manager held around each lookup + StartJobRun.
StartLock: TypeAlias = Callable[[str], AbstractContextManager[None]]

# How long to keep trying while MaxConcurrentRuns is used up by other runs.
DEFAULT_CONCURRENCY_WAIT = WaitPolicy(
    initial_interval=15.0, max_interval=120.0, timeout_seconds=1800.0, long_poll_seconds=0
)


class GlueConcurrencyError(SubmitError):
    """MaxConcurrentRuns stayed exhausted by other runs for longer than we were willing to wait."""


def _no_lock(_job_name: str) -> AbstractContextManager[None]:
    return nullcontext()


@dataclass
class _Knobs:
    """The start loop's settings; defaults suit real Glue, tests shrink them."""

    concurrency: WaitPolicy
    max_runs_scanned: int
    sleep: Callable[[float], None]
    rand: Callable[[], float]


@dataclass
class _Attempts:
    """What the start loop carries from one hold to the next (the lock is not held between).

    ``known_before``: ids listed before the first attempt; a run with the key not among
    them is a lost request's run. ``lost``: an unanswered StartJobRun not yet settled by a
    lookup; ``looks`` counts the lookups since that found nothing. ``look_first``: the next
    hold looks the key up before starting (another invocation may have started it while
    this one slept). ``waiting_on``: why the loop sleeps, for the log.
    """

    known_before: frozenset[str]
    reuse: bool
    race_check: bool
    deadline: float
    tries: int = 0
    lost: GlueStartAmbiguousError | None = None
    looks: int = 0
    look_first: bool = False
    waiting_on: str = ""


def _after_lost_start(
    client: GlueClient, job_name: str, run_key: str, knobs: _Knobs, logger: Logger, st: _Attempts
) -> tuple[Mapping[str, Any] | None, bool]:
    """One lookup after an unanswered StartJobRun: (the key's run, False) to attach to,
    (None, False) to look again after a backoff, or (None, True) when StartJobRun may go
    out again (two lookups that answered found nothing). Raises when out of time: nothing
    may be sent again before a lookup has succeeded."""
    assert st.lost is not None
    try:
        runs = list_runs(client, job_name, max_runs=knobs.max_runs_scanned)
    except (ClientError, BotoCoreError) as err:
        if not is_transient(err) or time.monotonic() >= st.deadline:
            raise GlueStartAmbiguousError(
                f"{st.lost}; looking up run key {run_key} failed too ({err}), "
                "so nothing was sent again: a retry looks it up first"
            ) from err
        st.waiting_on = f"looking up run key {run_key} failed ({error_code(err) or err})"
        return None, False
    existing = pick_run_of_lost_start(runs, run_key, st.known_before)
    if existing is not None:
        logger.warning(
            "Glue job %s: %s; run %s holds the key, attaching to it",
            job_name, st.lost, existing["Id"],
        )  # fmt: skip
        return existing, False
    st.looks += 1
    out_of_time = time.monotonic() >= st.deadline
    if st.looks < 2 and not out_of_time:  # a run may show up late: look once more
        st.waiting_on = f"{st.lost}; no run holds the key yet"
        return None, False
    if out_of_time:
        raise st.lost
    logger.info("Glue job %s: %s; no run holds the key, starting again", job_name, st.lost)
    st.lost, st.looks, st.race_check = None, 0, True  # the lost run may still show up late
    return None, True


def _one_hold(
    client: GlueClient,
    request: Mapping[str, Any],
    run_key: str,
    knobs: _Knobs,
    logger: Logger,
    st: _Attempts,
) -> tuple[str, bool] | None:
    """Look the key up if due, then one StartJobRun attempt: (run id, reattached), or None
    to come again after a backoff. Never sleeps: the caller may hold the start lock."""
    job_name = request["JobName"]
    reuse = st.reuse
    if st.lost is not None:
        existing, may_start = _after_lost_start(client, job_name, run_key, knobs, logger, st)
        if existing is not None:
            return str(existing["Id"]), True
        if not may_start:
            return None
    elif st.look_first:
        existing = find_run(
            client, job_name, run_key, max_runs=knobs.max_runs_scanned, reuse_succeeded=reuse
        )
        if existing is not None:
            return str(existing["Id"]), True
    st.look_first = False
    try:
        return str(client.start_job_run(**request)["JobRunId"]), False
    except GlueStartAmbiguousError as err:
        st.lost, st.looks = err, 0
        existing, _ = _after_lost_start(client, job_name, run_key, knobs, logger, st)
        return (str(existing["Id"]), True) if existing is not None else None
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
        if time.monotonic() >= st.deadline:
            raise GlueConcurrencyError(
                f"Glue job {job_name} could not start within "
                f"{knobs.concurrency.timeout_seconds or 0:.0f}s: {code}: {message}"
            ) from err
        st.look_first, st.waiting_on = True, str(code)
        return None
    except BotoCoreError as err:
        # Never sent (no connection, after botocore's retries; the guard passes only
        # those), but a run of the key may exist all the same: look first.
        existing = find_run(
            client, job_name, run_key, max_runs=knobs.max_runs_scanned, reuse_succeeded=reuse
        )
        if existing is not None:
            return str(existing["Id"]), True
        raise JobError(f"StartJobRun for Glue job {job_name} failed: {err}") from err


def _first_hold(
    client: GlueClient,
    request: Mapping[str, Any],
    run_key: str,
    knobs: _Knobs,
    logger: Logger,
    forced: bool,
    reattach_to: Collection[str],
) -> tuple[tuple[str, bool] | None, _Attempts]:
    """The pre-start lookup and, if nothing is there to attach to, the first attempt."""
    job_name = request["JobName"]
    # Listed even when forced: after a lost StartJobRun answer, a run with the key that is
    # not among these is the one the lost request started.
    seen = list_runs(client, job_name, max_runs=knobs.max_runs_scanned)
    st = _Attempts(
        known_before=frozenset(str(r.get("Id")) for r in seen),
        reuse=not forced,
        race_check=not forced,
        deadline=time.monotonic() + (knobs.concurrency.timeout_seconds or 0.0),
    )
    keyed = [r for r in seen if run_key_of(r) == run_key]
    # Started by this flow run before it suspended (reattach_to), or by an earlier try of
    # this task run (a retry, even a forced one, never starts a second run: own_work).
    since = started_since_first_look(
        f"glue-run:{job_name}:{run_key}", (str(r.get("Id")) for r in keyed)
    )
    own = [r for r in keyed if r.get("Id") in reattach_to or r.get("Id") in since]
    if own:  # the newest: this flow run's own work, not an earlier run's (not reattached)
        return (str(own[0]["Id"]), False), st
    existing = None if forced else pick_run_to_attach(seen, run_key)
    if existing is not None:
        return (str(existing["Id"]), True), st
    return _one_hold(client, request, run_key, knobs, logger, st), st


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
    start_lock: StartLock | None = None,
    logger: Logger | None = None,
    sleep: Callable[[float], None] = stoppable_sleep,
    rand: Callable[[], float] = random.random,
) -> tuple[str, bool]:
    """The run id for ``run_key`` and whether it is an earlier run's (reattached); does not wait.

    ``reattach_to`` holds ids of runs this flow run already started (a suspended run that
    resumed): this key's run among them is used whatever its state, so a failed run is
    reported rather than started again. ``start_lock(job_name)`` is held around each
    lookup + StartJobRun attempt, never while sleeping (see the module docstring); the
    Prefect tasks pass a Prefect lease, plain callers get no lock.
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
    knobs = _Knobs(concurrency, max_runs_scanned, sleep, rand)
    hold = start_lock or _no_lock
    started: str | None = None  # the run this call started, until the caller has its id

    def stop_started() -> None:
        if started is not None:
            stop_run(client, job_name, started, logger)

    # Abandoned between StartJobRun's answer and the return (the lease's release, the race
    # check: calls to servers), the run would go on with nobody waiting on it.
    with undone_if_abandoned(stop_started):
        with hold(job_name):  # the lock may take a while: a stop may have come meanwhile
            raise_if_stopping(f"not starting Glue job {job_name} for {key}")
            outcome, st = _first_hold(client, request, key, knobs, logger, force, reattach_to)
            started = _started_by_us(outcome)
        while outcome is None:  # the lock is not held while sleeping
            delay = concurrency.delay(st.tries, rand())
            logger.info("Glue job %s: %s; trying again in %.1fs", job_name, st.waiting_on, delay)
            sleep(delay)
            st.tries += 1
            with hold(job_name):
                raise_if_stopping(f"not starting Glue job {job_name} for {key}")
                outcome = _one_hold(client, request, key, knobs, logger, st)
                started = _started_by_us(outcome)
        return _after_the_race(client, job_name, key, outcome, st, knobs, logger)


def _started_by_us(outcome: tuple[str, bool] | None) -> str | None:
    """The run id of a hold's outcome if that hold started the run (not a reattach)."""
    return outcome[0] if outcome is not None and not outcome[1] else None


def _after_the_race(
    client: GlueClient,
    job_name: str,
    key: str,
    outcome: tuple[str, bool],
    st: _Attempts,
    knobs: _Knobs,
    logger: Logger,
) -> tuple[str, bool]:
    """The outcome, unless a twin holding the key started first: then ours is stopped."""
    run_id, reattached = outcome
    if reattached or not st.race_check:
        return run_id, reattached
    runs = list_runs(client, job_name, max_runs=knobs.max_runs_scanned)
    winner = pick_winner_of_race(runs, key, st.known_before)
    if winner is not None and winner["Id"] != run_id:
        logger.warning(
            "Glue job %s: run %s also holds run key %s and started first; stopping %s",
            job_name, winner["Id"], key, run_id,
        )  # fmt: skip
        stop_run(client, job_name, run_id, logger)
        return str(winner["Id"]), True
    return run_id, False
