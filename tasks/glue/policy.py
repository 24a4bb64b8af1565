"""Pure rules for Glue job runs: request building, run matching, links.

States, run keys, transient errors and backoff are shared with the Data API (``tasks.jobs``).

Nothing here talks to AWS, so every rule is tested with literal dicts; ``runner.py`` puts
boto3 on top.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from tasks.jobs import InvalidRequestError

# Carried in the run's Arguments so any later attempt can find the run with GetJobRuns:
# Glue has no idempotency token for StartJobRun, but it does keep and return Arguments.
RUN_KEY_ARGUMENT = "--orchestrator_run_key"

# A run that is still doing work: what a caller attaches to and what a stop hook stops.
# (STOPPING is on its way out; see tasks.jobs.GLUE_RUN_STATES for every state.)
ATTACHABLE_STATES = frozenset({"STARTING", "RUNNING", "WAITING"})

WORKER_TYPES = ("G.025X", "G.1X", "G.2X", "G.4X", "G.8X", "Standard", "Z.2X")
MAX_TIMEOUT_MINUTES = 10079  # Glue rejects job-run timeouts of 7 days (10080 min) or more


def build_start_request(
    job_name: str,
    arguments: Mapping[str, str] | None,
    run_key: str,
    *,
    worker_type: str | None = None,
    number_of_workers: int | None = None,
    timeout_minutes: int | None = None,
) -> dict[str, Any]:
    """The StartJobRun request, with the run key added to Arguments; bad values are named."""
    if not job_name:
        raise InvalidRequestError("job_name must be a non-empty Glue job name")
    if not run_key:
        raise InvalidRequestError("run_key must be non-empty (see RunKey.glue_argument)")
    args: dict[str, str] = {}
    for key, value in (arguments or {}).items():
        if not key.startswith("--"):
            raise InvalidRequestError(
                f"argument name {key!r} must start with '--' (e.g. '--table')"
            )
        if not isinstance(value, str):
            raise InvalidRequestError(
                f"argument {key} must be a string, got {type(value).__name__}"
            )
        args[key] = value
    if args.get(RUN_KEY_ARGUMENT, run_key) != run_key:
        raise InvalidRequestError(
            f"{RUN_KEY_ARGUMENT} is set by run_key; do not pass it in arguments"
        )
    args[RUN_KEY_ARGUMENT] = run_key
    request: dict[str, Any] = {"JobName": job_name, "Arguments": args}
    if (worker_type is None) != (number_of_workers is None):
        raise InvalidRequestError(
            "worker_type and number_of_workers go together: set both or neither"
        )
    if worker_type is not None:
        if worker_type not in WORKER_TYPES:
            raise InvalidRequestError(
                f"worker_type {worker_type!r} is not one of {', '.join(WORKER_TYPES)}"
            )
        assert number_of_workers is not None
        if number_of_workers < 1:
            raise InvalidRequestError(
                f"number_of_workers must be at least 1, got {number_of_workers}"
            )
        request["WorkerType"] = worker_type
        request["NumberOfWorkers"] = number_of_workers
    if timeout_minutes is not None:
        if not 1 <= timeout_minutes <= MAX_TIMEOUT_MINUTES:
            raise InvalidRequestError(
                f"timeout_minutes must be between 1 and {MAX_TIMEOUT_MINUTES}, got {timeout_minutes}"
            )
        request["Timeout"] = timeout_minutes
    return request


def _started(run: Mapping[str, Any]) -> Any:
    return run.get("StartedOn")


def run_key_of(run: Mapping[str, Any]) -> str | None:
    """The run key a Glue run carries in its Arguments, None for runs started elsewhere."""
    value = (run.get("Arguments") or {}).get(RUN_KEY_ARGUMENT)
    return str(value) if value is not None else None


def _with_key(runs: Iterable[Mapping[str, Any]], run_key: str) -> list[Mapping[str, Any]]:
    return [r for r in runs if run_key_of(r) == run_key]


def _earliest(runs: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return min(runs, key=lambda r: (_started(r), r.get("Id", "")), default=None)


def pick_run_to_attach(
    runs: Iterable[Mapping[str, Any]], run_key: str, *, reuse_succeeded: bool = True
) -> Mapping[str, Any] | None:
    """Which existing run (if any) a caller with ``run_key`` should attach to.

    The earliest-started active run with the key (not one that is STOPPING: that run was
    cancelled and is going away); else, with ``reuse_succeeded``, the newest run with the key
    if it SUCCEEDED (the work is done). A newest run that failed, stopped or timed out means
    "start afresh".
    """
    matching = _with_key(runs, run_key)
    active = _earliest(r for r in matching if r.get("JobRunState") in ATTACHABLE_STATES)
    if active is not None or not matching or not reuse_succeeded:
        return active
    newest = max(matching, key=lambda r: (_started(r), r.get("Id", "")))
    return newest if newest.get("JobRunState") == "SUCCEEDED" else None


def pick_winner_of_race(
    runs: Iterable[Mapping[str, Any]], run_key: str, seen_before_start: Collection[str]
) -> Mapping[str, Any] | None:
    """After starting a run: the run that should go on among those with the key that appeared
    since our pre-start lookup (active or SUCCEEDED), i.e. the earliest started.

    Two callers that raced, or one whose StartJobRun botocore resent after a lost answer,
    both see the same runs and so agree on the same winner; every other new run is stopped.
    """
    fresh = [
        r
        for r in _with_key(runs, run_key)
        if r.get("Id") not in seen_before_start
        and (r.get("JobRunState") in ATTACHABLE_STATES or r.get("JobRunState") == "SUCCEEDED")
    ]
    return _earliest(fresh)


def pick_run_of_lost_start(
    runs: Iterable[Mapping[str, Any]], run_key: str, known_before: Collection[str]
) -> Mapping[str, Any] | None:
    """After a StartJobRun whose answer was lost: the run it started, if any.

    Runs with the key that were not listed before the attempt are new: the race winner
    among them (``pick_winner_of_race``) if one is active or SUCCEEDED, else the earliest
    in any state, so a run that already failed is reported rather than started again.
    """
    fresh = [r for r in _with_key(runs, run_key) if r.get("Id") not in known_before]
    return pick_winner_of_race(fresh, run_key, known_before) or _earliest(fresh)


def runs_to_stop(runs: Iterable[Mapping[str, Any]], key_prefix: str) -> list[Mapping[str, Any]]:
    """The active runs whose run key starts with ``key_prefix`` (e.g. one night's), and
    no other: a stop hook for one night must leave every other night's runs alone."""
    return [
        r
        for r in runs
        if str((r.get("Arguments") or {}).get(RUN_KEY_ARGUMENT, "")).startswith(key_prefix)
        and r.get("JobRunState") in ATTACHABLE_STATES
    ]


@dataclass(frozen=True)
class RunLinks:
    console: str | None
    logs: str | None


def run_links(
    job_name: str,
    run_id: str,
    *,
    region: str | None,
    endpoint_url: str | None,
    log_group: str | None,
) -> RunLinks:
    """Where a person looks at the run: the Glue console and CloudWatch on AWS; on an endpoint
    that is not AWS, the log group is a folder and the run's log is ``<group>/<run id>.log``."""
    host = urlsplit(endpoint_url or "").hostname or ""
    on_aws = not endpoint_url or host.endswith((".amazonaws.com", ".amazonaws.com.cn"))
    if on_aws and region:
        base = f"https://{region}.console.aws.amazon.com"
        console = (
            f"{base}/gluestudio/home?region={region}#/job/{quote(job_name, safe='')}/run/{run_id}"
        )
        group = quote(f"{log_group or '/aws-glue/jobs'}/output", safe="").replace("%", "$25")
        logs = f"{base}/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{group}/log-events/{run_id}"
        return RunLinks(console=console, logs=logs)
    if log_group and log_group.startswith("/") and not on_aws:
        return RunLinks(console=None, logs=f"{log_group}/{run_id}.log")
    return RunLinks(console=None, logs=None)
